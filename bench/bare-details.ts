// The baseline for `function_vs_bare_p50_ratio`: GET …/details/{id} doing exactly the database
// work of the `calls` function's details route — the same createDatabase (postgres.js, same pool
// size), the same transaction with the service role's role and claims, the same statement — with
// no routing, validation, auth or error mapping. Run by bench/run.ts with Deno:
//   deno run --node-modules-dir=manual --no-lock --allow-net --allow-env --allow-read \
//     --import-map=<functions import map> bench/bare-details.ts
// env: SUPABASE_DB_URL, BENCH_PORT, CALLS_DB_POOL_SIZE.
import type { Identity } from '../supabase/functions/_shared/auth.ts';
import { createDatabase, sql } from '../supabase/functions/_shared/db.ts';
import { deno as Deno, serveUntilStopped } from '../local/deno-serve.ts';


const SERVICE: Identity = { role: 'service_role', claims: { role: 'service_role' } };
const url = Deno.env.get('SUPABASE_DB_URL');
if (!url) throw new Error('set SUPABASE_DB_URL');
const db = createDatabase({ url, max: Number(Deno.env.get('CALLS_DB_POOL_SIZE') ?? '5') });
const headers = { 'Content-Type': 'application/json; charset=utf-8' };

async function details(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  const id = path.slice(path.lastIndexOf('/') + 1);
  const [row] = await db.as(SERVICE, sql`select public.get_call(${id}) as call`);
  if (!row.call) return new Response(JSON.stringify({ success: false }), { status: 404, headers });
  return new Response(JSON.stringify({ success: true, call: row.call }), { headers });
}

await serveUntilStopped({
  hostname: '127.0.0.1', port: Number(Deno.env.get('BENCH_PORT') ?? '0'), readyLine: 'bench-server ready', handler: details, cleanup: () => db.end(),
});
