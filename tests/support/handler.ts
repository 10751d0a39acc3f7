// The `calls` handler in process, wired like supabase/functions/calls/index.ts with the test keys,
// with raw responses (status, headers, body text) so tests can check that every answer is JSON;
// it takes database options (e.g. a short statement timeout). http.ts's client parses on top.
import { createAuthenticator } from '../../supabase/functions/_shared/auth.ts';
import { createDatabase, type Database, type DatabaseOptions } from '../../supabase/functions/_shared/db.ts';
import { createCallsHandler } from '../../supabase/functions/calls/handler.ts';
import { SECRET_KEY, jwks, type SigningKey } from '../../local/keys.ts';

export const BASE = 'http://127.0.0.1:54321/functions/v1';

export interface RawReply {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is empty or not JSON. */
  json: any;
  ms: number;
}

export interface RawClient {
  database: Database;
  logged: Record<string, unknown>[];
  handler: (req: Request) => Promise<Response>;
  send(req: Request): Promise<RawReply>;
  request(method: string, path: string, options?: { headers?: Record<string, string>; body?: unknown }): Promise<RawReply>;
}

export function rawClient(options: { dbUrl: string; signing: SigningKey } & Partial<Omit<DatabaseOptions, 'url'>>): RawClient {
  const { dbUrl, signing, ...dbOptions } = options;
  const database = createDatabase({ url: dbUrl, max: 4, connectTimeoutSeconds: 2, ...dbOptions });
  const logged: Record<string, unknown>[] = [];
  const handler = createCallsHandler({
    db: database,
    authenticate: createAuthenticator({ secretKeys: [SECRET_KEY], jwks: jwks(signing) }),
    log: (entry) => logged.push(entry),
  });
  async function send(req: Request): Promise<RawReply> {
    const started = performance.now();
    const response = await handler(req);
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json, ms: performance.now() - started };
  }
  return {
    database,
    logged,
    handler,
    send,
    request: (method, path, { headers = {}, body } = {}) =>
      send(new Request(`${BASE}${path}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      })),
  };
}
