// Entry point: wires the environment into the handler. Everything else is in handler.ts.
import { authConfigFromEnv, createAuthenticator } from '../_shared/auth.ts';
import { createDatabase } from '../_shared/db.ts';
import { createCallsHandler } from './handler.ts';

// A pooler URL (transaction mode, port 6543) when set as a secret; else the injected direct URL.
const dbUrl = Deno.env.get('CALLS_DB_URL') ?? Deno.env.get('SUPABASE_DB_URL');
if (!dbUrl) throw new Error('Set CALLS_DB_URL (or run where SUPABASE_DB_URL is injected).');

const numberEnv = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const handler = createCallsHandler({
  db: createDatabase({
    url: dbUrl,
    max: numberEnv('CALLS_DB_POOL_SIZE', 5),
    statementTimeoutSeconds: numberEnv('CALLS_STATEMENT_TIMEOUT_SECONDS', 8),
    connectTimeoutSeconds: numberEnv('CALLS_CONNECT_TIMEOUT_SECONDS', 5),
  }),
  authenticate: createAuthenticator(authConfigFromEnv(Deno.env)),
});

export default { fetch: handler };
