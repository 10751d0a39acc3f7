// Personas × routes through the function: what each identity gets from every route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { callSid, useTestDatabase } from '../support/db.ts';
import { inProcessClient, makeCredentials, type Client, type Credentials } from '../support/http.ts';

const db = useTestDatabase();
let creds: Credentials;
let client: Client;
const memberId = randomUUID();
const strangerId = randomUUID();
const ours = callSid();
const theirs = callSid();

beforeAll(async () => {
  creds = await makeCredentials();
  client = inProcessClient(db, creds);
  await db.admin`insert into auth.users (id) values (${memberId}), (${strangerId})`;
  await db.admin`insert into public.restaurants (id) values ('ours'), ('theirs')`;
  await db.admin`insert into public.restaurant_members (restaurant_id, user_id) values ('ours', ${memberId}), ('theirs', ${strangerId})`;
  for (const [sid, restaurant] of [[ours, 'ours'], [theirs, 'theirs']]) {
    const res = await client.request('POST', '/calls/save', { headers: creds.secretKey, body: { call_sid: sid, restaurant_id: restaurant } });
    expect(res.status).toBe(200);
  }
});
afterAll(async () => {
  await client.database.end();
});

const sids = (body: { calls: { call_sid: string }[] }) => body.calls.map((c) => c.call_sid).sort();

describe.each([
  ['the secret key in apikey', () => creds.secretKey],
  ['the secret key as bearer', () => creds.secretKeyAsBearer],
  ['the legacy service_role JWT', () => creds.legacyServiceRole],
])('service role with %s', (_label, headersOf) => {
  it('uses every route on every restaurant', async () => {
    const headers = headersOf();
    const sid = callSid();
    expect((await client.request('POST', '/calls/save', { headers, body: { call_sid: sid, restaurant_id: 'theirs' } })).status).toBe(200);
    const audio = await client.request('POST', '/calls/update-audio', { headers, body: { call_sid: sid, audio_url: 'https://cdn.example.com/s.mp3' } });
    expect(audio.body.call.audio_url).toBe('https://cdn.example.com/s.mp3');
    expect((await client.request('GET', `/calls/details/${ours}`, { headers })).status).toBe(200);
    expect((await client.request('GET', `/calls/details/${theirs}`, { headers })).status).toBe(200);
    const list = await client.request('GET', '/calls/list', { headers });
    expect(sids(list.body)).toEqual(expect.arrayContaining([ours, theirs, sid]));
    const history = await client.request('GET', '/calls?restaurant=theirs', { headers });
    expect(sids(history.body)).toEqual(expect.arrayContaining([theirs, sid]));
  });
});

describe.each([
  ['an ES256 session', (id: string) => creds.userEs256(id)],
  ['a legacy HS256 session', (id: string) => creds.userHs256(id)],
])('member with %s', (_label, sessionOf) => {
  it('saves, updates and reads their restaurant\'s calls', async () => {
    const headers = await sessionOf(memberId);
    const sid = callSid();
    const saved = await client.request('POST', '/calls/save', { headers, body: { call_id: sid, restaurant_id: 'ours', customer_name: 'M' } });
    expect(saved.status).toBe(200);
    const audio = await client.request('POST', '/calls/update-audio', { headers, body: { call_sid: sid, audio_url: 'https://cdn.example.com/m.mp3' } });
    expect(audio.status).toBe(200);
    const details = await client.request('GET', `/calls/details/${saved.body.call.id}`, { headers });
    expect(details.body.call.audio_url).toBe('https://cdn.example.com/m.mp3');
  });

  it('sees nothing of another restaurant, and parks nothing for it', async () => {
    const headers = await sessionOf(memberId);
    expect((await client.request('GET', `/calls/details/${theirs}`, { headers })).status).toBe(404);
    const list = await client.request('GET', '/calls/list', { headers });
    expect(list.body.calls.every((c: { restaurant_id: string }) => c.restaurant_id === 'ours')).toBe(true);
    expect(sids(list.body)).toContain(ours);
    const foreign = await client.request('GET', '/calls/list?backend=theirs', { headers });
    expect(foreign.body.calls).toEqual([]);
    const unknown = callSid();
    for (const sid of [theirs, unknown]) {
      const res = await client.request('POST', '/calls/update-audio', { headers, body: { call_sid: sid, audio_url: 'https://evil.example/x.mp3' } });
      expect(res.status).toBe(404);
    }
    expect(await db.admin`select 1 from call_recordings.pending_audio where call_sid = ${unknown}`).toHaveLength(0);
    const [row] = await db.admin`select explicit_audio_url from public.calls where call_sid = ${theirs}`;
    expect(row.explicit_audio_url).toBeNull();
    const moved = await client.request('POST', '/calls/save', { headers, body: { call_sid: theirs, restaurant_id: 'ours' } });
    expect(moved.status).toBe(403);
  });
});

describe('a session with a role we do not serve', () => {
  it('is refused with 401', async () => {
    const headers = await creds.userEs256(memberId, { role: 'anon' });
    const res = await client.request('GET', '/calls/list', { headers });
    expect(res.status).toBe(401);
  });
});
