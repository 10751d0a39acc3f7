// Every client mistake: a 4xx with a JSON error naming the problem, CORS headers, and no write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { callSid, useTestDatabase } from '../support/db.ts';
import { inProcessClient, makeCredentials, type Client, type Credentials } from '../support/http.ts';
import { SECRET_KEY } from '../../local/keys.ts';

const db = useTestDatabase();
let creds: Credentials;
let client: Client;
const existing = callSid();

beforeAll(async () => {
  creds = await makeCredentials();
  client = inProcessClient(db, creds);
  await db.admin`insert into public.restaurants (id) values ('demo')`;
  const res = await client.request('POST', '/calls/save', { headers: creds.secretKey, body: { call_sid: existing, restaurant_id: 'demo' } });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await client.database.end();
});


type Auth = 'service' | 'none' | 'forged' | 'expired' | 'anon' | 'publishable' | 'wrong-secret' | 'garbage-bearer' | 'stranger';
interface Case {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  raw?: string | Uint8Array;
  contentType?: string | null;
  auth?: Auth;
  status: number;
  code: string;
  /** a field the error must name */
  field?: string;
}

const sid = callSid();
const ok = { call_sid: sid };
const big = 'x'.repeat(70 * 1024);

const cases: Case[] = [
  // body format
  { name: 'save with text/plain', method: 'POST', path: '/calls/save', raw: JSON.stringify(ok), contentType: 'text/plain', status: 415, code: 'unsupported_media_type' },
  { name: 'save without a content type', method: 'POST', path: '/calls/save', raw: JSON.stringify(ok), contentType: null, status: 415, code: 'unsupported_media_type' },
  { name: 'save with form data', method: 'POST', path: '/calls/save', raw: 'call_sid=1', contentType: 'application/x-www-form-urlencoded', status: 415, code: 'unsupported_media_type' },
  { name: 'save with malformed JSON', method: 'POST', path: '/calls/save', raw: '{"call_sid":', status: 400, code: 'invalid_json' },
  { name: 'save with an empty body', method: 'POST', path: '/calls/save', raw: '', status: 400, code: 'invalid_json' },
  { name: 'save with invalid UTF-8', method: 'POST', path: '/calls/save', raw: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), status: 400, code: 'invalid_json' },
  { name: 'save with a body over 64 KiB', method: 'POST', path: '/calls/save', body: { call_sid: sid, customer_name: big }, status: 413, code: 'payload_too_large' },
  { name: 'save with a NUL character in a string', method: 'POST', path: '/calls/save', raw: `{"call_sid":"${sid}","customer_name":"a\\u0000b"}`, status: 400, code: 'invalid_request', field: 'customer_name' },
  { name: 'save with a NUL character in a nested key', method: 'POST', path: '/calls/save', raw: `{"call_sid":"${sid}","metadata":{"a\\u0000":1}}`, status: 400, code: 'invalid_request', field: 'metadata' },
  { name: 'save with order_items nested 5,000 levels deep', method: 'POST', path: '/calls/save', raw: `{"call_sid":"${sid}","order_items":${'['.repeat(5000)}${']'.repeat(5000)}}`, status: 400, code: 'invalid_request', field: 'order_items' },
  { name: 'save with a JSON array', method: 'POST', path: '/calls/save', body: [ok], status: 400, code: 'invalid_request' },
  { name: 'save with a JSON string', method: 'POST', path: '/calls/save', body: 'CA', status: 400, code: 'invalid_request' },
  { name: 'save with JSON null', method: 'POST', path: '/calls/save', raw: 'null', status: 400, code: 'invalid_request' },
  // save fields
  { name: 'save without call_sid or call_id', method: 'POST', path: '/calls/save', body: { customer_name: 'A' }, status: 400, code: 'invalid_request', field: 'call_sid' },
  { name: 'save with a short call_sid', method: 'POST', path: '/calls/save', body: { call_sid: 'CA123' }, status: 400, code: 'invalid_request', field: 'call_sid' },
  { name: 'save with an uppercase call_sid', method: 'POST', path: '/calls/save', body: { call_sid: sid.toUpperCase() }, status: 400, code: 'invalid_request', field: 'call_sid' },
  { name: 'save with a numeric call_id', method: 'POST', path: '/calls/save', body: { call_id: 42 }, status: 400, code: 'invalid_request', field: 'call_id' },
  { name: 'save with call_id and call_sid that differ', method: 'POST', path: '/calls/save', body: { call_id: sid, call_sid: callSid() }, status: 400, code: 'invalid_request', field: 'call_id' },
  { name: 'save with an unknown field', method: 'POST', path: '/calls/save', body: { ...ok, tip: 5 }, status: 400, code: 'invalid_request', field: 'tip' },
  { name: 'save with a numeric customer_name', method: 'POST', path: '/calls/save', body: { ...ok, customer_name: 7 }, status: 400, code: 'invalid_request', field: 'customer_name' },
  { name: 'save with a 501-character customer_name', method: 'POST', path: '/calls/save', body: { ...ok, customer_name: 'a'.repeat(501) }, status: 400, code: 'invalid_request', field: 'customer_name' },
  { name: 'save with order_items as an object', method: 'POST', path: '/calls/save', body: { ...ok, order_items: { a: 1 } }, status: 400, code: 'invalid_request', field: 'order_items' },
  { name: 'save with transcript as a string', method: 'POST', path: '/calls/save', body: { ...ok, transcript: 'hi' }, status: 400, code: 'invalid_request', field: 'transcript' },
  { name: 'save with a negative call_duration', method: 'POST', path: '/calls/save', body: { ...ok, call_duration: -1 }, status: 400, code: 'invalid_request', field: 'call_duration' },
  { name: 'save with a fractional call_duration', method: 'POST', path: '/calls/save', body: { ...ok, call_duration: 1.5 }, status: 400, code: 'invalid_request', field: 'call_duration' },
  { name: 'save with a string call_duration', method: 'POST', path: '/calls/save', body: { ...ok, call_duration: '60' }, status: 400, code: 'invalid_request', field: 'call_duration' },
  { name: 'save with a javascript: audio_url', method: 'POST', path: '/calls/save', body: { ...ok, audio_url: 'javascript:alert(1)' }, status: 400, code: 'invalid_request', field: 'audio_url' },
  { name: 'save with an ftp audio_url', method: 'POST', path: '/calls/save', body: { ...ok, audio_url: 'ftp://x.example/a.mp3' }, status: 400, code: 'invalid_request', field: 'audio_url' },
  { name: 'save with an audio_url that is not a URL', method: 'POST', path: '/calls/save', body: { ...ok, audio_url: 'recording.mp3' }, status: 400, code: 'invalid_request', field: 'audio_url' },
  { name: 'save with update_audio_only and no audio_url', method: 'POST', path: '/calls/save', body: { call_id: existing, update_audio_only: true }, status: 400, code: 'invalid_request', field: 'audio_url' },
  { name: 'save with update_audio_only as a string', method: 'POST', path: '/calls/save', body: { ...ok, update_audio_only: 'yes' }, status: 400, code: 'invalid_request', field: 'update_audio_only' },
  { name: 'save with a negative retry_count', method: 'POST', path: '/calls/save', body: { ...ok, retry_count: -1 }, status: 400, code: 'invalid_request', field: 'retry_count' },
  { name: 'save with a call_date that is not a date', method: 'POST', path: '/calls/save', body: { ...ok, call_date: 'yesterday' }, status: 400, code: 'invalid_request', field: 'call_date' },
  { name: 'save with metadata as an array', method: 'POST', path: '/calls/save', body: { ...ok, metadata: [1] }, status: 400, code: 'invalid_request', field: 'metadata' },
  { name: 'save with a 65-character restaurant_id', method: 'POST', path: '/calls/save', body: { ...ok, restaurant_id: 'r'.repeat(65) }, status: 400, code: 'invalid_request', field: 'restaurant_id' },
  { name: 'save with a restaurant that does not exist', method: 'POST', path: '/calls/save', body: { ...ok, restaurant_id: 'nowhere' }, status: 422, code: 'unknown_reference' },
  // update-audio
  { name: 'update-audio without audio_url', method: 'POST', path: '/calls/update-audio', body: { call_sid: existing }, status: 400, code: 'invalid_request', field: 'audio_url' },
  { name: 'update-audio without call_sid', method: 'POST', path: '/calls/update-audio', body: { audio_url: 'https://x.example/a.mp3' }, status: 400, code: 'invalid_request', field: 'call_sid' },
  { name: 'update-audio with a data: URL', method: 'POST', path: '/calls/update-audio', body: { call_sid: existing, audio_url: 'data:audio/mp3;base64,AA' }, status: 400, code: 'invalid_request', field: 'audio_url' },
  { name: 'update-audio with a malformed call_sid', method: 'POST', path: '/calls/update-audio', body: { call_sid: 'RE' + sid.slice(2), audio_url: 'https://x.example/a.mp3' }, status: 400, code: 'invalid_request', field: 'call_sid' },
  { name: 'update-audio with a string retry_count', method: 'POST', path: '/calls/update-audio', body: { call_sid: existing, audio_url: 'https://x.example/a.mp3', retry_count: '1' }, status: 400, code: 'invalid_request', field: 'retry_count' },
  { name: 'update-audio with an unknown field', method: 'POST', path: '/calls/update-audio', body: { call_sid: existing, audio_url: 'https://x.example/a.mp3', force: true }, status: 400, code: 'invalid_request', field: 'force' },
  { name: 'update-audio with text/plain', method: 'POST', path: '/calls/update-audio', raw: '{}', contentType: 'text/plain', status: 415, code: 'unsupported_media_type' },
  { name: 'update-audio with malformed JSON', method: 'POST', path: '/calls/update-audio', raw: '{call_sid}', status: 400, code: 'invalid_json' },
  // details
  { name: 'details with an id that is neither uuid nor CallSid', method: 'GET', path: '/calls/details/abc', status: 400, code: 'invalid_request', field: 'id' },
  { name: 'details with a numeric id', method: 'GET', path: '/calls/details/123', status: 400, code: 'invalid_request' },
  { name: 'details with a malformed %-escape in the id', method: 'GET', path: '/calls/details/%E0%A4%A', status: 400, code: 'invalid_request', field: 'id' },
  { name: 'details with SQL in the id', method: 'GET', path: `/calls/details/${encodeURIComponent("' or 1=1 --")}`, status: 400, code: 'invalid_request' },
  // list / history queries
  { name: 'list with limit=0', method: 'GET', path: '/calls/list?limit=0', status: 400, code: 'invalid_request', field: 'limit' },
  { name: 'list with limit=abc', method: 'GET', path: '/calls/list?limit=abc', status: 400, code: 'invalid_request', field: 'limit' },
  { name: 'list with limit=5000', method: 'GET', path: '/calls/list?limit=5000', status: 400, code: 'invalid_request', field: 'limit' },
  { name: 'list with offset=-1', method: 'GET', path: '/calls/list?offset=-1', status: 400, code: 'invalid_request', field: 'offset' },
  { name: 'list with an unknown parameter', method: 'GET', path: '/calls/list?sort=asc', status: 400, code: 'invalid_request', field: 'sort' },
  { name: 'list with a repeated parameter', method: 'GET', path: '/calls/list?backend=a&backend=b', status: 400, code: 'invalid_request' },
  { name: 'history with from=yesterday', method: 'GET', path: '/calls?from=yesterday', status: 400, code: 'invalid_request', field: 'from' },
  { name: 'history with has_audio=maybe', method: 'GET', path: '/calls?has_audio=maybe', status: 400, code: 'invalid_request', field: 'has_audio' },
  { name: 'history with a forged cursor', method: 'GET', path: '/calls?cursor=bm90LWEtY3Vyc29y', status: 400, code: 'invalid_request', field: 'cursor' },
  // routing
  { name: 'an unknown route', method: 'GET', path: '/calls/nope', status: 404, code: 'not_found' },
  { name: 'a path outside the function', method: 'POST', path: '/other/save', body: ok, status: 404, code: 'not_found' },
  { name: 'GET on save', method: 'GET', path: '/calls/save', status: 405, code: 'method_not_allowed' },
  { name: 'POST on list', method: 'POST', path: '/calls/list', body: {}, status: 405, code: 'method_not_allowed' },
  { name: 'DELETE on details', method: 'DELETE', path: `/calls/details/${existing}`, status: 405, code: 'method_not_allowed' },
  { name: 'PUT on save', method: 'PUT', path: '/calls/save', body: ok, status: 405, code: 'method_not_allowed' },
  // credentials
  { name: 'save without credentials', method: 'POST', path: '/calls/save', body: ok, auth: 'none', status: 401, code: 'unauthorized' },
  { name: 'save with a forged JWT', method: 'POST', path: '/calls/save', body: ok, auth: 'forged', status: 401, code: 'unauthorized' },
  { name: 'save with an expired JWT', method: 'POST', path: '/calls/save', body: ok, auth: 'expired', status: 401, code: 'unauthorized' },
  { name: 'save with the anon key', method: 'POST', path: '/calls/save', body: ok, auth: 'anon', status: 401, code: 'unauthorized' },
  { name: 'save with the publishable key', method: 'POST', path: '/calls/save', body: ok, auth: 'publishable', status: 401, code: 'unauthorized' },
  { name: 'save with a wrong secret key', method: 'POST', path: '/calls/save', body: ok, auth: 'wrong-secret', status: 401, code: 'unauthorized' },
  { name: 'details with a garbage bearer token', method: 'GET', path: `/calls/details/${existing}`, auth: 'garbage-bearer', status: 401, code: 'unauthorized' },
  { name: 'list without credentials', method: 'GET', path: '/calls/list', auth: 'none', status: 401, code: 'unauthorized' },
  { name: 'update-audio with the anon key', method: 'POST', path: '/calls/update-audio', body: { call_sid: existing, audio_url: 'https://x.example/a.mp3' }, auth: 'anon', status: 401, code: 'unauthorized' },
  // identity may not
  { name: 'a stranger saving into another restaurant', method: 'POST', path: '/calls/save', body: { call_sid: sid, restaurant_id: 'demo' }, auth: 'stranger', status: 403, code: 'forbidden' },
  { name: 'a stranger overwriting another restaurant\'s call', method: 'POST', path: '/calls/save', body: { call_sid: existing, customer_name: 'M' }, auth: 'stranger', status: 403, code: 'forbidden' },
];

async function headersFor(auth: Auth): Promise<Record<string, string>> {
  switch (auth) {
    case 'service': return creds.secretKey;
    case 'none': return {};
    case 'forged': return await creds.userHs256(randomUUID(), { secret: 'not-the-project-secret-but-long-enough-to-sign' });
    case 'expired': return await creds.userEs256(randomUUID(), { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    case 'anon': return creds.anonKey;
    case 'publishable': return creds.publishableKey;
    case 'wrong-secret': return { apikey: SECRET_KEY.slice(0, -2) + 'xx' };
    case 'garbage-bearer': return { authorization: 'Bearer a.b.c' };
    case 'stranger': return await creds.userEs256(strangerId);
  }
}
const strangerId = randomUUID();
beforeAll(async () => {
  await db.admin`insert into auth.users (id) values (${strangerId})`;
  await db.admin`insert into public.restaurants (id) values ('elsewhere')`;
  await db.admin`insert into public.restaurant_members (restaurant_id, user_id) values ('elsewhere', ${strangerId})`;
});

describe('bad requests', () => {
  it('has at least 40 of them', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)('$name → $status $code', async (c) => {
    const before = await db.fingerprint();
    const headers = { ...(await headersFor(c.auth ?? 'service')) };
    let raw: string | Uint8Array | undefined = c.raw;
    if (c.body !== undefined) raw = JSON.stringify(c.body);
    if (raw !== undefined && c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    const res = await client.request(c.method, c.path, { headers, raw: raw as BodyInit | undefined });
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.body.success).toBe(false);
    expect(res.body.error.code).toBe(c.code);
    expect(typeof res.body.error.message).toBe('string');
    expect(res.body.error.message).not.toMatch(/at .*\.ts:\d+/);
    if (c.field) expect(JSON.stringify(res.body.error)).toContain(c.field);
    expect(await db.fingerprint()).toBe(before);
  });
});
