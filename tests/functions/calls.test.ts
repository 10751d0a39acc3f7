// The `calls` function's HTTP contract, called in process against the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { callSid, recordingSid, useTestDatabase } from '../support/db.ts';
import { inProcessClient, makeCredentials, type Client, type Credentials } from '../support/http.ts';
import { freePort } from '../../local/cluster.ts';

const db = useTestDatabase();
let creds: Credentials;
let client: Client;
let service: Record<string, string>;
const memberId = randomUUID();
const strangerId = randomUUID();

beforeAll(async () => {
  creds = await makeCredentials();
  client = inProcessClient(db, creds);
  service = creds.secretKey;
  await db.admin`insert into auth.users (id) values (${memberId}), (${strangerId})`;
  await db.admin`insert into public.restaurants (id, name) values ('demo', 'Demo'), ('other', 'Other')`;
  await db.admin`insert into public.restaurant_members (restaurant_id, user_id) values ('demo', ${memberId}), ('other', ${strangerId})`;
});
afterAll(async () => {
  await client.database.end();
});


const post = (path: string, body: unknown, headers: Record<string, string> = service) =>
  client.request('POST', path, { body, headers });
const get = (path: string, headers: Record<string, string> = service) => client.request('GET', path, { headers });

function expectCors(headers: Headers) {
  expect(headers.get('access-control-allow-origin')).toBe('*');
}

describe('POST /calls/save', () => {
  it('saves the dashboard\'s body (call_id) and answers { success, call }', async () => {
    const sid = callSid();
    const body = {
      call_id: sid, restaurant_id: 'demo', customer_name: 'Ada', phone_number: '+15550001', delivery_address: '1 Main',
      order_items: [{ item: 'Pizza', quantity: 1, price: 9.5, notes: '' }], special_instructions: '', payment_method: 'cash',
      delivery_time: 'asap', total_price: 'PKR 1,500', call_duration: 61, transcript: [{ speaker: 'agent', text: 'hello' }],
      audio_url: null,
    };
    const res = await post('/calls/save', body);
    expect(res.status).toBe(200);
    expectCors(res.headers);
    expect(res.body.success).toBe(true);
    const { call_id: _, ...fields } = body;
    expect(res.body.call).toMatchObject({ ...fields, call_sid: sid, audio_url: null });
  });

  it('accepts call_sid (the backend\'s name) and a numeric total_price', async () => {
    const sid = callSid();
    const res = await post('/calls/save', { call_sid: sid, total_price: 12.5 });
    expect(res.status).toBe(200);
    expect(res.body.call).toMatchObject({ call_sid: sid, total_price: '12.5', restaurant_id: null });
  });

  it('keeps a linked audio_url when the frontend re-saves with audio_url null or ""', async () => {
    const sid = callSid();
    await post('/calls/save', { call_sid: sid, restaurant_id: 'demo' });
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload('call-recordings', name);
    for (const audio_url of [null, '']) {
      const res = await post('/calls/save', { call_id: sid, restaurant_id: 'demo', customer_name: 'Later', audio_url });
      expect(res.status).toBe(200);
      expect(res.body.call.audio_url).toContain(name);
    }
  });

  it('with update_audio_only: updates an existing call, or answers 404 with retry while it is not saved', async () => {
    const sid = callSid();
    const early = await post('/calls/save', { call_id: sid, audio_url: 'https://cdn.example.com/1.mp3', update_audio_only: true, retry_count: 0 });
    expect(early.status).toBe(404);
    expect(early.body).toMatchObject({ success: false, error: { code: 'call_not_found' }, retry: true, retry_after: 2000 });
    const saved = await post('/calls/save', { call_id: sid, restaurant_id: 'demo' });
    expect(saved.body.call.audio_url).toBe('https://cdn.example.com/1.mp3');
    const again = await post('/calls/save', { call_id: sid, audio_url: 'https://cdn.example.com/2.mp3', update_audio_only: true });
    expect(again.status).toBe(200);
    expect(again.body.call.audio_url).toBe('https://cdn.example.com/2.mp3');
  });

  it('answers 409 when a save would move a call to another restaurant, and writes nothing', async () => {
    const sid = callSid();
    await post('/calls/save', { call_sid: sid, restaurant_id: 'demo' });
    const before = await db.fingerprint();
    const res = await post('/calls/save', { call_sid: sid, restaurant_id: 'other', customer_name: 'X' });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect(await db.fingerprint()).toBe(before);
  });
});

describe('POST /calls/update-audio', () => {
  it('answers 404 retry:true, retry_after:2000 before the call exists, then retry:false from retry_count 2, and links on save', async () => {
    const sid = callSid();
    const url = 'https://cdn.example.com/rec.mp3';
    for (const [retry_count, retry] of [[0, true], [1, true], [2, false], [5, false]] as const) {
      const res = await post('/calls/update-audio', { call_sid: sid, audio_url: url, retry_count });
      expect(res.status).toBe(404);
      expectCors(res.headers);
      expect(res.body.success).toBe(false);
      expect(res.body.retry).toBe(retry);
      if (retry) expect(res.body.retry_after).toBe(2000);
      else expect(res.body).not.toHaveProperty('retry_after');
    }
    const saved = await post('/calls/save', { call_id: sid, restaurant_id: 'demo' });
    expect(saved.body.call.audio_url).toBe(url);
    const details = await get(`/calls/details/${sid}`);
    expect(details.body.call.audio_url).toBe(url);
  });

  it('answers 200 for the same URL twice', async () => {
    const sid = callSid();
    await post('/calls/save', { call_sid: sid });
    for (let i = 0; i < 2; i++) {
      const res = await post('/calls/update-audio', { call_sid: sid, audio_url: 'https://cdn.example.com/same.mp3' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ success: true, call: { call_sid: sid, audio_url: 'https://cdn.example.com/same.mp3' } });
    }
  });
});

describe('GET /calls/details/{id}', () => {
  it('finds a call by uuid or CallSid with its recordings', async () => {
    const sid = callSid();
    const saved = await post('/calls/save', { call_sid: sid, restaurant_id: 'demo' });
    await db.storage.upload('call-recordings', `call-recordings/demo/2026-02-01/${sid}.mp3`);
    for (const id of [saved.body.call.id, sid]) {
      const res = await get(`/calls/details/${id}`);
      expect(res.status).toBe(200);
      expect(res.body.call.id).toBe(saved.body.call.id);
      expect(res.body.call.audio_url).toMatch(/\/storage\/v1\/object\/authenticated\/call-recordings\/call-recordings\/demo\/2026-02-01\//);
      expect(res.body.call.recordings).toHaveLength(1);
      expect(res.body.call.recordings[0]).toMatchObject({ restaurant_id: 'demo', recorded_on: '2026-02-01' });
    }
  });

  it('answers 404 for a call that does not exist', async () => {
    for (const id of [callSid(), randomUUID()]) {
      const res = await get(`/calls/details/${id}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ success: false, error: { code: 'call_not_found' } });
    }
  });
});

describe('GET /calls/list and GET /calls', () => {
  const sids: string[] = [];
  beforeAll(async () => {
    await db.admin`insert into public.restaurants (id) values ('hist')`;
    for (let i = 0; i < 5; i++) {
      const sid = callSid();
      sids.push(sid);
      await post('/calls/save', {
        call_sid: sid, restaurant_id: 'hist', customer_name: i % 2 ? `Odd ${i}` : `Even ${i}`,
        phone_number: `+1555000${i}`, call_date: `2026-04-0${i + 1}T10:00:00Z`,
      });
    }
    await db.storage.upload('call-recordings', `${sids[4]}_${recordingSid()}.mp3`);
  });

  it('lists a restaurant (backend) newest first, with search, limit and offset', async () => {
    const all = await get('/calls/list?backend=hist');
    expect(all.status).toBe(200);
    expect(all.body.success).toBe(true);
    expect(all.body.calls.map((c: { call_sid: string }) => c.call_sid)).toEqual([...sids].reverse());
    const odd = await get('/calls/list?backend=hist&search=odd');
    expect(odd.body.calls.map((c: { call_sid: string }) => c.call_sid)).toEqual([sids[3], sids[1]]);
    const phone = await get('/calls/list?backend=hist&search=%2B15550002');
    expect(phone.body.calls.map((c: { call_sid: string }) => c.call_sid)).toEqual([sids[2]]);
    const page = await get('/calls/list?backend=hist&limit=2&offset=1');
    expect(page.body.calls.map((c: { call_sid: string }) => c.call_sid)).toEqual([sids[3], sids[2]]);
    const empty = await get('/calls/list?backend=hist&search=');
    expect(empty.body.calls).toHaveLength(5);
  });

  it('pages history with a cursor and filters by date and audio', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { calls: { call_sid: string }[]; next_cursor: string | null } } =
        await get(`/calls?restaurant=hist&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.calls.map((c) => c.call_sid));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...sids].reverse());
    const ranged = await get('/calls?restaurant=hist&from=2026-04-02T00:00:00Z&to=2026-04-04T00:00:00Z');
    expect(ranged.body.calls.map((c: { call_sid: string }) => c.call_sid)).toEqual([sids[2], sids[1]]);
    const withAudio = await get('/calls?restaurant=hist&has_audio=true');
    expect(withAudio.body.calls.map((c: { call_sid: string }) => c.call_sid)).toEqual([sids[4]]);
    expect(withAudio.body.next_cursor).toBeNull();
  });
});

describe('protocol', () => {
  it('answers OPTIONS preflight on any path with CORS headers', async () => {
    for (const path of ['/calls/save', '/calls/details/x', '/calls/nope']) {
      const res = await client.request('OPTIONS', path);
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-headers')).toContain('apikey');
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    }
  });

  it('hides internal failures behind a generic 500 and logs them', async () => {
    const logged: unknown[] = [];
    const { createCallsHandler } = await import('../../supabase/functions/calls/handler.ts');
    const { createDatabase } = await import('../../supabase/functions/_shared/db.ts');
    const { createAuthenticator } = await import('../../supabase/functions/_shared/auth.ts');
    const { SECRET_KEY } = await import('../../local/keys.ts');
    // A database whose SQL API is missing: an error that is nobody's request's fault.
    await db.admin`create database ${db.admin(db.name + '_bare')} template template0`;
    const bare = createDatabase({ url: db.url('supabase_admin').replace(`/${db.name}`, `/${db.name}_bare`) });
    try {
      const handler = createCallsHandler({ db: bare, authenticate: createAuthenticator({ secretKeys: [SECRET_KEY] }), log: (e) => logged.push(e) });
      const res = await handler(new Request(`http://x/calls/details/${callSid()}`, { headers: { apikey: SECRET_KEY } }));
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ success: false, error: { code: 'internal_error', message: 'Something went wrong on our side.' } });
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(logged).toHaveLength(1);
    } finally {
      await bare.end();
      await db.admin`drop database ${db.admin(db.name + '_bare')} with (force)`;
    }
  });

  it('answers 503 with retry_after when the database is unreachable', async () => {
    const port = await freePort();
    const down = inProcessClient(db, creds, `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`);
    try {
      const res = await down.request('GET', `/calls/details/${callSid()}`, { headers: service });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(res.body).toMatchObject({ success: false, error: { code: 'database_unavailable' }, retry: true, retry_after: 2000 });
    } finally {
      await down.database.end();
    }
  });
});
