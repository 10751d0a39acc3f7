// A slow database: another transaction holds what a request needs (the per-call link lock, or the
// call's row). The request must end cleanly within a documented bound — the function's
// statement_timeout (createDatabase's statementTimeoutSeconds, 8 s by default; 1 s here) plus a
// round trip — with 503 and retry_after, write nothing, and succeed once the lock is released.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { callSid, useTestDatabase } from '../support/db.ts';
import { makeCredentials } from '../support/http.ts';
import { rawClient, type RawClient, type RawReply } from '../support/handler.ts';
import { SECRET_KEY } from '../../local/keys.ts';

const db = useTestDatabase();
const STATEMENT_TIMEOUT_S = 1;
/** The documented bound: the statement timeout plus 1 s for the round trips around it. */
const BOUND_MS = STATEMENT_TIMEOUT_S * 1000 + 1000;
const service = { apikey: SECRET_KEY };
let client: RawClient;
let holder: postgres.Sql;

beforeAll(async () => {
  const creds = await makeCredentials();
  client = rawClient({ dbUrl: db.url('postgres', 'postgres'), signing: creds.signing, statementTimeoutSeconds: STATEMENT_TIMEOUT_S });
  holder = postgres(db.url(), { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await client.database.end();
  await holder.end({ timeout: 5 });
});

/** Runs `lock` in a transaction on another connection and keeps it open until release() is called. */
async function hold(lock: (tx: postgres.TransactionSql) => Promise<unknown>) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => { locked = resolve; });
  const done = holder.begin(async (tx) => {
    await lock(tx);
    locked();
    // Released by the test, or after the bound and a margin: a request that waits for the lock
    // past the bound then finishes, and fails on its duration instead of hanging the test.
    await Promise.race([released, new Promise((resolve) => setTimeout(resolve, BOUND_MS + 3000))]);
  });
  await isLocked;
  return { release: async () => { release(); await done; } };
}

function expectUnavailable(res: RawReply) {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('2');
  expect(res.headers.get('access-control-allow-origin')).toBe('*');
  expect(res.json).toMatchObject({ success: false, error: { code: 'database_unavailable' }, retry: true, retry_after: 2000 });
  // It waited for the lock until the statement timeout, and no longer than the bound.
  expect(res.ms).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_S * 1000 - 50);
  expect(res.ms).toBeLessThan(BOUND_MS);
}

describe('a request that needs a lock another transaction holds', () => {
  it('saving a call while its link lock is held: 503 within the bound, nothing written, then 200', async () => {
    const sid = callSid();
    const body = { call_sid: sid, customer_name: 'Ada', audio_url: 'https://cdn.example.com/a.mp3' };
    const lock = await hold((tx) => tx`select call_recordings.lock_call(${sid})`);
    try {
      expectUnavailable(await client.request('POST', '/calls/save', { headers: service, body }));
      expect(await db.admin`select 1 from public.calls where call_sid = ${sid}`).toHaveLength(0);
      expect(await db.admin`select 1 from call_recordings.pending_audio where call_sid = ${sid}`).toHaveLength(0);
      // Readers are not blocked by it.
      const list = await client.request('GET', '/calls/list?limit=1', { headers: service });
      expect(list.status).toBe(200);
      expect(list.ms).toBeLessThan(500);
    } finally {
      await lock.release();
    }
    const res = await client.request('POST', '/calls/save', { headers: service, body });
    expect(res.status).toBe(200);
    expect(res.json.call).toMatchObject({ call_sid: sid, customer_name: 'Ada', audio_url: 'https://cdn.example.com/a.mp3' });
  });

  it('update-audio while the call row is locked: 503 within the bound, the URL unchanged, then 200', async () => {
    const sid = callSid();
    expect((await client.request('POST', '/calls/save', { headers: service, body: { call_sid: sid, audio_url: 'https://cdn.example.com/old.mp3' } })).status).toBe(200);
    const lock = await hold((tx) => tx`select 1 from public.calls where call_sid = ${sid} for update`);
    try {
      expectUnavailable(await client.request('POST', '/calls/update-audio', { headers: service, body: { call_sid: sid, audio_url: 'https://cdn.example.com/new.mp3' } }));
      const details = await client.request('GET', `/calls/details/${sid}`, { headers: service });
      expect(details.status).toBe(200);
      expect(details.json.call.audio_url).toBe('https://cdn.example.com/old.mp3');
    } finally {
      await lock.release();
    }
    const res = await client.request('POST', '/calls/update-audio', { headers: service, body: { call_sid: sid, audio_url: 'https://cdn.example.com/new.mp3' } });
    expect(res.status).toBe(200);
    expect(res.json.call.audio_url).toBe('https://cdn.example.com/new.mp3');
  });

  it('parking a URL for an unsaved call while its link lock is held: 503 within the bound, nothing parked, then 404 retry with the URL parked', async () => {
    const sid = callSid();
    const lock = await hold((tx) => tx`select call_recordings.lock_call(${sid})`);
    try {
      expectUnavailable(await client.request('POST', '/calls/update-audio', { headers: service, body: { call_sid: sid, audio_url: 'https://cdn.example.com/p.mp3' } }));
      expect(await db.admin`select 1 from call_recordings.pending_audio where call_sid = ${sid}`).toHaveLength(0);
    } finally {
      await lock.release();
    }
    const res = await client.request('POST', '/calls/update-audio', { headers: service, body: { call_sid: sid, audio_url: 'https://cdn.example.com/p.mp3' } });
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ retry: true, retry_after: 2000 });
    expect(await db.admin`select audio_url from call_recordings.pending_audio where call_sid = ${sid}`).toEqual([{ audio_url: 'https://cdn.example.com/p.mp3' }]);
  });
});
