// `npm run demo`, against a running `npm start`: the three orders in which a call and its recording
// can arrive, end to end, with the time each step takes.
//   (a) save the call, then upload <CallSid>_<RecordingSid>.mp3       → details has audio_url at once
//   (b) upload call-recordings/demo/<today>/<CallSid>.mp3, then save   → audio_url at insert
//   (c) update-audio before the call exists (404, retry: true), then save → the parked URL is applied
// The backend's side is HTTP only (the `calls` function with the secret key). Uploads: without
// Docker there is no Storage server, so the rows it would write into storage.objects are written
// with its own statements (local/storage-writes.ts, as supabase_storage_admin).
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';
import { connectionUrl } from './cluster.ts';
import { API_URL, DB_PORT, SECRET_KEY } from './keys.ts';
import { StorageServer } from './storage-writes.ts';

const FUNCTION_URL = `${API_URL}/functions/v1/calls`;
const BUCKET = 'call-recordings';
const RESTAURANT = 'demo';

class DemoError extends Error {}

const callSid = () => `CA${randomBytes(16).toString('hex')}`;
const recordingSid = () => `RE${randomBytes(16).toString('hex')}`;
const today = () => new Date().toISOString().slice(0, 10);
/** CA1234567890abcdef… → CA123456… (for labels). */
const short = (text: string) => text.replace(/(CA|RE)([0-9a-f]{6})[0-9a-f]{26}/g, '$1$2…');

function storageAdminUrl(): string {
  // Same database as `npm start`: its DATABASE_URL when set, else the embedded one.
  if (!process.env.DATABASE_URL) return connectionUrl(DB_PORT, 'postgres', 'supabase_storage_admin', 'postgres');
  const u = new URL(process.env.DATABASE_URL);
  u.username = 'supabase_storage_admin';
  u.password = 'postgres';
  return u.toString();
}

interface Reply {
  status: number;
  body: any;
}

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Reply> {
  let response: Response;
  try {
    response = await fetch(`${FUNCTION_URL}${path}`, {
      method,
      headers: { apikey: SECRET_KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new DemoError(`Nothing answers on ${API_URL} (${(error as Error).cause ?? (error as Error).message}).\n` +
      'Start the local stack in another terminal first:  npm start');
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch { /* not JSON: keep the text */ }
  return { status: response.status, body: parsed };
}

function expect(condition: unknown, message: string, reply?: Reply): asserts condition {
  if (!condition) {
    throw new DemoError(`${message}${reply ? `\n  got HTTP ${reply.status}: ${JSON.stringify(reply.body)}` : ''}`);
  }
}

let stepNo = 0;
async function step<T>(label: string, run: () => Promise<T>, show: (result: T) => string): Promise<T> {
  stepNo += 1;
  const started = performance.now();
  const result = await run();
  const ms = (performance.now() - started).toFixed(1);
  console.log(`  ${String(stepNo).padStart(2)}. ${label.padEnd(52)} ${ms.padStart(6)} ms  ${show(result)}`);
  return result;
}

async function checkStack(): Promise<void> {
  const reply = await call('GET', '/list?limit=1');
  expect(reply.status !== 404 || (reply.body as { code?: string })?.code !== 'NOT_FOUND',
    `${API_URL} answers, but serves no \`calls\` function (is supabase/functions/calls/index.ts there? restart npm start after adding it).`, reply);
  expect(reply.status === 200, `GET ${FUNCTION_URL}/list with the secret key did not succeed.`, reply);
}

async function main(): Promise<void> {
  const demoStarted = performance.now();
  console.log(`Demo against ${FUNCTION_URL} (apikey: secret key), restaurant "${RESTAURANT}".`);
  console.log('No Storage server runs without Docker: each "upload" below writes the storage.objects row exactly as the');
  console.log('Storage server would (its role, claims, dry run and upsert; local/storage-writes.ts as supabase_storage_admin).');
  console.log(`Uploads go to the bucket ${BUCKET}.\n`);
  await checkStack();

  const sql = postgres(storageAdminUrl(), { max: 2, onnotice: () => {}, connect_timeout: 5 });
  try {
    await sql`select 1`.catch((error: Error) => {
      throw new DemoError(`Cannot reach the database as supabase_storage_admin (${error.message}). Is npm start running?`);
    });
    const storage = new StorageServer(sql);

    const details = (sid: string) => step(`GET  /calls/details/${short(sid)}`, () => call('GET', `/details/${sid}`), (r) => {
      expect(r.status === 200, `details of ${sid} failed`, r);
      expect(r.body.call.audio_url, `details of ${sid} has no audio_url`, r);
      return `audio_url = ${r.body.call.audio_url}`;
    });
    const save = (sid: string, extra: Record<string, unknown> = {}) =>
      step('POST /calls/save', () => call('POST', '/save', {
        call_sid: sid, restaurant_id: RESTAURANT, customer_name: 'Ayesha Khan', phone_number: '+92 300 1234567',
        order_items: [{ item: 'Margherita', quantity: 2, price: 'PKR 1,500' }], total_price: 'PKR 3,000', call_duration: 95,
        ...extra,
      }), (r) => {
        expect(r.status === 200 && r.body.success === true, `save of ${sid} failed`, r);
        return `audio_url = ${r.body.call.audio_url ?? 'null'}`;
      });
    const upload = (name: string) => step(`upload ${short(name)}`,
      () => storage.upload(BUCKET, name, { size: 182_344, mimetype: 'audio/mpeg' }), (o) => `storage.objects id ${o.id.slice(0, 8)}…`);

    // (a) today's backend: the call is saved first, the recording follows.
    const a = callSid();
    console.log(`(a) save, then upload <CallSid>_<RecordingSid>.mp3        CallSid ${a}`);
    await save(a);
    const aName = `${a}_${recordingSid()}.mp3`;
    await upload(aName);
    const aDetails = await details(a);
    expect(String(aDetails.body.call.audio_url).endsWith(`/${BUCKET}/${aName}`), 'audio_url does not point at the upload', aDetails);

    // (b) the recording arrives first, in the recommended dated layout.
    const b = callSid();
    console.log(`\n(b) upload ${BUCKET}/${RESTAURANT}/${today()}/<CallSid>.mp3, then save   CallSid ${b}`);
    const bName = `${BUCKET}/${RESTAURANT}/${today()}/${b}.mp3`;
    await upload(bName);
    const bSaved = await save(b);
    expect(bSaved.body.call.audio_url, 'the call saved after its recording has no audio_url', bSaved);
    const bDetails = await details(b);
    expect(bDetails.body.call.restaurant_id === RESTAURANT, 'restaurant not taken from the path', bDetails);

    // (c) an old client calls update-audio before the call exists, then stops retrying.
    const c = callSid();
    const cUrl = `https://recordings.example.com/${c}.mp3`;
    console.log(`\n(c) update-audio before the call exists, then save           CallSid ${c}`);
    await step('POST /calls/update-audio (no call yet)', () => call('POST', '/update-audio', { call_sid: c, audio_url: cUrl }), (r) => {
      expect(r.status === 404 && r.body.retry === true && r.body.retry_after === 2000,
        'update-audio before save should answer 404 with retry: true, retry_after: 2000', r);
      return `404 retry: ${r.body.retry}, retry_after: ${r.body.retry_after} (the URL is kept anyway)`;
    });
    await save(c);
    const cDetails = await details(c);
    expect(cDetails.body.call.audio_url === cUrl, 'the parked audio URL was not applied', cDetails);
  } finally {
    await sql.end({ timeout: 2 });
  }
  console.log(`\nAll three orders linked. ${stepNo} steps in ${Math.round(performance.now() - demoStarted)} ms.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof DemoError ? `\nDemo failed: ${error.message}` : error);
  process.exit(1);
});
