// The seed's flows end to end: a real Deno process serves the `calls` function (as `npm start`
// does), supabase-js `functions.invoke` and plain fetch are the clients, and recordings are
// written into storage.objects exactly as the Storage server writes them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, FunctionsHttpError, type SupabaseClient } from '@supabase/supabase-js';
import ws from 'ws';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callSid, recordingSid, useTestDatabase } from '../support/db.ts';
import { makeCredentials } from '../support/http.ts';
import { freePort } from '../../local/cluster.ts';
import { SECRET_KEY, functionEnv } from '../../local/keys.ts';
import { startFunctionsServer, type FunctionsServer } from '../../local/functions.ts';

const db = useTestDatabase();
let server: FunctionsServer;
let backend: SupabaseClient;
let workDir: string;
let url: string;
const logs: string[] = [];

beforeAll(async () => {
  const creds = await makeCredentials();
  const port = await freePort();
  workDir = mkdtempSync(join(tmpdir(), 'calls-e2e-'));
  url = `http://127.0.0.1:${port}`;
  server = await startFunctionsServer({
    env: await functionEnv({ dbUrl: db.url('postgres', 'postgres'), signing: creds.signing, apiUrl: url }),
    port,
    workDir,
    onLog: (line) => logs.push(line),
  });
  // Our users' backend: supabase-js with the secret key (Node 20 needs the ws transport).
  backend = createClient(url, SECRET_KEY, { realtime: { transport: ws as never }, auth: { persistSession: false } });
  await db.admin`insert into public.restaurants (id, name) values ('demo', 'Demo Pizzeria')`;
}, 90_000);

afterAll(async () => {
  await server?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function invoke(name: string, options: { body?: unknown; method?: 'GET' | 'POST' }) {
  const { data, error } = await backend.functions.invoke(name, { body: options.body as never, method: options.method ?? 'POST' });
  if (error instanceof FunctionsHttpError) {
    const response = error.context as Response;
    return { status: response.status, body: await response.json() };
  }
  if (error) throw error;
  return { status: 200, body: data };
}

async function details(id: string) {
  const response = await fetch(`${url}/functions/v1/calls/details/${id}`, { headers: { apikey: SECRET_KEY } });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

describe('calls through real Deno', () => {
  it('save → upload → details shows audio_url at once', async () => {
    const sid = callSid();
    const saved = await invoke('calls/save', { body: { call_id: sid, restaurant_id: 'demo', customer_name: 'Ada' } });
    expect(saved.status).toBe(200);
    expect(saved.body.call.audio_url).toBeNull();
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload('call-recordings', name, { upsert: true });
    const res = await details(sid);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.body.call.audio_url).toBe(`${'http://127.0.0.1:54321'}/storage/v1/object/authenticated/call-recordings/${name}`);
  });

  it('upload first (dated path) → save → details', async () => {
    const sid = callSid();
    const name = `call-recordings/demo/2026-11-26/${sid}.mp3`;
    await db.storage.upload('call-recordings', name);
    const saved = await invoke('calls/save', { body: { call_sid: sid } });
    expect(saved.body.call).toMatchObject({ restaurant_id: 'demo' });
    expect(saved.body.call.audio_url).toContain(name);
    const res = await invoke(`calls/details/${saved.body.call.id}`, { method: 'GET' });
    expect(res.body.call.recordings[0]).toMatchObject({ object_name: name, recorded_on: '2026-11-26' });
  });

  it('update-audio before save → 404 retry → save → linked; retry_count ≥ 2 → retry: false', async () => {
    const sid = callSid();
    const audio_url = 'https://cdn.example.com/twilio.mp3';
    const first = await invoke('calls/update-audio', { body: { call_sid: sid, audio_url, retry_count: 0 } });
    expect(first).toEqual({ status: 404, body: expect.objectContaining({ success: false, retry: true, retry_after: 2000 }) });
    const last = await invoke('calls/update-audio', { body: { call_sid: sid, audio_url, retry_count: 2 } });
    expect(last.status).toBe(404);
    expect(last.body.retry).toBe(false);
    // The old backend gives up here; the URL was kept, so the save links it anyway.
    const saved = await invoke('calls/save', { body: { call_id: sid, restaurant_id: 'demo' } });
    expect(saved.body.call.audio_url).toBe(audio_url);
    expect((await details(sid)).body.call.audio_url).toBe(audio_url);
  });

  it('answers the dashboard\'s list and CORS preflight through the gateway path', async () => {
    const list = await invoke('calls/list?backend=demo&limit=10', { method: 'GET' });
    expect(list.status).toBe(200);
    expect(list.body.calls.length).toBeGreaterThanOrEqual(3);
    const preflight = await fetch(`${url}/functions/v1/calls/save`, { method: 'OPTIONS', headers: { origin: 'http://app.example' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('apikey');
    const anonymous = await fetch(`${url}/functions/v1/calls/list`);
    expect(anonymous.status).toBe(401);
    expect(logs.filter((l) => /error/i.test(l))).toEqual([]);
  });
});
