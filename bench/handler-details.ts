// The `calls` handler served straight by Deno.serve — what supabase/functions/calls/index.ts wires,
// without the local functions server (local/functions-server.ts) in front. Run by bench/run.ts
// next to the real function server and bench/bare-details.ts, so the table can tell the handler's
// own cost (routing, auth, validation) from the local server's (request copy, per-request log).
// env: the function's environment (local/keys.ts functionEnv), BENCH_PORT, CALLS_DB_POOL_SIZE.
import { authConfigFromEnv, createAuthenticator } from '../supabase/functions/_shared/auth.ts';
import { createDatabase } from '../supabase/functions/_shared/db.ts';
import { createCallsHandler } from '../supabase/functions/calls/handler.ts';
import { deno as Deno, serveUntilStopped } from '../local/deno-serve.ts';

const url = Deno.env.get('SUPABASE_DB_URL');
if (!url) throw new Error('set SUPABASE_DB_URL');
const handler = createCallsHandler({
  db: createDatabase({ url, max: Number(Deno.env.get('CALLS_DB_POOL_SIZE') ?? '5') }),
  authenticate: createAuthenticator(authConfigFromEnv(Deno.env)),
});

await serveUntilStopped({
  hostname: '127.0.0.1', port: Number(Deno.env.get('BENCH_PORT') ?? '0'), readyLine: 'bench-server ready', handler: handler,
});
