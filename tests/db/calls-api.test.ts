// The SQL API the `calls` function calls: save_call, update_call_audio, get_call, list_calls.
import { beforeAll, describe, expect, it } from 'vitest';
import { callSid, recordingSid, SERVICE_ROLE, useTestDatabase } from '../support/db.ts';

const db = useTestDatabase();

async function save(call: Record<string, unknown>) {
  return await db.as(SERVICE_ROLE, async (tx) => {
    const [row] = await tx`select (public.save_call(${tx.json(call as never)})).*`;
    return row;
  });
}

describe('save_call', () => {
  it('creates a call knowing only its CallSid, with defaults', async () => {
    const sid = callSid();
    const row = await save({ call_sid: sid });
    expect(row).toMatchObject({ call_sid: sid, restaurant_id: null, order_items: [], transcript: [], metadata: {}, audio_url: null });
    expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('stores every dashboard field', async () => {
    await db.admin`insert into public.restaurants (id) values ('demo') on conflict do nothing`;
    const sid = callSid();
    const call = {
      call_sid: sid, restaurant_id: 'demo', customer_name: 'Ada', phone_number: '+15550001111',
      delivery_address: '1 Main St', order_items: [{ item: 'Pizza', quantity: 2, price: 10, notes: '' }],
      special_instructions: 'ring twice', payment_method: 'cash', delivery_time: '30 min', total_price: 'PKR 1,500',
      call_duration: 95, transcript: [{ speaker: 'caller', text: 'hi', timestamp: '10:00' }], metadata: { agent: 'v2' },
    };
    const row = await save(call);
    const { call_sid: _sid, ...fields } = call;
    expect(row).toMatchObject(fields);
  });

  it('updates only the fields it is given and keeps the rest', async () => {
    const sid = callSid();
    await save({ call_sid: sid, customer_name: 'Ada', phone_number: '1' });
    const row = await save({ call_sid: sid, phone_number: '2', special_instructions: null });
    expect(row).toMatchObject({ customer_name: 'Ada', phone_number: '2', special_instructions: null });
  });

  it('fills a missing restaurant later but never moves a call to another restaurant', async () => {
    await db.admin`insert into public.restaurants (id) values ('a'), ('b') on conflict do nothing`;
    const sid = callSid();
    await save({ call_sid: sid });
    expect((await save({ call_sid: sid, restaurant_id: 'a' })).restaurant_id).toBe('a');
    expect((await save({ call_sid: sid, restaurant_id: null })).restaurant_id).toBe('a');
    await expect(save({ call_sid: sid, restaurant_id: 'b', customer_name: 'X' })).rejects.toMatchObject({ code: 'PT409' });
    const [row] = await db.admin`select restaurant_id, customer_name from public.calls where call_sid = ${sid}`;
    expect(row).toEqual({ restaurant_id: 'a', customer_name: null });
  });

  it('keeps answering a save without restaurant_id after recordings under two restaurants', async () => {
    await db.admin`insert into public.restaurants (id) values ('r-one'), ('r-two') on conflict do nothing`;
    const sid = callSid();
    await db.storage.upload('call-recordings', `call-recordings/r-one/2026-01-01/${sid}.mp3`);
    expect((await save({ call_sid: sid })).restaurant_id).toBe('r-one');
    await db.storage.upload('call-recordings', `call-recordings/r-two/2026-01-02/${sid}.mp3`);
    const again = await save({ call_sid: sid, customer_name: 'x' });
    expect(again).toMatchObject({ restaurant_id: 'r-one', customer_name: 'x' });
  });

  it.each([
    ['a missing call_sid', { call_sid: null }, 'PT400'],
    ['a malformed call_sid', { call_sid: 'CA123' }, 'PT400'],
    ['a JSON array', [], 'PT400'],
    ['order_items that is not an array', { order_items: { a: 1 } }, '23514'],
    ['a negative call_duration', { call_duration: -1 }, '23514'],
    ['a non-numeric call_duration', { call_duration: 'long' }, '22P02'],
    ['an audio_url that is not http(s)', { audio_url: 'javascript:alert(1)' }, '23514'],
    ['an unknown restaurant', { restaurant_id: 'no-such-place' }, '23503'],
  ])('rejects %s and writes nothing', async (_label, body, code) => {
    const sid = callSid();
    const call = Array.isArray(body) ? body : { call_sid: sid, ...body };
    await expect(save(call as Record<string, unknown>)).rejects.toMatchObject({ code });
    expect(await db.admin`select 1 from public.calls where call_sid = ${sid}`).toHaveLength(0);
  });
});

describe('update_call_audio', () => {
  it('sets the explicit URL and answers the same for a repeated update', async () => {
    const sid = callSid();
    await save({ call_sid: sid });
    for (let i = 0; i < 2; i++) {
      const [row] = await db.as(SERVICE_ROLE, (tx) => tx`select (public.update_call_audio(${sid}, 'https://cdn.example.com/1.mp3')).*`);
      expect(row).toMatchObject({ call_sid: sid, audio_url: 'https://cdn.example.com/1.mp3' });
    }
  });

  it.each([
    ['a malformed call_sid', 'CAxyz', 'https://cdn.example.com/1.mp3'],
    ['a non-http URL', null, 'ftp://cdn.example.com/1.mp3'],
    ['a null URL', null, null],
  ])('rejects %s', async (_label, sid, url) => {
    const target = sid ?? callSid();
    await expect(db.as(SERVICE_ROLE, (tx) => tx`select public.update_call_audio(${target}, ${url})`))
      .rejects.toMatchObject({ code: 'PT400' });
    expect(await db.admin`select 1 from call_recordings.pending_audio where call_sid = ${target}`).toHaveLength(0);
  });
});

describe('get_call', () => {
  it('finds a call by uuid or by CallSid, with its recordings newest first', async () => {
    const sid = callSid();
    const saved = await save({ call_sid: sid });
    const older = `${sid}_${recordingSid()}.mp3`;
    const newer = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload('call-recordings', older);
    await db.storage.upload('call-recordings', newer);
    for (const id of [saved.id, sid]) {
      const [{ call }] = await db.as(SERVICE_ROLE, (tx) => tx`select public.get_call(${id}) as call`);
      expect(call.id).toBe(saved.id);
      expect(call.recordings.map((r: { object_name: string }) => r.object_name)).toEqual([newer, older]);
      expect(call.audio_url).toBe(call.recordings[0].url);
      expect(call.recordings[0]).not.toHaveProperty('write_seq');
    }
  });

  it('answers null for an unknown id, whatever its shape', async () => {
    for (const id of [callSid(), '00000000-0000-0000-0000-000000000000', 'not-an-id', '']) {
      const [{ call }] = await db.as(SERVICE_ROLE, (tx) => tx`select public.get_call(${id}) as call`);
      expect(call).toBeNull();
    }
  });
});

describe('list_calls', () => {
  const sids: string[] = [];
  beforeAll(async () => {
    await db.admin`insert into public.restaurants (id) values ('list-a'), ('list-b') on conflict do nothing`;
    const people = [['Ann Lee', '+1 555 0100'], ['Bo_b', '+1 555 0101'], ['Cara 100%', '+44 20 0102'], ['Dan', '+1 555 0103']];
    for (const [i, [name, phone]] of people.entries()) {
      const sid = callSid();
      sids.push(sid);
      await save({
        call_sid: sid, restaurant_id: i < 3 ? 'list-a' : 'list-b', customer_name: name, phone_number: phone,
        call_date: `2026-03-0${i + 1}T12:00:00Z`,
      });
    }
    await db.storage.upload('call-recordings', `${sids[1]}_${recordingSid()}.mp3`);
  });

  async function list(args: string) {
    const rows = await db.as(SERVICE_ROLE, (tx) => tx.unsafe(`select call_sid from public.list_calls(${args})`));
    return rows.map((r) => r.call_sid);
  }

  it('lists a restaurant\'s calls newest first', async () => {
    expect(await list(`restaurant_id => 'list-a'`)).toEqual([sids[2], sids[1], sids[0]]);
  });

  it('searches customer name and phone as plain substrings (% and _ are not wildcards)', async () => {
    expect(await list(`restaurant_id => 'list-a', search => 'ann'`)).toEqual([sids[0]]);
    expect(await list(`search => '555 0103'`)).toEqual([sids[3]]);
    expect(await list(`restaurant_id => 'list-a', search => '_'`)).toEqual([sids[1]]);
    expect(await list(`restaurant_id => 'list-a', search => '%'`)).toEqual([sids[2]]);
  });

  it('filters by date range and by audio', async () => {
    expect(await list(`date_from => '2026-03-02', date_to => '2026-03-04'`)).toEqual([sids[2], sids[1]]);
    expect(await list(`restaurant_id => 'list-a', has_audio => true`)).toEqual([sids[1]]);
    expect(await list(`restaurant_id => 'list-a', has_audio => false`)).toEqual([sids[2], sids[0]]);
  });

  it('pages by offset and by keyset cursor without gaps or repeats', async () => {
    expect(await list(`restaurant_id => 'list-a', max_rows => 2`)).toEqual([sids[2], sids[1]]);
    expect(await list(`restaurant_id => 'list-a', max_rows => 2, skip_rows => 2`)).toEqual([sids[0]]);
    const [last] = await db.admin`select call_date, id from public.calls where call_sid = ${sids[1]}`;
    const rows = await db.as(SERVICE_ROLE, (tx) =>
      tx`select call_sid from public.list_calls(restaurant_id => 'list-a', before_call_date => ${last.call_date}, before_id => ${last.id})`);
    expect(rows.map((r) => r.call_sid)).toEqual([sids[0]]);
  });
});
