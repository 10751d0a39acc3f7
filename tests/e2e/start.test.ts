// `npm start` end to end: the real start script, embedded Postgres on 54322 and the Deno functions
// server on 54321, in a throwaway data folder; stopped with SIGINT like Ctrl-C.
// It needs the two fixed ports of `supabase start`: with `npm start` (or `supabase start`) running,
// it fails at once and says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../local/database.ts';
import { API_URL, API_PORT, DB_PORT, SECRET_KEY } from '../../local/keys.ts';

const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const POSTGRES_URL = `postgresql://postgres:postgres@127.0.0.1:${DB_PORT}/postgres`;

async function portFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Our environment, with a throwaway data folder and without DATABASE_URL (always the embedded cluster). */
function childEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CALL_RECORDINGS_DATA_DIR: dataDir, FORCE_COLOR: '0' };
  delete env.DATABASE_URL;
  return env;
}

interface Run {
  child: ChildProcess;
  output: () => string;
  readyMs: number;
  sessionKid: string;
}

/** Runs local/start.ts until it prints its ready line. */
async function start(dataDir: string, args: string[] = []): Promise<Run> {
  const child = spawn(TSX, ['local/start.ts', ...args], { cwd: ROOT, env: childEnv(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => { output += chunk; });
  child.stderr!.on('data', (chunk) => { output += chunk; });
  const readyMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 25 s:\n${output}`)), 25_000);
    const onData = () => {
      const m = /Ready in (\d+) ms/.exec(output);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local/start.ts exited with ${code} before it was ready:\n${output}`));
    });
  });
  const kid = /Session key: ES256, kid (\S+)/.exec(output)?.[1] ?? '';
  return { child, output: () => output, readyMs, sessionKid: kid };
}

/** SIGINT (Ctrl-C); resolves with the exit code, or fails after `ms`. */
async function stop(run: Run, ms = 15_000): Promise<number | null> {
  if (run.child.exitCode !== null) return run.child.exitCode;
  const exited = new Promise<number | null>((resolve) => run.child.once('exit', (code) => resolve(code)));
  run.child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not exit within ${ms} ms of SIGINT:\n${run.output()}`)), ms);
  });
  try {
    return await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('npm start', () => {
  const folder = mkdtempSync(join(tmpdir(), 'call-recordings-start-'));
  chmodSync(folder, 0o755); // as root, Postgres runs as the user postgres and must reach the data folder
  const dataDir = join(folder, 'data');
  const runs: Run[] = [];
  let firstKid = '';

  beforeAll(async () => {
    const busy = [];
    if (!(await portFree(API_PORT))) busy.push(API_PORT);
    if (!(await portFree(DB_PORT))) busy.push(DB_PORT);
    if (busy.length) {
      throw new Error(`${busy.length > 1 ? 'ports' : 'port'} ${busy.join(' and ')} on 127.0.0.1 ${busy.length > 1 ? 'are' : 'is'} in use: ` +
        'is `npm start` or `supabase start` running? ' +
        'This test starts its own stack on those ports; stop the other one first.');
    }
  });

  afterAll(async () => {
    for (const run of runs) {
      if (run.child.exitCode === null && run.child.signalCode === null) await stop(run).catch(() => run.child.kill('SIGKILL'));
    }
    rmSync(folder, { recursive: true, force: true });
  });

  it('starts a fresh stack: migrated and seeded Postgres on 54322, functions on 54321', async () => {
    const run = await start(dataDir, ['--reset']);
    runs.push(run);
    console.log(`fresh start ready in ${run.readyMs} ms`);
    firstKid = run.sessionKid;
    expect(firstKid).toMatch(/^[0-9a-f-]{36}$/);

    const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`
        select current_user as who,
               to_regclass('public.calls') is not null as calls,
               (select name from public.restaurants where id = 'demo') as demo`;
      expect(row).toEqual({ who: 'postgres', calls: true, demo: 'Demo Pizzeria' });
      // Something to find after a restart.
      await sql`insert into public.calls (call_sid, restaurant_id) values (${'CA' + 'e2e0'.repeat(8)}, 'demo')`;
    } finally {
      await sql.end();
    }

    const unknown = await fetch(`${API_URL}/functions/v1/no-such-function/x`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ code: 'NOT_FOUND', message: 'Function not found' });

    if (existsSync(join(ROOT, 'supabase', 'functions', 'calls', 'index.ts'))) {
      // The calls function loads in real Deno (its deno.json pins resolve from node_modules).
      const list = await fetch(`${API_URL}/functions/v1/calls/list?limit=1`, { headers: { apikey: SECRET_KEY } });
      expect(list.status).toBe(200);
      expect(await list.json()).toMatchObject({ success: true });
    }

    expect(await stop(run)).toBe(0);
    expect(await portFree(API_PORT)).toBe(true);
    expect(await portFree(DB_PORT)).toBe(true);
  }, 30_000);

  it('keeps data and the session key across restarts', async () => {
    const run = await start(dataDir);
    runs.push(run);
    console.log(`restart ready in ${run.readyMs} ms`);
    expect(run.output()).not.toContain('Loaded supabase/seed.sql');
    expect(run.sessionKid).toBe(firstKid);
    const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`select 1 from public.calls where call_sid = ${'CA' + 'e2e0'.repeat(8)}`;
      expect(rows).toHaveLength(1);
    } finally {
      await sql.end();
    }
    expect(await stop(run)).toBe(0);
    expect(await portFree(DB_PORT)).toBe(true);
  }, 30_000);

  it('fails fast with a clear message when a port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(API_PORT, '127.0.0.1', resolve));
    try {
      const child = spawn(TSX, ['local/start.ts'], { cwd: ROOT, env: childEnv(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (c) => { output += c; });
      child.stderr!.on('data', (c) => { output += c; });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(output).toContain(`Port ${API_PORT} on 127.0.0.1 is already in use`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 15_000);
});
