// Who may do what: service role, member, stranger, signed-in user without a restaurant, anon.
import { beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { ANON, callSid, recordingSid, SERVICE_ROLE, useTestDatabase, userIdentity } from '../support/db.ts';

const db = useTestDatabase();
const BUCKET = 'call-recordings';

const memberId = randomUUID();
const strangerId = randomUUID();
const loneId = randomUUID();
const member = userIdentity(memberId);
const stranger = userIdentity(strangerId);
const lone = userIdentity(loneId);
const ours = callSid();
const theirs = callSid();

beforeAll(async () => {
  await db.admin`insert into auth.users (id, email) values
    (${memberId}, 'member@example.com'), (${strangerId}, 'stranger@example.com'), (${loneId}, 'lone@example.com')`;
  await db.admin`insert into public.restaurants (id, name) values ('ours', 'Ours'), ('theirs', 'Theirs')`;
  await db.admin`insert into public.restaurant_members (restaurant_id, user_id) values
    ('ours', ${memberId}), ('theirs', ${strangerId})`;
  await db.as(SERVICE_ROLE, async (tx) => {
    await tx`select public.save_call(${tx.json({ call_sid: ours, restaurant_id: 'ours', customer_name: 'Ada' })})`;
    await tx`select public.save_call(${tx.json({ call_sid: theirs, restaurant_id: 'theirs', customer_name: 'Bob' })})`;
  });
  await db.storage.upload(BUCKET, `${ours}_${recordingSid()}.mp3`);
  await db.storage.upload(BUCKET, `${theirs}_${recordingSid()}.mp3`);
});

const sidsOf = (rows: readonly Record<string, unknown>[]) => rows.map((r) => String(r.call_sid)).sort();

describe('service role', () => {
  it('reads every call and recording', async () => {
    const calls = await db.as(SERVICE_ROLE, (tx) => tx`select call_sid from public.list_calls()`);
    expect(sidsOf(calls)).toEqual(expect.arrayContaining([ours, theirs]));
    const recs = await db.as(SERVICE_ROLE, (tx) => tx`select call_sid from public.recordings`);
    expect(sidsOf(recs)).toEqual([ours, theirs].sort());
  });

  it('saves, updates audio and deletes any restaurant\'s call', async () => {
    const sid = callSid();
    await db.as(SERVICE_ROLE, async (tx) => {
      await tx`select public.save_call(${tx.json({ call_sid: sid, restaurant_id: 'theirs' })})`;
      const [row] = await tx`select (public.update_call_audio(${sid}, 'https://cdn.example.com/a.mp3')).audio_url`;
      expect(row.audio_url).toBe('https://cdn.example.com/a.mp3');
      await tx`delete from public.calls where call_sid = ${sid}`;
    });
    expect(await db.admin`select 1 from public.calls where call_sid = ${sid}`).toHaveLength(0);
  });

  it('cannot write audio_url directly: the database owns it', async () => {
    await expect(db.as(SERVICE_ROLE, (tx) => tx`update public.calls set audio_url = 'https://x.example' where call_sid = ${ours}`))
      .rejects.toMatchObject({ code: '42501' });
  });

  it('cannot run the admin functions (backfill, watch_bucket)', async () => {
    await expect(db.as(SERVICE_ROLE, (tx) => tx`select call_recordings.backfill()`)).rejects.toMatchObject({ code: '42501' });
    await expect(db.as(SERVICE_ROLE, (tx) => tx`select call_recordings.watch_bucket('x')`)).rejects.toMatchObject({ code: '42501' });
  });
});

describe('member of a restaurant', () => {
  it('sees only their restaurant\'s calls and recordings', async () => {
    const calls = await db.as(member, (tx) => tx`select call_sid from public.list_calls()`);
    expect(sidsOf(calls)).toEqual([ours]);
    const recs = await db.as(member, (tx) => tx`select call_sid from public.recordings`);
    expect(sidsOf(recs)).toEqual([ours]);
    const [mine] = await db.as(member, (tx) => tx`select public.get_call(${ours}) as call`);
    expect(mine.call.recordings).toHaveLength(1);
    const [other] = await db.as(member, (tx) => tx`select public.get_call(${theirs}) as call`);
    expect(other.call).toBeNull();
    const restaurants = await db.as(member, (tx) => tx`select id from public.restaurants`);
    expect(restaurants.map((r) => r.id)).toEqual(['ours']);
  });

  it('saves calls for their restaurant', async () => {
    const sid = callSid();
    const [row] = await db.as(member, (tx) =>
      tx`select (public.save_call(${tx.json({ call_sid: sid, restaurant_id: 'ours', customer_name: 'Cy' })})).*`);
    expect(row).toMatchObject({ call_sid: sid, restaurant_id: 'ours', customer_name: 'Cy' });
  });

  it('cannot save a call into another restaurant or a call with no restaurant', async () => {
    for (const restaurant of ['theirs', null]) {
      const sid = callSid();
      await expect(db.as(member, (tx) => tx`select public.save_call(${tx.json({ call_sid: sid, restaurant_id: restaurant })})`))
        .rejects.toMatchObject({ code: '42501' });
      expect(await db.admin`select 1 from public.calls where call_sid = ${sid}`).toHaveLength(0);
    }
  });

  it('cannot overwrite another restaurant\'s call through save', async () => {
    await expect(db.as(member, (tx) => tx`select public.save_call(${tx.json({ call_sid: theirs, customer_name: 'Mallory' })})`))
      .rejects.toMatchObject({ code: '42501' });
    const [row] = await db.admin`select customer_name from public.calls where call_sid = ${theirs}`;
    expect(row.customer_name).toBe('Bob');
  });

  it('gets nothing, and parks nothing, when updating audio of a call they cannot see', async () => {
    const unknown = callSid();
    for (const sid of [theirs, unknown]) {
      const [row] = await db.as(member, (tx) => tx`select public.update_call_audio(${sid}, 'https://evil.example/a.mp3') as call`);
      expect(row.call).toBeNull();
    }
    expect(await db.admin`select 1 from call_recordings.pending_audio where call_sid = ${unknown}`).toHaveLength(0);
    const [row] = await db.admin`select explicit_audio_url from public.calls where call_sid = ${theirs}`;
    expect(row.explicit_audio_url).toBeNull();
  });

  it('cannot touch the private schema or delete calls', async () => {
    await expect(db.as(member, (tx) => tx`select * from call_recordings.pending_audio`)).rejects.toMatchObject({ code: '42501' });
    await expect(db.as(member, (tx) => tx`select call_recordings.park_audio_url(${callSid()}, 'https://x.example/a.mp3')`))
      .rejects.toMatchObject({ code: '42501' });
    await expect(db.as(member, (tx) => tx`delete from public.calls where call_sid = ${ours}`)).rejects.toMatchObject({ code: '42501' });
  });

  it('cannot add themselves to another restaurant', async () => {
    await expect(db.as(member, (tx) => tx`insert into public.restaurant_members (restaurant_id, user_id) values ('theirs', ${memberId})`))
      .rejects.toMatchObject({ code: '42501' });
  });
});

describe('stranger (member of another restaurant)', () => {
  it('sees their own restaurant and nothing of ours', async () => {
    const calls = await db.as(stranger, (tx) => tx`select call_sid from public.list_calls()`);
    expect(sidsOf(calls)).toEqual([theirs]);
    const [row] = await db.as(stranger, (tx) => tx`select public.get_call(${ours}) as call`);
    expect(row.call).toBeNull();
    const byTable = await db.as(stranger, (tx) => tx`select call_sid from public.calls where call_sid = ${ours}`);
    expect(byTable).toHaveLength(0);
  });
});

describe('signed in without a restaurant', () => {
  it('sees no calls, recordings or restaurants', async () => {
    expect(await db.as(lone, (tx) => tx`select * from public.list_calls()`)).toHaveLength(0);
    expect(await db.as(lone, (tx) => tx`select * from public.recordings`)).toHaveLength(0);
    expect(await db.as(lone, (tx) => tx`select * from public.restaurants`)).toHaveLength(0);
  });
});

describe('anon', () => {
  it.each([
    ['read calls', 'select * from public.calls'],
    ['read recordings', 'select * from public.recordings'],
    ['read restaurants', 'select * from public.restaurants'],
    ['list calls', 'select * from public.list_calls()'],
    ['get a call', `select public.get_call('x')`],
    ['save a call', `select public.save_call('{}'::jsonb)`],
    ['update audio', `select public.update_call_audio('x', 'https://x.example')`],
  ])('may not %s', async (_label, statement) => {
    await expect(db.as(ANON, (tx) => tx.unsafe(statement))).rejects.toMatchObject({ code: '42501' });
  });
});
