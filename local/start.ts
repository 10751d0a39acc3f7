// `npm start`: the parts of `supabase start` this project uses, without Docker.
//   Postgres 17  127.0.0.1:54322  postgres/postgres (bootstrap superuser supabase_admin), data kept in
//                .local-data/ between runs; platform model + migrations (Supabase CLI) + seed on a
//                fresh folder, new migrations on every start
//   functions    http://127.0.0.1:54321/functions/v1/<name>, served by a real Deno process
//   keys         the CLI's local JWT secret and demo keys; an ES256 session key kept in the data folder
// Not here: Storage, Auth, PostgREST, Realtime, Studio (local/storage-writes.ts writes
// storage.objects exactly as the Storage server does).
//
//   npm start                    start (or resume) the local stack; Ctrl-C stops it
//   npm start -- --reset         delete the data folder first
//   DATABASE_URL=postgresql://supabase_admin:…@host:port/postgres npm start
//                                use that Postgres instead (e.g. the one `supabase db start` runs);
//                                the platform model only where it is not a Supabase database yet
//   CALL_RECORDINGS_DATA_DIR=…   another data folder (tests)
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import postgres from 'postgres';
import { connectionUrl, postmasterPid, startCluster, type Cluster } from './cluster.ts';
import { ROOT, applyMigrations, applyPlatformModel, loadSeed } from './database.ts';
import { startFunctionsServer, type FunctionsServer } from './functions.ts';
import {
  API_PORT, API_URL, DB_PORT, JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY, functionEnv, legacyKey, newSigningKey,
  type SigningKey,
} from './keys.ts';

const USAGE = `usage: npm start [-- --reset]
  --reset   delete the data folder (${process.env.CALL_RECORDINGS_DATA_DIR ?? '.local-data'}) first
env: DATABASE_URL (use that Postgres, a superuser URL), CALL_RECORDINGS_DATA_DIR (data folder)`;

const DATA_DIR = resolve(process.env.CALL_RECORDINGS_DATA_DIR ?? join(ROOT, '.local-data'));
const PG_DIR = join(DATA_DIR, 'postgres');
const SIGNING_KEY_FILE = join(DATA_DIR, 'signing-key.json');
/** Present once platform model, migrations and seed have been applied to the embedded cluster. */
const INITIALISED = join(DATA_DIR, 'initialised');
/** Marks a folder as ours, so --reset never deletes anything else. */
const MARKER = join(DATA_DIR, 'README.txt');

const display = (path: string) => {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel || '.';
};

class StartError extends Error {}

// -------------------------------------------------------------------------------------------------
// Stopping: Ctrl-C / SIGTERM stop Deno, then Postgres, and exit 0.
// -------------------------------------------------------------------------------------------------
let cluster: Cluster | undefined;
let functions: FunctionsServer | undefined;
let stopping = false;

async function stopPostgres(): Promise<void> {
  const running = cluster;
  cluster = undefined;
  await running?.stop();
}

async function shutdown(code: number, reason?: string): Promise<never> {
  if (!stopping) {
    stopping = true;
    if (reason) console.log(`\n${reason}`);
    // Should anything hang, do not hang with it.
    setTimeout(() => {
      console.error('Stopping took more than 20 s; exiting anyway.');
      process.exit(1);
    }, 20_000).unref();
    try {
      const running = Boolean(functions || cluster);
      await functions?.stop();
      await stopPostgres();
      if (running) console.log('Stopped.');
    } catch (error) {
      console.error('Error while stopping:', error);
      code = 1;
    }
    process.exit(code);
  }
  return await new Promise<never>(() => {});
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => void shutdown(0, `${signal} received, stopping…`));
}
process.on('unhandledRejection', (error) => {
  console.error(error);
  void shutdown(1);
});

// -------------------------------------------------------------------------------------------------
// Steps
// -------------------------------------------------------------------------------------------------
async function portInUse(port: number): Promise<boolean> {
  return await new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(true));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolvePort(false)));
  });
}

async function checkPorts(usesEmbeddedPostgres: boolean): Promise<void> {
  const problems: string[] = [];
  if (await portInUse(API_PORT)) {
    problems.push(`Port ${API_PORT} on 127.0.0.1 is already in use, so the functions server cannot listen there.`);
  }
  if (usesEmbeddedPostgres && (await portInUse(DB_PORT))) {
    const pid = postmasterPid(PG_DIR);
    problems.push(`Port ${DB_PORT} on 127.0.0.1 is already in use, so Postgres cannot listen there.` +
      (pid ? `\n  It is the Postgres of ${display(PG_DIR)} (pid ${pid}): another \`npm start\` is running, or a killed one left it` +
        ` behind (then stop it with: kill ${pid}).` : ''));
  }
  if (problems.length) {
    throw new StartError(`${problems.join('\n')}\nIs \`npm start\` or \`supabase start\` already running? Stop it first` +
      (usesEmbeddedPostgres ? `, or set DATABASE_URL to use the Postgres that is running.` : '.'));
  }
}

function resetDataDir(): void {
  if (!existsSync(DATA_DIR)) return;
  if (readdirSync(DATA_DIR).length > 0 && !existsSync(MARKER)) {
    throw new StartError(`Refusing to delete ${DATA_DIR}: it has no ${display(MARKER)}, so it may not be a data folder of npm start. Delete it yourself.`);
  }
  rmSync(DATA_DIR, { recursive: true, force: true });
  console.log(`Deleted ${display(DATA_DIR)}.`);
}

/**
 * As root, Postgres runs as the OS user `postgres` (local/cluster.ts), which must be able to reach
 * the data folder: every folder above it needs the x bit for others. Say so instead of letting
 * initdb fail obscurely.
 */
function checkTraversable(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  for (let dir = dirname(DATA_DIR); dir !== dirname(dir); dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new StartError(`Postgres runs as the user postgres (we are root) and cannot reach ${DATA_DIR}: ` +
        `${dir} is not traversable by others. Run: chmod o+x ${dir} (or choose another CALL_RECORDINGS_DATA_DIR).`);
    }
  }
}

function prepareDataDir(): void {
  mkdirSync(DATA_DIR, { recursive: true });
  if (!existsSync(MARKER)) {
    writeFileSync(MARKER, 'Data of `npm start` (local/start.ts): Postgres cluster, session signing key, generated import map.\n' +
      '`npm start -- --reset` deletes this folder.\n');
  }
}

async function signingKey(): Promise<SigningKey> {
  if (existsSync(SIGNING_KEY_FILE)) return JSON.parse(readFileSync(SIGNING_KEY_FILE, 'utf8')) as SigningKey;
  const key = await newSigningKey();
  writeFileSync(SIGNING_KEY_FILE, JSON.stringify(key, null, 2) + '\n', { mode: 0o600 });
  return key;
}

/** The CLI's output: progress (stderr) first, then its verdict (stdout, which database.ts puts first). */
function printCli(output: string): void {
  const lines = output.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const progress = (l: string) => /^(Connecting|Applying|Skipping|Seeding|NOTICE|WARN)/.test(l);
  for (const line of [...lines.filter(progress), ...lines.filter((l) => !progress(l))]) console.log(`  ${line}`);
}

function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

function masked(url: string): string {
  const u = new URL(url);
  if (u.password && u.password !== 'postgres') u.password = '****';
  return u.toString();
}

async function hasMigrationHistory(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`select to_regclass('supabase_migrations.schema_migrations') is not null as present`;
    return Boolean(row?.present);
  } finally {
    await sql.end();
  }
}

/** Prepares the database; returns the URL of the role `postgres`, which functions connect as. */
async function prepareDatabase(): Promise<{ postgresUrl: string; note: string }> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const user = decodeURIComponent(new URL(external).username);
    const postgresUrl = user === 'postgres' ? external : withCredentials(external, 'postgres', 'postgres');
    console.log(`Using DATABASE_URL (${masked(external)}).`);
    const applied = await applyPlatformModel(external);
    console.log(applied ? 'Applied the platform model (local/platform.sql).' : 'Already a Supabase database (or prepared before): platform model not applied.');
    const seeded = await hasMigrationHistory(postgresUrl);
    console.log('Applying migrations (supabase migration up, as postgres)…');
    printCli(await applyMigrations(postgresUrl));
    if (!seeded) {
      await loadSeed(postgresUrl);
      console.log('Loaded supabase/seed.sql (first migration of this database).');
    }
    return { postgresUrl, note: 'DATABASE_URL' };
  }

  const fresh = !existsSync(join(PG_DIR, 'PG_VERSION')) || !existsSync(INITIALISED);
  // initdb needs an empty folder: clear what a failed first start left behind.
  if (!existsSync(join(PG_DIR, 'PG_VERSION'))) rmSync(PG_DIR, { recursive: true, force: true });
  checkTraversable();
  console.log(`${existsSync(join(PG_DIR, 'PG_VERSION')) ? 'Starting' : 'Initialising'} Postgres 17 in ${display(PG_DIR)}…`);
  cluster = await startCluster({ dataDir: PG_DIR, port: DB_PORT, persistent: true, durable: true });
  const postgresUrl = connectionUrl(DB_PORT, 'postgres', 'postgres', 'postgres');
  if (fresh) {
    await applyPlatformModel(cluster.url('postgres'));
    console.log('Applied the platform model (local/platform.sql) as supabase_admin.');
  }
  console.log('Applying migrations (supabase migration up, as postgres)…');
  printCli(await applyMigrations(postgresUrl));
  if (fresh) {
    await loadSeed(postgresUrl);
    writeFileSync(INITIALISED, `${new Date().toISOString()}\n`);
    console.log('Loaded supabase/seed.sql.');
  }
  return { postgresUrl, note: `embedded, data in ${display(PG_DIR)}` };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  const unknown = args.filter((a) => a !== '--reset');
  if (unknown.length) throw new StartError(`unknown argument ${unknown.join(' ')}\n${USAGE}`);
  const embedded = !process.env.DATABASE_URL;

  await checkPorts(embedded);
  if (args.includes('--reset')) {
    if (!embedded) console.log('--reset with DATABASE_URL deletes only the local data folder, never that database.');
    resetDataDir();
  }
  prepareDataDir();

  const { postgresUrl, note } = await prepareDatabase();
  const signing = await signingKey();
  const env = await functionEnv({ dbUrl: postgresUrl, signing });

  functions = await startFunctionsServer({ env, port: API_PORT, workDir: DATA_DIR });
  void functions.exited.then((code) => {
    if (!stopping) void shutdown(1, `The functions server exited unexpectedly (code ${code}); stopping.`);
  });

  const rows: [string, string][] = [
    ['API URL', API_URL],
    ['Functions URL', `${API_URL}/functions/v1`],
    ...functions.functions.map((f): [string, string] =>
      ['', `${API_URL}/functions/v1/${f.name}  (${f.name}, verify_jwt = ${f.verifyJwt})`]),
    ['DB URL', `${masked(postgresUrl)}  (${note})`],
    ['Publishable key', PUBLISHABLE_KEY],
    ['Secret key', SECRET_KEY],
    ['anon key', await legacyKey('anon')],
    ['service_role key', await legacyKey('service_role')],
    ['JWT secret', JWT_SECRET],
    ['Session key', `ES256, kid ${String(signing.publicJwk.kid)} (${display(SIGNING_KEY_FILE)})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('\nLocal development setup is running (no Docker).\n');
  for (const [key, value] of rows) console.log(`${key.padStart(width)}${key ? ':' : ' '} ${value}`);
  if (functions.functions.length === 0) console.log(`${''.padStart(width)}  (no functions in supabase/functions yet)`);
  console.log('\nNot running without Docker: Storage, Auth, PostgREST, Realtime, Studio.' +
    '\nlocal/storage-writes.ts writes storage.objects exactly as the Storage server does; `npm run demo` uses it.');
  console.log(`\nReady in ${Math.round(performance.now())} ms. Press Ctrl-C to stop.`);
}

main().catch(async (error: unknown) => {
  console.error(error instanceof StartError ? `\n${error.message}` : error);
  await shutdown(1);
});
