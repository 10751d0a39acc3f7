// The functions gateway of `npm start`, run by Deno (started by local/functions.ts):
//   /functions/v1/<name>/<rest>  →  the function's default export `fetch`, with the URL path
//                                   rewritten to /<name>/<rest> (what the edge runtime's worker sees)
// Mirrors `supabase functions serve` behind the local API gateway: verify_jwt (default true) needs
// `Authorization: Bearer <JWT>` signed with the legacy HS256 secret or a session key in
// SUPABASE_JWKS (OPTIONS preflights are let through, as in the CLI's main service); unknown
// function → 404 NOT_FOUND; a function whose module fails to load → 503 BOOT_ERROR; a function
// that throws → 500 WORKER_ERROR. Error bodies are the hosted gateway's
// `{"code", "message"}` with an `sb-error-code` header. Every function is imported once, at
// start, in this one process: functions share a process (and Deno.env) here, unlike the edge
// runtime's one worker per function.
//
// Usage: deno run --allow-net --allow-env --allow-read [--import-map=…] local/functions-server.ts '<ServerManifest JSON>'
// stdin must stay open: the server stops at its end (so it never outlives the `npm start` that
// spawned it). Type-check: node_modules/.bin/deno check local/functions-server.ts (tsconfig.json
// excludes this file: it uses Deno's globals).
import { base64url, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import { serveUntilStopped } from './deno-serve.ts';

type ServeHandler = (request: Request) => Response | Promise<Response>;

interface Manifest {
  hostname: string;
  port: number;
  functions: { name: string; entrypoint: string; verifyJwt: boolean }[];
}

const manifest = JSON.parse(Deno.args[0] ?? '') as Manifest;

function json(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ code, message }), {
    status,
    headers: { 'content-type': 'application/json', 'sb-error-code': code },
  });
}

// -------------------------------------------------------------------------------------------------
// JWT verification (verify_jwt = true)
// -------------------------------------------------------------------------------------------------
// SUPABASE_JWKS holds the session keys and, locally, the legacy HS256 secret as an `oct` key. As in
// the CLI's main service: HS256 tokens are checked against that secret, ES256/RS256 against the JWKS.
const jwksKeys = (JSON.parse(Deno.env.get('SUPABASE_JWKS') ?? '{"keys":[]}') as JSONWebKeySet).keys;
const asymmetric = createLocalJWKSet({ keys: jwksKeys.filter((k) => k.kty !== 'oct') });
const legacySecret = jwksKeys.find((k: JWK) => k.kty === 'oct' && typeof k.k === 'string')?.k;
const hs256 = legacySecret ? base64url.decode(legacySecret) : null;

async function rejectUnverified(request: Request): Promise<Response | null> {
  const header = request.headers.get('authorization');
  if (!header) return json(401, 'UNAUTHORIZED_NO_AUTH_HEADER', 'Missing authorization header');
  const [scheme, token, extra] = header.split(' ');
  if (scheme !== 'Bearer' || !token || extra !== undefined) return json(401, 'UNAUTHORIZED_INVALID_JWT_FORMAT', 'Invalid JWT');
  try {
    const { alg } = decodeProtectedHeader(token);
    if (alg === 'HS256' && hs256) await jwtVerify(token, hs256, { algorithms: ['HS256'] });
    else if (alg === 'ES256' || alg === 'RS256') await jwtVerify(token, asymmetric, { algorithms: [alg] });
    else throw new Error(`unsupported alg ${String(alg)}`);
    return null;
  } catch {
    return json(401, 'UNAUTHORIZED_INVALID_JWT_FORMAT', 'Invalid JWT');
  }
}

// -------------------------------------------------------------------------------------------------
// Loading functions: `export default { fetch }` or `Deno.serve(handler)`
// -------------------------------------------------------------------------------------------------
type Loaded = { ok: true; fetch: ServeHandler } | { ok: false };
const loaded = new Map<string, Loaded>();
const verifyJwt = new Map(manifest.functions.map((f) => [f.name, f.verifyJwt]));

// Background work a function hands to the runtime (Supabase docs: EdgeRuntime.waitUntil).
(globalThis as Record<string, unknown>).EdgeRuntime ??= {
  waitUntil(promise: Promise<unknown>) {
    promise.catch((error) => console.error('EdgeRuntime.waitUntil task failed:', error));
  },
};

async function load(fn: Manifest['functions'][number]): Promise<Loaded> {
  const realServe = Deno.serve;
  let captured: ServeHandler | undefined;
  // A function written as `Deno.serve(handler)` hands us its handler instead of opening a port.
  (Deno as { serve: unknown }).serve = (...args: unknown[]) => {
    captured = args.find((a): a is ServeHandler => typeof a === 'function')
      ?? (args.find((a) => typeof a === 'object' && a !== null && typeof (a as { handler?: unknown }).handler === 'function') as
          { handler: ServeHandler } | undefined)?.handler;
    return { finished: new Promise(() => {}), shutdown: async () => {}, ref() {}, unref() {}, addr: { hostname: manifest.hostname, port: manifest.port } };
  };
  try {
    const mod = (await import(fn.entrypoint)) as { default?: { fetch?: unknown } };
    const exported = mod.default?.fetch;
    const handler = typeof exported === 'function' ? (exported.bind(mod.default) as ServeHandler) : captured;
    if (!handler) throw new Error('the module neither exports default { fetch } nor calls Deno.serve(handler)');
    return { ok: true, fetch: handler };
  } catch (error) {
    console.error(`function ${fn.name} failed to load (${fn.entrypoint}); it answers 503 BOOT_ERROR until restarted:`, error);
    return { ok: false };
  } finally {
    (Deno as { serve: unknown }).serve = realServe;
  }
}

// -------------------------------------------------------------------------------------------------
// Routing
// -------------------------------------------------------------------------------------------------
const PREFIX = '/functions/v1/';

async function route(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (!url.pathname.startsWith(PREFIX)) {
    return new Response(JSON.stringify({ message: 'no Route matched with those values' }), {
      status: 404,
      headers: { 'content-type': 'application/json' },
    });
  }
  const rest = url.pathname.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const name = slash === -1 ? rest : rest.slice(0, slash);
  const fn = loaded.get(name);
  if (!fn) return json(404, 'NOT_FOUND', 'Function not found');

  if (request.method !== 'OPTIONS' && verifyJwt.get(name)) {
    const rejected = await rejectUnverified(request);
    if (rejected) return rejected;
  }
  if (!fn.ok) return json(503, 'BOOT_ERROR', 'Worker failed to boot (please check logs)');

  url.pathname = `/${rest}`;
  try {
    // Everything but the abort signal (reading it makes Deno warn about its legacy abort behaviour).
    const forwarded = new Request(url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: request.redirect,
    });
    return await fn.fetch(forwarded);
  } catch (error) {
    console.error(`function ${name} threw on ${request.method} ${url.pathname}:`, error);
    return json(500, 'WORKER_ERROR', 'Function exited due to an error (please check logs)');
  }
}

// One line per request only when asked (FUNCTIONS_LOG_REQUESTS=1): it costs a write per request.
const logRequests = Deno.env.get('FUNCTIONS_LOG_REQUESTS') === '1';
async function handle(request: Request): Promise<Response> {
  if (!logRequests) return await route(request);
  const started = performance.now();
  const response = await route(request);
  const { pathname } = new URL(request.url);
  console.log(`${request.method} ${pathname} ${response.status} ${Math.round(performance.now() - started)} ms`);
  return response;
}

// -------------------------------------------------------------------------------------------------
// Start, stop
// -------------------------------------------------------------------------------------------------
for (const fn of manifest.functions) loaded.set(fn.name, await load(fn));

await serveUntilStopped({ hostname: manifest.hostname, port: manifest.port, readyLine: 'functions-server ready', handler: handle });
