// `npm run bench`: the proof-suite benchmark (issue 4). One embedded PostgreSQL 17 cluster, one
// database per case, the real Deno function server, a bare Deno baseline, autocannon. Prints a
// table and, as its last line, one JSON object with the numbers. Not part of `npm test`.
//
//   npm run bench
//   BENCH_SECONDS=8 BENCH_CONNECTIONS=10 BENCH_SCALE_LARGE=1000000 npm run bench
//
// Sections (each says how it measures):
//   1. trigger overhead   storage.objects upserts as the Storage server issues them, watched bucket,
//                         migrated database vs platform model only; client side and server side
//   2. HTTP               GET details / POST save / POST update-audio through the function server;
//                         details also through a bare Deno handler doing the same database work
//                         (bench/bare-details.ts) and through the handler without the local server
//                         (bench/handler-details.ts)
//   3. round trips        a counting TCP proxy between a second function server and Postgres
//   4. scale              save + upload at 10k vs 1M calls (and recordings, and objects)
//   5. time to audio      commit of the later of upload/save → audio_url seen by another connection
import postgres, { type Sql } from 'postgres';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { freePort, startCluster, type Cluster } from '../local/cluster.ts';
import { ROOT, applyMigrations, applyPlatformModel } from '../local/database.ts';
import { DENO, runDenoScript, startFunctionsServer, type FunctionsServer } from '../local/functions.ts';
import { SECRET_KEY, functionEnv, newSigningKey } from '../local/keys.ts';
import { SERVICE_ROLE, StorageServer, setRequestContext, writeObject } from '../local/storage-writes.ts';
import { mergeLoads, runLoad, type LoadRequest, type LoadResult } from './load.ts';
import { startTurnProxy, type TurnProxy } from './proxy.ts';
import { fmt, median, msSince, percentile, round, table } from './stats.ts';

const int = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
};

const CONFIG = {
  connections: int('BENCH_CONNECTIONS', 10),
  /** Seconds of measured load per route (details: split in DETAILS_SLICES interleaved slices per server). */
  seconds: int('BENCH_SECONDS', 8),
  warmupSeconds: 2,
  poolSize: 5,
  triggerBatches: int('BENCH_TRIGGER_BATCHES', 12),
  triggerBatchSize: 200,
  serverBatches: 10,
  serverBatchSize: 500,
  explainSamples: 100,
  fullUploadBatches: 6,
  httpCalls: 2000,
  roundtripRequests: 200,
  scaleSmall: int('BENCH_SCALE_SMALL', 10_000),
  scaleLarge: int('BENCH_SCALE_LARGE', 1_000_000),
  scaleBatches: 6,
  scaleBatchSize: 100,
  scaleServerBatchSize: 300,
  audioSamples: 200,
};

/** The details comparison runs in this many interleaved slices per server. */
const DETAILS_SLICES = 4;

const BUCKET = 'call-recordings';
const RESTAURANT = 'bench';
const STARTED = process.hrtime.bigint();

// -------------------------------------------------------------------------------------------------
// Resources, always released
// -------------------------------------------------------------------------------------------------
const cleanups: { name: string; run: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;
function onCleanup(name: string, run: () => Promise<void> | void) {
  cleanups.push({ name, run });
}
async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const { name, run } of cleanups.reverse()) {
      try {
        await run();
      } catch (error) {
        console.error(`cleanup (${name}) failed:`, error);
      }
    }
  })();
  await cleaning;
}
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping Deno and Postgres, deleting temporary folders…`);
    setTimeout(() => process.exit(1), 30_000).unref();
    void cleanup().finally(() => process.exit(130));
  });
}

const log = (message: string) => console.log(`[bench ${(msSince(STARTED) / 1000).toFixed(1).padStart(5)} s] ${message}`);

let cluster: Cluster;
const clients: Sql[] = [];
function open(database: string, user = 'supabase_admin', options: { max?: number } = {}): Sql {
  const sql = postgres(cluster.url(database, user, 'postgres'), { max: options.max ?? 1, onnotice: () => {}, idle_timeout: 0 });
  clients.push(sql);
  return sql;
}

const sha = (value: string) => createHash('md5').update(value).digest('hex');
const sidFor = (tag: string) => `CA${sha(tag)}`;
const recFor = (tag: string) => `RE${sha(`rec:${tag}`)}`;
const randomSid = () => `CA${randomBytes(16).toString('hex')}`;
const randomRec = () => `RE${randomBytes(16).toString('hex')}`;

/** Runs one upload's final transaction exactly as the Storage server does (role, claims, upsert). */
async function uploadFinal(storage: Sql, name: string): Promise<void> {
  await storage.begin(async (tx) => {
    await setRequestContext(tx, SERVICE_ROLE);
    await writeObject(tx, BUCKET, name);
  });
}

/** public.save_call as the function calls it: one transaction with the service role's context. */
async function saveCall(db: Sql, sid: string): Promise<void> {
  await db.begin(async (tx) => {
    await setRequestContext(tx, SERVICE_ROLE);
    await tx`select public.save_call(${tx.json({ call_sid: sid, restaurant_id: RESTAURANT, customer_name: 'Bench Customer', phone_number: '+15550100', order_items: [{ item: 'Margherita', quantity: 1 }], total_price: 'PKR 1,500', call_duration: 95 })}) as call`;
  });
}

/** A plpgsql loop in one session: `body` per iteration (i = 0…n-1), each iteration its own transaction. Returns µs. */
async function serverLoop(sql: Sql, n: number, body: string): Promise<number> {
  await sql.unsafe(`
    do $bench$
    declare
      t0 timestamptz := clock_timestamp();
      nm text;
      sid text;
      obj record;
    begin
      for i in 0..${n - 1} loop
        ${body}
      end loop;
      perform set_config('bench.elapsed_us', (extract(epoch from clock_timestamp() - t0) * 1000000)::bigint::text, false);
    end
    $bench$`);
  const [row] = await sql`select current_setting('bench.elapsed_us') as us`;
  return Number(row.us);
}

const CONTEXT_SQL = `perform set_config('role', 'service_role', true), set_config('request.jwt.claims', '{"role":"service_role"}', true);`;
const UPSERT_SQL = `
  insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version, user_metadata)
  values ('${BUCKET}', nm, null, null,
          jsonb_build_object('eTag', '"' || md5(nm) || '"', 'size', 48000, 'mimetype', 'audio/mpeg', 'cacheControl', 'max-age=3600',
                             'lastModified', now()::text, 'contentLength', 48000, 'httpStatusCode', 200),
          gen_random_uuid()::text, '{}')
  on conflict (name, bucket_id) do update set
    metadata = excluded.metadata, version = excluded.version, owner = excluded.owner,
    owner_id = excluded.owner_id, user_metadata = excluded.user_metadata
  returning * into obj;`;

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function vmHwmMb(pid: number): number {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** node_modules/.bin/deno may be a Node shim whose child is the real binary: find the deno process. */
function realDenoPid(pid: number): number {
  const exe = (p: number) => {
    try {
      return basename(readlinkSync(`/proc/${p}/exe`));
    } catch {
      return '';
    }
  };
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    if (exe(p) === 'deno') return p;
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim();
        if (children) queue.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // gone
    }
  }
  throw new Error(`no deno process under pid ${pid}`);
}

// -------------------------------------------------------------------------------------------------
// The bare Deno baseline (bench/bare-details.ts) and the handler without the local server
// (bench/handler-details.ts), started the way local/functions.ts starts the function server
// -------------------------------------------------------------------------------------------------
interface BenchServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startBenchServer(options: { script: string; env: Record<string, string>; port: number; workDir: string }): Promise<BenchServer> {
  const deno = await runDenoScript({
    script: join(ROOT, 'bench', options.script),
    env: { ...options.env, BENCH_PORT: String(options.port), CALLS_DB_POOL_SIZE: String(CONFIG.poolSize) },
    workDir: options.workDir,
    readyPrefix: 'bench-server ready',
    onLog: () => {},
  });
  return { url: `http://127.0.0.1:${options.port}`, child: deno.child, stop: () => deno.stop() };
}

// -------------------------------------------------------------------------------------------------
// 0. Databases
// -------------------------------------------------------------------------------------------------
async function prepareDatabases(admin: Sql): Promise<void> {
  await admin.unsafe('create database bench_template');
  await applyPlatformModel(cluster.url('bench_template'));
  await applyMigrations(cluster.url('bench_template', 'postgres', 'postgres'));
  const template = postgres(cluster.url('bench_template'), { max: 1, onnotice: () => {} });
  await template`insert into public.restaurants (id, name) values (${RESTAURANT}, 'Bench Pizzeria')`;
  await template`create extension if not exists pg_stat_statements with schema extensions`;
  await template.end();
  for (const name of ['bench_trigger', 'bench_http', 'bench_scale_small', 'bench_scale_large']) {
    await admin.unsafe(`create database ${name} template bench_template owner postgres`);
  }
  // The comparison database: only what Supabase's image and Storage server create, plus the bucket.
  await admin.unsafe('create database bench_platform');
  await applyPlatformModel(cluster.url('bench_platform'));
  const platform = postgres(cluster.url('bench_platform'), { max: 1, onnotice: () => {} });
  await platform`insert into storage.buckets (id, name, public) values (${BUCKET}, ${BUCKET}, false)`;
  await platform.end();
}

// -------------------------------------------------------------------------------------------------
// 1. Trigger overhead
// -------------------------------------------------------------------------------------------------
interface TriggerResult {
  clientRatio: number;
  clientAddedUs: number;
  clientBatchMs: { platform: number; migrated: number };
  clientP50Us: { platform: number; migrated: number };
  clientP99Us: { platform: number; migrated: number };
  serverRatio: number;
  serverAddedUs: number;
  serverDatedAddedUs: number;
  serverDatedPerWriteUs: { platform: number; migrated: number };
  serverPerWriteUs: { platform: number; migrated: number };
  explainTriggerUsP50: number;
  explainExecUsP50: { platform: number; migrated: number };
  fullUploadRatio: number;
  fullUploadMs: { platform: number; migrated: number };
  breakdown: { query: string; calls: number; meanUs: number }[];
  writes: number;
}

async function triggerOverhead(): Promise<TriggerResult> {
  const admin = open('bench_trigger');
  const migrated = open('bench_trigger', 'supabase_storage_admin');
  const platform = open('bench_platform', 'supabase_storage_admin');
  const N = CONFIG.triggerBatchSize;

  // Batch b, write i: even i → a call that exists (saved beforehand), odd i → a call not saved yet.
  const names = (tag: string) => Array.from({ length: N }, (_, i) => `${sidFor(`${tag}:${i}`)}_${recFor(`${tag}:${i}`)}.mp3`);
  const batchTags = ['warm', ...Array.from({ length: CONFIG.triggerBatches }, (_, b) => `c${b}`)];
  const laterTags = [...Array.from({ length: CONFIG.fullUploadBatches }, (_, b) => `f${b}`), 'breakdown'];
  const existing = [...batchTags, ...laterTags].flatMap((tag) => Array.from({ length: N / 2 }, (_, k) => sidFor(`${tag}:${2 * k}`)));
  await admin`insert into public.calls (call_sid, restaurant_id) select unnest(${existing}::text[]), ${RESTAURANT}`;
  await admin`vacuum analyze public.calls`;

  const runBatch = async (sql: Sql, list: string[]) => {
    const latencies: number[] = [];
    const start = process.hrtime.bigint();
    for (const name of list) {
      const t = process.hrtime.bigint();
      await uploadFinal(sql, name);
      latencies.push(msSince(t));
    }
    return { ms: msSince(start), latencies };
  };

  // Client side: one transaction per upload over loopback, batches interleaved ABBA.
  await runBatch(platform, names('warm'));
  await runBatch(migrated, names('warm'));
  const batchMs = { platform: [] as number[], migrated: [] as number[] };
  const lat = { platform: [] as number[], migrated: [] as number[] };
  for (let b = 0; b < CONFIG.triggerBatches; b++) {
    const list = names(`c${b}`);
    const order = b % 2 === 0 ? (['platform', 'migrated'] as const) : (['migrated', 'platform'] as const);
    for (const side of order) {
      const r = await runBatch(side === 'platform' ? platform : migrated, list);
      batchMs[side].push(r.ms);
      lat[side].push(...r.latencies);
    }
  }
  const linked = await admin`select count(*)::int as n from public.calls where audio_url is not null`;
  const recordings = await admin`select count(*)::int as n from public.recordings`;
  const errors = await admin`select count(*)::int as n from call_recordings.link_errors`;
  const expectedRecordings = (CONFIG.triggerBatches + 1) * N;
  if (recordings[0].n !== expectedRecordings || linked[0].n !== (CONFIG.triggerBatches + 1) * (N / 2) || errors[0].n !== 0) {
    throw new Error(`trigger did not link as expected: ${recordings[0].n} recordings, ${linked[0].n} linked calls, ${errors[0].n} link errors`);
  }

  // Server side: the same upserts in a plpgsql loop, one transaction per write, role + claims set in each.
  const SN = CONFIG.serverBatchSize;
  const serverTags = ['swarm', ...Array.from({ length: CONFIG.serverBatches }, (_, b) => `s${b}`)];
  for (const tag of serverTags) {
    await admin.unsafe(`insert into public.calls (call_sid, restaurant_id)
      select 'CA' || md5('${tag}:' || i), '${RESTAURANT}' from generate_series(0, ${SN - 1}, 2) i`);
  }
  await admin`vacuum analyze public.calls`;
  /** Warm both databases, then `batches` batches of `n` writes, alternating which side goes first. */
  const interleaved = async (name: (tag: string) => string, n: number, batches: number, tag: string) => {
    const body = (t: string) => `
    ${CONTEXT_SQL}
    nm := ${name(t)};
    ${UPSERT_SQL}
    commit;`;
    await serverLoop(platform, n, body(`${tag}warm`));
    await serverLoop(migrated, n, body(`${tag}warm`));
    const us = { platform: [] as number[], migrated: [] as number[] };
    for (let b = 0; b < batches; b++) {
      const order = b % 2 === 0 ? (['platform', 'migrated'] as const) : (['migrated', 'platform'] as const);
      for (const side of order) us[side].push(await serverLoop(side === 'platform' ? platform : migrated, n, body(`${tag}${b}`)));
    }
    return us;
  };
  const serverUs = await interleaved(
    (tag) => `'CA' || md5('${tag}:' || i) || '_RE' || md5('rec:${tag}:' || i) || '.mp3'`, SN, CONFIG.serverBatches, 's');
  // The recommended dated layout (call-recordings/<restaurant>/<date>/<CallSid>_<RecordingSid>.mp3), same loop.
  const DN = 100;
  const datedUs = await interleaved(
    (tag) => `'call-recordings/${RESTAURANT}/2026-11-26/CA' || md5('${tag}:' || i) || '_RE' || md5('rec:${tag}:' || i) || '.mp3'`, DN, 4, 'd');

  // EXPLAIN ANALYZE of single upserts: the trigger's own time as Postgres reports it.
  const explain = async (sql: Sql, name: string) => {
    return await sql.begin(async (tx) => {
      await setRequestContext(tx, SERVICE_ROLE);
      const rows = await tx.unsafe(`explain (analyze, format json)
        insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version, user_metadata)
        values ($1, $2, null, null, $3::jsonb, $4, '{}')
        on conflict (name, bucket_id) do update set
          metadata = excluded.metadata, version = excluded.version, owner = excluded.owner,
          owner_id = excluded.owner_id, user_metadata = excluded.user_metadata
        returning *`, [BUCKET, name, JSON.stringify({ size: 48000, mimetype: 'audio/mpeg' }), randomBytes(16).toString('hex')]);
      const plan = (rows[0]['QUERY PLAN'] as { 'Execution Time': number; Triggers?: { 'Trigger Name': string; Time: number }[] }[])[0];
      return { exec: plan['Execution Time'] * 1000, trigger: (plan.Triggers ?? []).find((t) => t['Trigger Name'] === 'call_recordings_link')?.Time };
    });
  };
  const explainSids = Array.from({ length: CONFIG.explainSamples }, (_, i) => (i % 2 === 0 ? randomSid() : null));
  await admin`insert into public.calls (call_sid, restaurant_id) select unnest(${explainSids.filter(Boolean) as string[]}::text[]), ${RESTAURANT}`;
  const exTrigger: number[] = [];
  const exExec = { platform: [] as number[], migrated: [] as number[] };
  for (const sid of explainSids) {
    const name = `${sid ?? randomSid()}_${randomRec()}.mp3`;
    const m = await explain(migrated, name);
    const p = await explain(platform, name);
    exExec.migrated.push(m.exec);
    exExec.platform.push(p.exec);
    if (m.trigger !== undefined) exTrigger.push(m.trigger * 1000);
  }

  // The whole upload as Storage runs it (rolled-back dry run + final transaction): the trigger runs twice.
  const storageMigrated = new StorageServer(migrated);
  const storagePlatform = new StorageServer(platform);
  const fullMs = { platform: [] as number[], migrated: [] as number[] };
  for (let b = 0; b < CONFIG.fullUploadBatches; b++) {
    const list = names(`f${b}`);
    const order = b % 2 === 0 ? (['platform', 'migrated'] as const) : (['migrated', 'platform'] as const);
    for (const side of order) {
      const server = side === 'platform' ? storagePlatform : storageMigrated;
      const start = process.hrtime.bigint();
      for (const name of list) await server.upload(BUCKET, name);
      fullMs[side].push(msSince(start));
    }
  }

  // Where the trigger's time goes: its statements, tracked (track = all) on fresh sessions, after
  // the measurements above so that tracking nested statements does not weigh on them.
  await admin.unsafe(`alter database bench_trigger set pg_stat_statements.track = 'all'`);
  const tracked = open('bench_trigger', 'supabase_storage_admin');
  await admin`select extensions.pg_stat_statements_reset()`;
  for (const name of names('breakdown')) await uploadFinal(tracked, name);
  const breakdown = await admin`
    select case when toplevel then '' else '  (nested) ' end || regexp_replace(query, '\\s+', ' ', 'g') as query,
           calls::int, round((total_exec_time / calls * 1000)::numeric, 1)::float as mean_us
    from extensions.pg_stat_statements
    where dbid = (select oid from pg_database where datname = 'bench_trigger')
      and userid <> 'supabase_admin'::regrole and calls >= ${N / 2}
    order by total_exec_time desc limit 14`;
  await admin.unsafe(`alter database bench_trigger reset pg_stat_statements.track`);

  const clientBatch = { platform: median(batchMs.platform), migrated: median(batchMs.migrated) };
  const clientP50 = { platform: percentile(lat.platform, 50) * 1000, migrated: percentile(lat.migrated, 50) * 1000 };
  const serverPerWrite = { platform: median(serverUs.platform) / SN, migrated: median(serverUs.migrated) / SN };
  return {
    clientRatio: clientBatch.migrated / clientBatch.platform,
    clientAddedUs: clientP50.migrated - clientP50.platform,
    clientBatchMs: clientBatch,
    clientP50Us: clientP50,
    clientP99Us: { platform: percentile(lat.platform, 99) * 1000, migrated: percentile(lat.migrated, 99) * 1000 },
    serverRatio: serverPerWrite.migrated / serverPerWrite.platform,
    serverAddedUs: serverPerWrite.migrated - serverPerWrite.platform,
    serverDatedAddedUs: (median(datedUs.migrated) - median(datedUs.platform)) / DN,
    serverDatedPerWriteUs: { platform: median(datedUs.platform) / DN, migrated: median(datedUs.migrated) / DN },
    serverPerWriteUs: serverPerWrite,
    explainTriggerUsP50: median(exTrigger),
    explainExecUsP50: { platform: median(exExec.platform), migrated: median(exExec.migrated) },
    fullUploadRatio: median(fullMs.migrated) / median(fullMs.platform),
    fullUploadMs: { platform: median(fullMs.platform) / N, migrated: median(fullMs.migrated) / N },
    breakdown: breakdown.map((r) => ({ query: String(r.query), calls: Number(r.calls), meanUs: Number(r.mean_us) })),
    writes: CONFIG.triggerBatches * N,
  };
}

// -------------------------------------------------------------------------------------------------
// 2 + 3. HTTP through the function server, the bare baseline, round trips
// -------------------------------------------------------------------------------------------------
interface HttpResult {
  details: LoadResult;
  bare: LoadResult;
  handler: LoadResult;
  save: LoadResult;
  updateAudio: LoadResult;
  functionPeakMb: number;
  barePeakMb: number;
  roundtrips: { details: number; save: number; updateAudio: number };
  statements: Record<string, { query: string; perRequest: number }[]>;
  traces: Record<string, string[]>;
  functionErrors: string[];
  /** Deno CPU time (user + system) per successful request, by route. */
  cpuUsPerRequest: Record<string, number>;
}

async function http(workDir: string): Promise<HttpResult> {
  const admin = open('bench_http');
  const N = CONFIG.httpCalls;
  // Calls with one recording each, uploaded the way Storage writes them (the trigger links them).
  await admin.unsafe(`
    insert into public.calls (call_sid, restaurant_id, customer_name, phone_number, order_items, total_price, call_duration, transcript)
    select 'CA' || md5('http:' || i), '${RESTAURANT}', 'Customer ' || i, '+1555' || lpad(i::text, 7, '0'),
           '[{"item": "Margherita", "quantity": 2, "price": "PKR 1,200"}]', 'PKR 2,400', 180,
           '[{"speaker": "agent", "text": "Hello, Bench Pizzeria."}, {"speaker": "customer", "text": "Two margheritas, please."}]'
    from generate_series(1, ${N}) i`);
  await admin.begin(async (tx) => {
    await setRequestContext(tx, SERVICE_ROLE);
    await tx.unsafe(`
      insert into storage.objects (bucket_id, name, metadata, version, user_metadata)
      select '${BUCKET}', 'CA' || md5('http:' || i) || '_RE' || md5('rec:http:' || i) || '.mp3',
             '{"size": 48000, "mimetype": "audio/mpeg"}', gen_random_uuid()::text, '{}'
      from generate_series(1, ${N}) i`);
  });
  await admin`vacuum analyze`;
  const sids = Array.from({ length: N }, (_, i) => sidFor(`http:${i + 1}`));

  const functionErrors: string[] = [];
  const onLog = (line: string, stream: 'stdout' | 'stderr') => {
    if (stream === 'stderr' && functionErrors.length < 20) functionErrors.push(line);
  };
  const signing = await newSigningKey();
  const fnPort = await freePort();
  const fnEnv = async (dbUrl: string, port: number) => ({
    ...(await functionEnv({ dbUrl, signing, apiUrl: `http://127.0.0.1:${port}` })),
    CALLS_DB_POOL_SIZE: String(CONFIG.poolSize),
  });
  const fn: FunctionsServer = await startFunctionsServer({
    env: await fnEnv(cluster.url('bench_http', 'postgres', 'postgres'), fnPort), port: fnPort, workDir, onLog,
  });
  onCleanup('function server', () => fn.stop());
  const dbUrl = cluster.url('bench_http', 'postgres', 'postgres');
  const bare = await startBenchServer({ script: 'bare-details.ts', env: { SUPABASE_DB_URL: dbUrl }, port: await freePort(), workDir });
  onCleanup('bare server', () => bare.stop());
  const handlerPort = await freePort();
  const direct = await startBenchServer({ script: 'handler-details.ts', env: await fnEnv(dbUrl, handlerPort), port: handlerPort, workDir });
  onCleanup('handler server', () => direct.stop());
  const fnPid = realDenoPid(fn.child.pid!);
  const barePid = realDenoPid(bare.child.pid!);
  const directPid = realDenoPid(direct.child.pid!);

  const auth = { apikey: SECRET_KEY };
  const detailsOn = (base: string, prefix: string): { url: string; request: LoadRequest } => ({
    url: base,
    request: { method: 'GET', path: `${prefix}${sids[0]}`, headers: auth, next: (n) => ({ path: `${prefix}${sids[(n * 7919) % N]}` }) },
  });
  const fnDetails = detailsOn(fn.url, '/functions/v1/calls/details/');
  const bareDetails = detailsOn(bare.url, '/details/');
  const directDetails = detailsOn(direct.url, '/functions/v1/calls/details/');
  // Each measured run also records the serving Deno process's CPU time per successful request.
  const cpu: Record<string, { seconds: number; requests: number }> = {};
  const load = async (target: { url: string; request: LoadRequest }, seconds: number, label?: string) => {
    const pid = target.url === bare.url ? barePid : target.url === direct.url ? directPid : fnPid;
    const before = cpuSeconds(pid);
    const result = await runLoad({ url: target.url, connections: CONFIG.connections, seconds, request: target.request });
    if (label) {
      const entry = (cpu[label] ??= { seconds: 0, requests: 0 });
      entry.seconds += cpuSeconds(pid) - before;
      entry.requests += result.ok;
    }
    return result;
  };

  // Details: warm all three, then function (F), bare (B) and handler without the local server (H)
  // in short interleaved slices (F B H, H B F, …), the same load each, so that whatever else the
  // machine does weighs on all three alike.
  log(`HTTP: details, function vs bare vs handler alone (${CONFIG.connections} connections, ${DETAILS_SLICES} × ${CONFIG.seconds / DETAILS_SLICES} s each)`);
  await load(fnDetails, CONFIG.warmupSeconds);
  await load(bareDetails, CONFIG.warmupSeconds);
  await load(directDetails, CONFIG.warmupSeconds);
  const slices: Record<'details' | 'details_bare' | 'details_handler', LoadResult[]> = { details: [], details_bare: [], details_handler: [] };
  const targets = { details: fnDetails, details_bare: bareDetails, details_handler: directDetails };
  for (let i = 0; i < DETAILS_SLICES; i++) {
    const order = (['details', 'details_bare', 'details_handler'] as const).slice();
    if (i % 2 === 1) order.reverse();
    for (const label of order) slices[label].push(await load(targets[label], CONFIG.seconds / DETAILS_SLICES, label));
  }
  const details = mergeLoads(slices.details);
  const bareResult = mergeLoads(slices.details_bare);
  const handlerResult = mergeLoads(slices.details_handler);
  await direct.stop();

  const saveBody = (sid: string) => JSON.stringify({
    call_id: sid, restaurant_id: RESTAURANT, customer_name: 'Bench Customer', phone_number: '+15550100',
    delivery_address: '1 Bench Street', order_items: [{ item: 'Margherita', quantity: 2, price: 'PKR 1,200' }],
    total_price: 'PKR 2,400', call_duration: 180, payment_method: 'cash',
    transcript: [{ speaker: 'agent', text: 'Hello' }, { speaker: 'customer', text: 'Two margheritas' }],
  });
  const json = { ...auth, 'content-type': 'application/json' };
  const saveTarget = {
    url: fn.url,
    request: { method: 'POST', path: '/functions/v1/calls/save', headers: json, next: () => ({ body: saveBody(randomSid()) }) } as LoadRequest,
  };
  let audioN = 0;
  const updateTarget = {
    url: fn.url,
    request: {
      method: 'POST', path: '/functions/v1/calls/update-audio', headers: json,
      next: (n: number) => ({ body: JSON.stringify({ call_sid: sids[(n * 104729) % N], audio_url: `https://cdn.example.com/audio/${audioN++}.mp3` }) }),
    } as LoadRequest,
  };
  log(`HTTP: save (${CONFIG.seconds} s)`);
  await load(saveTarget, 1);
  const save = await load(saveTarget, CONFIG.seconds, 'save');
  log(`HTTP: update-audio (${CONFIG.seconds} s)`);
  await load(updateTarget, 1);
  const updateAudio = await load(updateTarget, CONFIG.seconds, 'update_audio');
  const functionPeakMb = vmHwmMb(fnPid);
  const barePeakMb = vmHwmMb(barePid);
  await bare.stop();
  await fn.stop();

  // Round trips: a second function server whose database connections go through a counting proxy.
  log(`round trips: ${CONFIG.roundtripRequests} sequential requests per route through a counting proxy`);
  const proxy: TurnProxy = await startTurnProxy(cluster.port);
  onCleanup('proxy', () => proxy.close());
  const rtPort = await freePort();
  const proxied = `postgresql://postgres:postgres@127.0.0.1:${proxy.port}/bench_http`;
  const rt = await startFunctionsServer({ env: await fnEnv(proxied, rtPort), port: rtPort, workDir: join(workDir, 'rt'), onLog });
  onCleanup('round-trip function server', () => rt.stop());
  const call = async (route: 'details' | 'save' | 'updateAudio') => {
    const response = route === 'details'
      ? await fetch(`${rt.url}/functions/v1/calls/details/${sids[Math.floor(Math.random() * N)]}`, { headers: auth })
      : route === 'save'
        ? await fetch(`${rt.url}/functions/v1/calls/save`, { method: 'POST', headers: json, body: saveBody(randomSid()) })
        : await fetch(`${rt.url}/functions/v1/calls/update-audio`, {
          method: 'POST', headers: json,
          body: JSON.stringify({ call_sid: sids[Math.floor(Math.random() * N)], audio_url: `https://cdn.example.com/audio/rt-${audioN++}.mp3` }),
        });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${route}: HTTP ${response.status}`);
  };
  // Open every pooled connection first, so connection setup is not counted.
  for (const route of ['details', 'save', 'updateAudio'] as const) {
    await Promise.all(Array.from({ length: CONFIG.poolSize * 4 }, () => call(route)));
  }
  const roundtrips = { details: 0, save: 0, updateAudio: 0 };
  const statements: HttpResult['statements'] = {};
  const traces: HttpResult['traces'] = {};
  for (const route of ['details', 'save', 'updateAudio'] as const) {
    await admin`select extensions.pg_stat_statements_reset()`;
    const connectionsBefore = proxy.stats.connections;
    proxy.reset();
    for (let i = 0; i < CONFIG.roundtripRequests; i++) await call(route);
    if (proxy.stats.connections !== connectionsBefore) throw new Error('the pool opened a connection while counting round trips');
    roundtrips[route] = proxy.stats.turns / CONFIG.roundtripRequests;
    proxy.startTrace();
    await call(route);
    traces[route] = proxy.stopTrace();
    const rows = await admin`
      select regexp_replace(query, '\\s+', ' ', 'g') as query, calls::int
      from extensions.pg_stat_statements
      where dbid = (select oid from pg_database where datname = 'bench_http') and userid <> 'supabase_admin'::regrole
      order by calls desc, query`;
    statements[route] = rows.map((r) => ({ query: String(r.query).slice(0, 90), perRequest: Number(r.calls) / (CONFIG.roundtripRequests + 1) }));
  }
  await rt.stop();
  await proxy.close();

  const cpuUsPerRequest = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, (v.seconds / v.requests) * 1e6]));
  return { details, bare: bareResult, handler: handlerResult, save, updateAudio, functionPeakMb, barePeakMb, roundtrips, statements, traces, functionErrors, cpuUsPerRequest };
}

// -------------------------------------------------------------------------------------------------
// 4. Scale: save + upload at 10k vs 1M calls
// -------------------------------------------------------------------------------------------------
interface ScaleResult {
  ratio: number;
  serverRatio: number;
  opMs: { small: number; large: number };
  serverOpUs: { small: number; large: number };
  loadSeconds: { small: number; large: number };
  sizes: { small: string; large: string };
}

/**
 * n calls, each with its recording: n public.calls, n storage.objects and n public.recordings rows,
 * as they would be after n save + upload pairs (audio_url set, write_seq in upload order). Setup
 * only, as supabase_admin: the three tables' indexes and unique/primary-key constraints are dropped
 * and rebuilt from their own definitions afterwards (checked identical), triggers and FK checks are
 * off while loading (session_replication_role = replica), then VACUUM ANALYZE. Returns seconds.
 */
async function populate(database: string, n: number): Promise<number> {
  const start = process.hrtime.bigint();
  const admin = open(database);
  const [{ api_url: apiUrl }] = await admin`select api_url from call_recordings.settings`;
  const tables = ['public.calls', 'storage.objects', 'public.recordings'];
  const indexes = async () => (await admin`
    select format('%I.%I', tn.nspname, t.relname) as tbl, pg_get_indexdef(i.indexrelid) as def,
           case when c.oid is not null then format('alter table %I.%I drop constraint %I', tn.nspname, t.relname, c.conname)
                else format('drop index %I.%I', n.nspname, ic.relname) end as drop_sql,
           case when c.oid is not null then format('alter table %I.%I add constraint %I %s', tn.nspname, t.relname, c.conname, pg_get_constraintdef(c.oid))
                else pg_get_indexdef(i.indexrelid) end as create_sql
    from pg_index i
    join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace
    join pg_class t on t.oid = i.indrelid join pg_namespace tn on tn.oid = t.relnamespace
    left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid and c.contype in ('p', 'u')
    where i.indrelid = any(${tables}::regclass[])
    order by 1, 2`).map((r) => ({ tbl: String(r.tbl), def: String(r.def), drop: String(r.drop_sql), create: String(r.create_sql) }));
  const before = await indexes();
  for (const index of before) await admin.unsafe(index.drop);

  // Each row's CallSid, RecordingSid, name and time, computed once per row (offset 0 keeps the
  // subquery from being flattened into repeated md5 calls).
  const rows = `(
    select i, sid, rec, sid || '_' || rec || '.mp3' as name, md5('obj:' || i)::uuid as object_id,
           '${apiUrl}/storage/v1/object/authenticated/${BUCKET}/' || sid || '_' || rec || '.mp3' as url,
           now() - make_interval(secs => i * 60) as at
    from (select i, 'CA' || md5('scale:' || i) as sid, 'RE' || md5('rec:scale:' || i) as rec
          from generate_series(1, ${n}) i offset 0) g
    offset 0) s`;
  const load: Record<string, string> = {
    'public.calls': `
      insert into public.calls (call_sid, restaurant_id, call_date, customer_name, phone_number, order_items, total_price,
                                call_duration, audio_url, created_at, updated_at)
      select s.sid, '${RESTAURANT}', s.at, 'Customer ' || s.i, '+1555' || lpad(s.i::text, 7, '0'),
             '[{"item": "Margherita", "quantity": 1}]', 'PKR 1,500', 60 + s.i % 600, s.url, s.at, s.at
      from ${rows}`,
    'storage.objects': `
      insert into storage.objects (id, bucket_id, name, metadata, version, user_metadata, created_at, updated_at)
      select s.object_id, '${BUCKET}', s.name, jsonb_build_object('size', 48000, 'mimetype', 'audio/mpeg'),
             md5('ver:' || s.i)::uuid::text, '{}', s.at, s.at
      from ${rows}`,
    'public.recordings': `
      insert into public.recordings (object_id, bucket_id, object_name, call_sid, recording_sid, size_bytes, mime_type,
                                     object_version, url, write_seq, created_at, updated_at)
      select s.object_id, '${BUCKET}', s.name, s.sid, s.rec, 48000, 'audio/mpeg', md5('ver:' || s.i)::uuid::text, s.url,
             ${n} + 1 - s.i, s.at, s.at
      from ${rows}`,
  };
  // One connection per table: load, rebuild its indexes, vacuum analyze.
  await Promise.all(tables.map(async (table) => {
    const sql = open(database);
    await sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx.unsafe(load[table]);
    });
    await sql`set maintenance_work_mem = '256MB'`;
    for (const index of before.filter((i) => i.tbl === table)) await sql.unsafe(index.create);
    await sql.unsafe(`vacuum analyze ${table}`);
  }));
  await admin.unsafe(`select setval('call_recordings.write_seq', ${n} + 1)`);
  const after = await indexes();
  if (JSON.stringify(after.map((i) => i.def)) !== JSON.stringify(before.map((i) => i.def))) {
    throw new Error(`indexes differ after loading ${database}`);
  }
  await admin`checkpoint`;
  return msSince(start) / 1000;
}

async function scale(): Promise<ScaleResult> {
  log(`scale: loading ${CONFIG.scaleSmall.toLocaleString('en-US')} calls`);
  const smallLoad = await populate('bench_scale_small', CONFIG.scaleSmall);
  log(`scale: loading ${CONFIG.scaleLarge.toLocaleString('en-US')} calls (calls, storage.objects and recordings rows)`);
  const largeLoad = await populate('bench_scale_large', CONFIG.scaleLarge);
  const side = (database: string) => ({
    fn: open(database, 'postgres'),
    storage: open(database, 'supabase_storage_admin'),
    admin: open(database),
  });
  const small = side('bench_scale_small');
  const large = side('bench_scale_large');
  const sizes = {
    small: String((await small.admin`select pg_size_pretty(pg_database_size(current_database())) as s`)[0].s),
    large: String((await large.admin`select pg_size_pretty(pg_database_size(current_database())) as s`)[0].s),
  };
  log(`scale: measuring (database sizes ${sizes.small} and ${sizes.large})`);

  // One operation = save a new call + upload its recording; half save first, half upload first.
  const op = async (s: ReturnType<typeof side>, k: number) => {
    const sid = randomSid();
    const name = `${sid}_${randomRec()}.mp3`;
    if (k % 2 === 0) {
      await saveCall(s.fn, sid);
      await uploadFinal(s.storage, name);
    } else {
      await uploadFinal(s.storage, name);
      await saveCall(s.fn, sid);
    }
  };
  const batch = async (s: ReturnType<typeof side>) => {
    const start = process.hrtime.bigint();
    for (let k = 0; k < CONFIG.scaleBatchSize; k++) await op(s, k);
    return msSince(start) / CONFIG.scaleBatchSize;
  };
  await batch(small);
  await batch(large);
  const perOp = { small: [] as number[], large: [] as number[] };
  for (let b = 0; b < CONFIG.scaleBatches; b++) {
    const order = b % 2 === 0 ? (['small', 'large'] as const) : (['large', 'small'] as const);
    for (const which of order) perOp[which].push(await batch(which === 'small' ? small : large));
  }

  // Server side: the same pair of transactions in a plpgsql loop (as postgres, role set per transaction).
  const SN = CONFIG.scaleServerBatchSize;
  const body = (tag: string) => `
    sid := 'CA' || md5('${tag}:' || i);
    nm := sid || '_RE' || md5('rec:${tag}:' || i) || '.mp3';
    if i % 2 = 0 then
      ${CONTEXT_SQL}
      perform public.save_call(jsonb_build_object('call_sid', sid, 'restaurant_id', '${RESTAURANT}', 'customer_name', 'Bench Customer',
                                                  'phone_number', '+15550100', 'order_items', '[{"item": "Margherita", "quantity": 1}]'::jsonb,
                                                  'total_price', 'PKR 1,500', 'call_duration', 95));
      commit;
    end if;
    ${CONTEXT_SQL}
    ${UPSERT_SQL}
    commit;
    if i % 2 = 1 then
      ${CONTEXT_SQL}
      perform public.save_call(jsonb_build_object('call_sid', sid, 'restaurant_id', '${RESTAURANT}', 'customer_name', 'Bench Customer',
                                                  'phone_number', '+15550100', 'order_items', '[{"item": "Margherita", "quantity": 1}]'::jsonb,
                                                  'total_price', 'PKR 1,500', 'call_duration', 95));
      commit;
    end if;`;
  await serverLoop(small.fn, SN, body('sw'));
  await serverLoop(large.fn, SN, body('sw'));
  const serverUs = { small: [] as number[], large: [] as number[] };
  for (let b = 0; b < 4; b++) {
    const order = b % 2 === 0 ? (['small', 'large'] as const) : (['large', 'small'] as const);
    for (const which of order) serverUs[which].push((await serverLoop((which === 'small' ? small : large).fn, SN, body(`s${b}`))) / SN);
  }
  const errors = await large.admin`select count(*)::int as n from call_recordings.link_errors`;
  const unlinked = await large.admin`select count(*)::int as n from public.calls where audio_url is null`;
  if (errors[0].n !== 0 || unlinked[0].n !== 0) throw new Error(`scale: ${errors[0].n} link errors, ${unlinked[0].n} calls without audio`);

  const opMs = { small: median(perOp.small), large: median(perOp.large) };
  const serverOpUs = { small: median(serverUs.small), large: median(serverUs.large) };
  return {
    ratio: opMs.large / opMs.small,
    serverRatio: serverOpUs.large / serverOpUs.small,
    opMs,
    serverOpUs,
    loadSeconds: { small: smallLoad, large: largeLoad },
    sizes,
  };
}

// -------------------------------------------------------------------------------------------------
// 5. Time to audio
// -------------------------------------------------------------------------------------------------
interface AudioResult {
  p50: number;
  max: number;
  pollsMax: number;
  samples: number;
}

async function timeToAudio(): Promise<AudioResult> {
  const fnDb = open('bench_http', 'postgres');
  const storage = new StorageServer(open('bench_http', 'supabase_storage_admin'));
  const reader = open('bench_http', 'postgres');
  const times: number[] = [];
  let pollsMax = 0;
  for (let k = 0; k < CONFIG.audioSamples; k++) {
    const sid = randomSid();
    const name = `${sid}_${randomRec()}.mp3`;
    // Even: call saved, then the upload commits. Odd: upload first, then the save commits.
    if (k % 2 === 0) {
      await saveCall(fnDb, sid);
      await storage.upload(BUCKET, name);
    } else {
      await storage.upload(BUCKET, name);
      await saveCall(fnDb, sid);
    }
    const committed = process.hrtime.bigint();
    let polls = 0;
    for (;;) {
      polls++;
      const [row] = await reader`select audio_url from public.calls where call_sid = ${sid}`;
      if (typeof row?.audio_url === 'string' && row.audio_url.endsWith(`/${name}`)) break;
      if (msSince(committed) > 5_000) throw new Error(`audio_url of ${sid} not visible 5 s after commit`);
    }
    times.push(msSince(committed));
    pollsMax = Math.max(pollsMax, polls);
  }
  return { p50: percentile(times, 50), max: Math.max(...times), pollsMax, samples: times.length };
}

// -------------------------------------------------------------------------------------------------
// Main
// -------------------------------------------------------------------------------------------------
async function main() {
  const loadBefore = loadavg()[0];
  const folder = mkdtempSync(join(tmpdir(), 'call-recordings-bench-'));
  chmodSync(folder, 0o777);
  onCleanup('temporary folder', () => rmSync(folder, { recursive: true, force: true }));
  const workDir = join(folder, 'work');
  mkdirSync(workDir);

  const port = await freePort();
  cluster = await startCluster({ dataDir: join(folder, 'data'), port, persistent: false, durable: false });
  onCleanup('postgres', () => cluster.stop());
  onCleanup('database clients', async () => {
    await Promise.all(clients.map((c) => c.end({ timeout: 2 })));
  });
  const admin = open('postgres');
  const [{ version }] = await admin`select current_setting('server_version') as version`;
  const [{ shared_buffers: sharedBuffers }] = await admin`select current_setting('shared_buffers') as shared_buffers`;
  log(`PostgreSQL ${version} on port ${port}; preparing databases (platform model, migrations via the Supabase CLI)`);
  await prepareDatabases(admin);

  log(`trigger overhead: ${CONFIG.triggerBatches} batches × ${CONFIG.triggerBatchSize} uploads per database, interleaved`);
  const trigger = await triggerOverhead();
  const httpResult = await http(workDir);
  const scaleResult = await scale();
  log(`time to audio: ${CONFIG.audioSamples} uploads`);
  const audio = await timeToAudio();

  const denoVersion = execFileSync(DENO, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const dbTs = readFileSync(join(ROOT, 'supabase', 'functions', '_shared', 'db.ts'), 'utf8');
  let gitHead = 'unknown';
  try {
    gitHead = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'supabase'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (dirty) gitHead += '+uncommitted supabase/ changes';
  } catch {
    // not a git checkout
  }
  const elapsed = msSince(STARTED) / 1000;
  const loadAfter = loadavg()[0];

  const ratio = httpResult.details.p50 / httpResult.bare.p50;
  const status = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const ms = (v: number) => `${fmt(v, 2)} ms`;
  const us = (v: number) => `${fmt(v, 0)} µs`;
  const rows: (string | number)[][] = [
    ['metric', 'value', 'target', 'status', 'how'],
    ['trigger_overhead_ratio (client)', fmt(trigger.clientRatio, 2), '≤ 1.5', status(trigger.clientRatio <= 1.5),
      `median batch of ${CONFIG.triggerBatchSize} uploads: ${fmt(trigger.clientBatchMs.migrated, 1)} vs ${fmt(trigger.clientBatchMs.platform, 1)} ms`],
    ['trigger_added_us_p50 (client)', us(trigger.clientAddedUs), '', '',
      `p50 per upload tx ${us(trigger.clientP50Us.migrated)} vs ${us(trigger.clientP50Us.platform)} (p99 ${us(trigger.clientP99Us.migrated)} vs ${us(trigger.clientP99Us.platform)})`],
    ['trigger_overhead_ratio_server', fmt(trigger.serverRatio, 2), '', '',
      `plpgsql loop, 1 tx per upsert: ${us(trigger.serverPerWriteUs.migrated)} vs ${us(trigger.serverPerWriteUs.platform)} per write`],
    ['trigger_added_us_p50 (server)', us(trigger.serverAddedUs), '', '', 'median of batches, per write'],
    ['  same, dated path names (server)', us(trigger.serverDatedAddedUs), '', '',
      `call-recordings/<restaurant>/<date>/…: ${us(trigger.serverDatedPerWriteUs.migrated)} vs ${us(trigger.serverDatedPerWriteUs.platform)} per write`],
    ['trigger time (EXPLAIN ANALYZE)', us(trigger.explainTriggerUsP50), '', '',
      `p50; statement ${us(trigger.explainExecUsP50.migrated)} vs ${us(trigger.explainExecUsP50.platform)} without our trigger`],
    ['whole upload incl. dry run', fmt(trigger.fullUploadRatio, 2), '', '',
      `Storage's rolled-back dry run + final tx: ${ms(trigger.fullUploadMs.migrated)} vs ${ms(trigger.fullUploadMs.platform)}`],
    ['function_vs_bare_p50_ratio', fmt(ratio, 2), '≤ 1.3', status(ratio <= 1.3),
      `details p50 ${ms(httpResult.details.p50)} vs bare ${ms(httpResult.bare.p50)}`],
    ['db_roundtrips_per_request details', fmt(httpResult.roundtrips.details, 2), '≤ 2', status(httpResult.roundtrips.details <= 2), 'client turns at a TCP proxy, warm pool'],
    ['db_roundtrips_per_request save', fmt(httpResult.roundtrips.save, 2), '≤ 2', status(httpResult.roundtrips.save <= 2), ''],
    ['db_roundtrips_per_request update-audio', fmt(httpResult.roundtrips.updateAudio, 2), '', '', ''],
    ['details_rps', fmt(httpResult.details.rps, 0), '≥ 1,000', status(httpResult.details.rps >= 1000),
      `p50 ${ms(httpResult.details.p50)}, p99 ${ms(httpResult.details.p99)}`],
    ['details_rps (bare baseline)', fmt(httpResult.bare.rps, 0), '', '', `p50 ${ms(httpResult.bare.p50)}, p99 ${ms(httpResult.bare.p99)}`],
    ['details_rps (handler, no local server)', fmt(httpResult.handler.rps, 0), '', '',
      `p50 ${ms(httpResult.handler.p50)}, p99 ${ms(httpResult.handler.p99)}; p50 ratio to bare ${fmt(httpResult.handler.p50 / httpResult.bare.p50, 2)}`],
    ['save_rps', fmt(httpResult.save.rps, 0), '', '', `p50 ${ms(httpResult.save.p50)}, p99 ${ms(httpResult.save.p99)}; a new CallSid per request`],
    ['update_audio_rps', fmt(httpResult.updateAudio.rps, 0), '', '', `p50 ${ms(httpResult.updateAudio.p50)}, p99 ${ms(httpResult.updateAudio.p99)}; existing calls`],
    ['Deno CPU per details request', us(httpResult.cpuUsPerRequest.details), '', '',
      `bare ${us(httpResult.cpuUsPerRequest.details_bare)}, handler alone ${us(httpResult.cpuUsPerRequest.details_handler)}; save ${us(httpResult.cpuUsPerRequest.save)}, update-audio ${us(httpResult.cpuUsPerRequest.update_audio)}`],
    ['function peak memory (VmHWM)', `${fmt(httpResult.functionPeakMb, 1)} MB`, '', '', `bare baseline ${fmt(httpResult.barePeakMb, 1)} MB`],
    ['scale_ratio', fmt(scaleResult.ratio, 2), '≤ 1.2', status(scaleResult.ratio <= 1.2),
      `save + upload: ${ms(scaleResult.opMs.large)} at ${CONFIG.scaleLarge.toLocaleString('en-US')} vs ${ms(scaleResult.opMs.small)} at ${CONFIG.scaleSmall.toLocaleString('en-US')} calls`],
    ['scale_ratio_server', fmt(scaleResult.serverRatio, 2), '', '', `plpgsql loop: ${us(scaleResult.serverOpUs.large)} vs ${us(scaleResult.serverOpUs.small)} per save + upload`],
    ['time_to_audio_ms', `${fmt(audio.max, 2)} ms`, '0 by construction', status(audio.pollsMax === 1),
      `max over ${audio.samples} (p50 ${ms(audio.p50)}); visible at read #${audio.pollsMax} at worst — the first read after commit`],
  ];

  const settings = [
    `machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${fmt(totalmem() / 2 ** 30, 0)} GiB; Node ${process.version}, ${denoVersion}, PostgreSQL ${version} (embedded, fsync off, shared_buffers ${sharedBuffers})`,
    `load: autocannon, ${CONFIG.connections} connections, ${CONFIG.seconds} s per route after warm-up (details: function, bare and handler-alone interleaved F B H / H B F, ${DETAILS_SLICES} × ${CONFIG.seconds / DETAILS_SLICES} s each); function pool ${CONFIG.poolSize}; secret key (apikey); load generator, Deno and Postgres share the machine`,
    `trigger: ${CONFIG.triggerBatches} batches × ${CONFIG.triggerBatchSize} uploads per database (client), ${CONFIG.serverBatches} × ${CONFIG.serverBatchSize} (server); half to saved calls, half to calls not saved yet`,
    `scale: ${CONFIG.scaleBatches} batches × ${CONFIG.scaleBatchSize} ops per size (client), 4 × ${CONFIG.scaleServerBatchSize} (server); load ${fmt(scaleResult.loadSeconds.small, 1)} s / ${fmt(scaleResult.loadSeconds.large, 1)} s, databases ${scaleResult.sizes.small} / ${scaleResult.sizes.large}`,
    `command: npm run bench at ${gitHead} (${fmt(elapsed, 0)} s); 1-minute load average ${fmt(loadBefore, 2)} at start (other work on the machine skews the numbers)`,
  ];

  console.log('');
  console.log(table(rows));
  console.log('');
  for (const line of settings) console.log(line);
  console.log('');
  console.log('Statements per request (pg_stat_statements; the function\'s statements run as postgres, then as service_role):');
  for (const [route, list] of Object.entries(httpResult.statements)) {
    console.log(`  ${route}: ${list.map((s) => `${fmt(s.perRequest, 2)} × ${s.query}`).join(' | ')}`);
  }
  console.log('One request on the wire (proxy trace, → client sends, ← server answers):');
  for (const [route, lines] of Object.entries(httpResult.traces)) {
    console.log(`  ${route}:`);
    for (const line of lines) console.log(`    ${line}`);
  }
  console.log('Where an upload\'s time goes in the migrated database (pg_stat_statements track=all, mean µs per call):');
  for (const b of trigger.breakdown) console.log(`  ${fmt(b.meanUs, 1).padStart(8)} µs × ${b.calls}  ${b.query.slice(0, 110)}`);
  if (httpResult.functionErrors.length) {
    console.log('Function server stderr (first lines):');
    for (const line of httpResult.functionErrors) console.log(`  ${line}`);
  }
  for (const [name, r] of Object.entries({ details: httpResult.details, details_bare: httpResult.bare, details_handler: httpResult.handler, save: httpResult.save, update_audio: httpResult.updateAudio })) {
    if (r.non2xx || r.errors || r.timeouts) console.log(`warning: ${name}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts (${JSON.stringify(r.statusCounts)})`);
  }

  const latency = (r: LoadResult) => ({ p50: round(r.p50, 3), p99: round(r.p99, 3) });
  const result = {
    trigger_overhead_ratio: round(trigger.clientRatio, 3),
    trigger_overhead_ratio_server: round(trigger.serverRatio, 3),
    trigger_added_us_p50: round(trigger.clientAddedUs, 1),
    trigger_added_us_p50_server: round(trigger.serverAddedUs, 1),
    trigger_added_us_dated_server: round(trigger.serverDatedAddedUs, 1),
    trigger_exec_us_p50_explain: round(trigger.explainTriggerUsP50, 1),
    trigger_overhead_ratio_whole_upload: round(trigger.fullUploadRatio, 3),
    function_vs_bare_p50_ratio: round(ratio, 3),
    handler_vs_bare_p50_ratio: round(httpResult.handler.p50 / httpResult.bare.p50, 3),
    db_roundtrips_per_request: {
      details: round(httpResult.roundtrips.details, 2),
      save: round(httpResult.roundtrips.save, 2),
      update_audio: round(httpResult.roundtrips.updateAudio, 2),
    },
    details_rps: round(httpResult.details.rps, 0),
    details_bare_rps: round(httpResult.bare.rps, 0),
    details_handler_rps: round(httpResult.handler.rps, 0),
    save_rps: round(httpResult.save.rps, 0),
    update_audio_rps: round(httpResult.updateAudio.rps, 0),
    latency_ms: {
      details: latency(httpResult.details),
      details_bare: latency(httpResult.bare),
      details_handler: latency(httpResult.handler),
      save: latency(httpResult.save),
      update_audio: latency(httpResult.updateAudio),
    },
    deno_cpu_us_per_request: Object.fromEntries(Object.entries(httpResult.cpuUsPerRequest).map(([k, v]) => [k, round(v, 0)])),
    function_peak_rss_mb: round(httpResult.functionPeakMb, 1),
    bare_peak_rss_mb: round(httpResult.barePeakMb, 1),
    scale_ratio: round(scaleResult.ratio, 3),
    scale_ratio_server: round(scaleResult.serverRatio, 3),
    scale_op_ms: { small: round(scaleResult.opMs.small, 3), large: round(scaleResult.opMs.large, 3) },
    scale_calls: { small: CONFIG.scaleSmall, large: CONFIG.scaleLarge },
    time_to_audio_ms: round(audio.max, 3),
    time_to_audio_ms_p50: round(audio.p50, 3),
    time_to_audio_polls_max: audio.pollsMax,
    non2xx: httpResult.details.non2xx + httpResult.bare.non2xx + httpResult.handler.non2xx + httpResult.save.non2xx + httpResult.updateAudio.non2xx,
    settings: { connections: CONFIG.connections, seconds_per_route: CONFIG.seconds, pool: CONFIG.poolSize, cpus: cpus().length },
    git_head: gitHead,
    db_ts_md5: sha(dbTs).slice(0, 12),
    elapsed_s: round(elapsed, 1),
    loadavg_1m: { before: round(loadBefore, 2), after: round(loadAfter, 2) },
  };
  return result;
}

let exitCode = 0;
let result: unknown;
try {
  result = await main();
} catch (error) {
  // After Ctrl-C, what fails is only the work being torn down.
  if (!interrupted) console.error('bench failed:', error);
  exitCode = interrupted ? 130 : 1;
} finally {
  await cleanup();
}
if (result) console.log(JSON.stringify(result));
process.exit(exitCode);
