// The `calls` function: the dashboard's routes, served from one edge function.
// Request -> route -> identity -> zod -> one SQL API call in a transaction -> JSON.
// The rules (linking, upserts, who sees what) live in SQL; this file only adapts HTTP to them.
import type { Authenticate, Identity } from '../_shared/auth.ts';
import type { Database } from '../_shared/db.ts';
import { httpErrorFromDatabase, json as jsonb, sql } from '../_shared/db.ts';
import { errorResponse, HttpError, json, preflight, readJson } from '../_shared/http.ts';
import { parseInput } from '../_shared/validation.ts';
import { detailsParams, historyQuery, listQuery, saveBody, updateAudioBody } from './schemas.ts';

/** The update-audio retry contract: clients retry while retry_count < MAX_RETRIES. */
export const RETRY_AFTER_MS = 2000;
export const MAX_RETRIES = 2;

export interface CallsDeps {
  db: Database;
  authenticate: Authenticate;
  log?: (entry: Record<string, unknown>) => void;
}

type Json = Record<string, unknown>;
interface Context {
  req: Request;
  url: URL;
  params: string[];
  who: Identity;
}
interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  handle: (ctx: Context, deps: CallsDeps) => Promise<Response>;
}

function queryObject(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (key in out) throw new HttpError(400, 'invalid_request', `Invalid query: ${key}: given more than once`);
    out[key] = value;
  }
  return out;
}

async function updateAudio(deps: CallsDeps, who: Identity, callSid: string, audioUrl: string, retryCount = 0) {
  const [row] = await deps.db.as(who, sql`select to_jsonb(c) as call from public.update_call_audio(${callSid}, ${audioUrl}) c where c.id is not null`);
  if (row) return json({ success: true, call: row.call });
  const retry = retryCount < MAX_RETRIES;
  throw new HttpError(404, 'call_not_found', `No call ${callSid} yet.`, undefined,
    retry ? { retry: true, retry_after: RETRY_AFTER_MS } : { retry: false });
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // malformed %-escapes: validation rejects it like any other bad id
  }
}

function encodeCursor(call: Json): string {
  return btoa(JSON.stringify([call.call_date, call.id])).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const value = JSON.parse(atob(cursor.replaceAll('-', '+').replaceAll('_', '/')));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && !Number.isNaN(Date.parse(value[0]))
        && typeof value[1] === 'string' && /^[0-9a-f-]{36}$/.test(value[1])) {
      return [value[0], value[1]];
    }
  } catch {
    // fall through
  }
  throw new HttpError(400, 'invalid_request', 'Invalid query: cursor: not a cursor this API returned', [
    { field: 'cursor', message: 'not a cursor this API returned' },
  ]);
}

const routes: Route[] = [
  {
    method: 'POST',
    path: /^\/calls\/save\/?$/,
    async handle({ req, who }, deps) {
      const body = parseInput(saveBody, await readJson(req));
      const { call_id, update_audio_only, retry_count, ...fields } = body;
      const callSid = (body.call_sid ?? call_id)!;
      if (update_audio_only) return await updateAudio(deps, who, callSid, body.audio_url!, retry_count);
      const [row] = await deps.db.as(who, sql`select to_jsonb(c) as call from public.save_call(${jsonb({ ...fields, call_sid: callSid })}) c`);
      return json({ success: true, call: row.call });
    },
  },
  {
    method: 'POST',
    path: /^\/calls\/update-audio\/?$/,
    async handle({ req, who }, deps) {
      const body = parseInput(updateAudioBody, await readJson(req));
      return await updateAudio(deps, who, (body.call_sid ?? body.call_id)!, body.audio_url, body.retry_count);
    },
  },
  {
    method: 'GET',
    path: /^\/calls\/details\/([^/]+)\/?$/,
    async handle({ params, who }, deps) {
      const { id } = parseInput(detailsParams, { id: decodePathSegment(params[0]) }, 'path');
      const [row] = await deps.db.as(who, sql`select public.get_call(${id}) as call`);
      if (!row.call) throw new HttpError(404, 'call_not_found', `No call ${id}.`);
      return json({ success: true, call: row.call });
    },
  },
  {
    method: 'GET',
    path: /^\/calls\/list\/?$/,
    async handle({ url, who }, deps) {
      const q = parseInput(listQuery, queryObject(url), 'query');
      const [row] = await deps.db.as(who, sql`
        select coalesce(jsonb_agg(to_jsonb(c) - 'ordinality' order by c.ordinality), '[]') as calls
        from public.list_calls(restaurant_id => ${q.backend ?? null}::text, search => ${q.search ?? null}::text,
                               max_rows => ${q.limit ?? 50}::int, skip_rows => ${q.offset ?? 0}::int) with ordinality c`);
      return json({ success: true, calls: row.calls });
    },
  },
  {
    method: 'GET',
    path: /^\/calls\/?$/,
    async handle({ url, who }, deps) {
      const q = parseInput(historyQuery, queryObject(url), 'query');
      const [beforeDate, beforeId] = q.cursor ? decodeCursor(q.cursor) : [null, null];
      const limit = q.limit ?? 50;
      const [row] = await deps.db.as(who, sql`
        select coalesce(jsonb_agg(to_jsonb(c) - 'ordinality' order by c.ordinality), '[]') as calls
        from public.list_calls(restaurant_id => ${q.restaurant ?? null}::text, search => ${q.search ?? null}::text,
                               date_from => ${q.from ?? null}::timestamptz, date_to => ${q.to ?? null}::timestamptz,
                               has_audio => ${q.has_audio ?? null}::boolean, max_rows => ${limit}::int,
                               before_call_date => ${beforeDate}::timestamptz, before_id => ${beforeId}::uuid) with ordinality c`);
      const calls = row.calls as Json[];
      const next = calls.length === limit ? encodeCursor(calls[calls.length - 1]) : null;
      return json({ success: true, calls, next_cursor: next });
    },
  },
];

/** The function's base path as the worker sees it: `/calls/...` (hosted and local alike). */
function routePath(pathname: string): string {
  return pathname.replace(/^\/functions\/v1(?=\/)/, '');
}

export function createCallsHandler(deps: CallsDeps): (req: Request) => Promise<Response> {
  const log = deps.log ?? ((entry) => console.error(JSON.stringify(entry)));
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = routePath(url.pathname);
    try {
      if (req.method === 'OPTIONS') return preflight();
      const matches = routes
        .map((route) => ({ route, match: route.path.exec(path) }))
        .filter((m) => m.match);
      if (matches.length === 0) throw new HttpError(404, 'not_found', `No route ${path}.`);
      const hit = matches.find((m) => m.route.method === req.method);
      if (!hit) {
        const allow = [...new Set(matches.map((m) => m.route.method)), 'OPTIONS'].join(', ');
        throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}; use ${allow}.`, undefined, undefined, { Allow: allow });
      }
      const who = await deps.authenticate(req);
      return await hit.route.handle({ req, url, params: hit.match!.slice(1), who }, deps);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error);
      const mapped = httpErrorFromDatabase(error);
      if (mapped) return errorResponse(mapped);
      log({ level: 'error', msg: 'unhandled error', method: req.method, path, error: String((error as Error)?.stack ?? error) });
      return errorResponse(new HttpError(500, 'internal_error', 'Something went wrong on our side.'));
    }
  };
}
