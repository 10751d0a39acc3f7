// Postgres access for functions: one small pool per worker (postgres.js, prepare: false for the
// transaction-mode pooler), and every request in one transaction that first takes the caller's
// role and claims exactly as PostgREST does, so RLS decides as it does through the Data API.
//
// One round trip per request: the role, the claims and the statement travel as ONE simple-query
// message, which Postgres runs as one implicit transaction (all of it commits, or none of it).
// postgres.js sends every statement with bind parameters as describe-then-execute when prepared
// statements are off (2 round trips each, and nothing pipelines behind it), so values are written
// as escaped literals instead — by `sql` below, the only way statements are built here.
import postgres from 'postgres';
import type { Identity } from './auth.ts';
import { HttpError } from './http.ts';

export type Rows = postgres.RowList<postgres.Row[]>;

/** A statement whose values are already literals. Build it with `sql`. */
export interface Statement {
  readonly text: string;
}

/** A value `sql` can write as a literal; `json(x)` for a jsonb value. */
export type SqlValue = string | number | boolean | null | undefined | JsonValue;
interface JsonValue {
  readonly json: unknown;
}
export const json = (value: unknown): JsonValue => ({ json: value });

/** SQL literal for `value`: E'…' strings (independent of standard_conforming_strings). */
export function literal(value: SqlValue): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`);
    return `(${String(value)})`;
  }
  if (typeof value === 'object') return `${literal(JSON.stringify(value.json))}::jsonb`;
  if (value.includes('\u0000')) {
    throw new HttpError(400, 'invalid_request', 'A value contains a NUL character (\\u0000), which Postgres cannot store.');
  }
  return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** Tagged template: `sql\`select f(${x})\`` with every interpolation written by `literal`. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): Statement {
  let text = strings[0];
  values.forEach((value, i) => {
    text += literal(value) + strings[i + 1];
  });
  return { text };
}

export interface Database {
  /** Runs `statement` as `who`, in one transaction, in one round trip. */
  as(who: Identity, statement: Statement): Promise<Rows>;
  end(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  max?: number;
  /** Seconds a statement may run before the database cancels it (default 8). */
  statementTimeoutSeconds?: number;
  /** Seconds to wait for a connection before answering 503 (default 5). */
  connectTimeoutSeconds?: number;
}

/** Raised when a request got no answer from the database within its deadline. */
export class DeadlineExceeded extends Error {
  readonly code = 'DEADLINE_EXCEEDED';
}

export function createDatabase(options: DatabaseOptions): Database {
  const statementMs = Math.round((options.statementTimeoutSeconds ?? 8) * 1000);
  const connectSeconds = options.connectTimeoutSeconds ?? 5;
  // Every request is answered by then: the statement timeout, or the connect timeout, plus a second.
  const deadlineMs = Math.max(statementMs, connectSeconds * 1000) + 1000;
  const open = () => postgres(options.url, {
    prepare: false,
    max: options.max ?? 5,
    idle_timeout: 60,
    connect_timeout: connectSeconds,
    onnotice: () => {},
    connection: { application_name: 'calls-function' },
  });
  let pool = open();

  return {
    async as(who: Identity, statement: Statement): Promise<Rows> {
      const context = sql`select set_config('role', ${who.role}, true),
                                 set_config('request.jwt.claims', ${JSON.stringify(who.claims)}, true),
                                 set_config('statement_timeout', ${String(statementMs)}, true)`;
      const used = pool;
      const query = used.unsafe(`${context.text};\n${statement.text}`).simple();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineExceeded(`no answer from the database within ${deadlineMs} ms`)), deadlineMs);
      });
      try {
        const results = (await Promise.race([query, deadline])) as unknown as Rows[];
        return results[results.length - 1];
      } catch (error) {
        if (error instanceof DeadlineExceeded) {
          // postgres.js can leave a query pending forever when the server goes away mid-way
          // (porsager/postgres#1193). The statement timeout has passed, so the server is not
          // running it: drop the whole pool, its stuck connections with it, and start afresh.
          query.catch(() => {});
          if (pool === used) {
            pool = open();
            used.end({ timeout: 0 }).catch(() => {});
          }
        }
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    end: () => pool.end({ timeout: 5 }),
  };
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'DEADLINE_EXCEEDED',
  '57P01', '57P02', '57P03', '53300', '53400', '08000', '08001', '08003', '08004', '08006', '57014', '55P03',
  '40001', '40P01', // serialization failure, deadlock: transient, the same request can succeed
]);

/** Maps a database error to the client's answer; null when it is not the client's doing. */
export function httpErrorFromDatabase(error: unknown): HttpError | null {
  const e = error as { code?: string; message?: string; detail?: string; constraint_name?: string; column_name?: string };
  const code = e?.code ?? '';
  const message = e?.message ?? 'database error';
  if (code.startsWith('PT') && /^PT[45]\d\d$/.test(code)) {
    const status = Number(code.slice(2));
    return new HttpError(status, status === 409 ? 'conflict' : status === 404 ? 'not_found' : 'invalid_request', message);
  }
  if (UNAVAILABLE_CODES.has(code)) {
    return new HttpError(503, 'database_unavailable', 'The database is unavailable or busy; retry shortly.', undefined,
      { retry: true, retry_after: 2000 }, { 'Retry-After': '2' });
  }
  switch (code) {
    case '42501':
      return new HttpError(403, 'forbidden', 'You may not do this with these credentials.');
    case '23503':
      return new HttpError(422, 'unknown_reference', `A referenced row does not exist${e.detail ? `: ${e.detail}` : ''}.`);
    case '23505':
      return new HttpError(409, 'conflict', message);
    case '23514':
    case '23502': {
      // calls_<column>_check / a not-null column: name the field the client sent.
      const field = e.column_name ?? /^[a-z_]+?_([a-z_]+)_check$/.exec(e.constraint_name ?? '')?.[1] ?? null;
      return new HttpError(400, 'invalid_field',
        field ? `${field}: the value is not accepted.` : 'A field has a value that is not accepted.',
        field ? [{ field, message: 'the value is not accepted' }] : undefined);
    }
    case '22P02':
    case '22P05':
    case '22003':
    case '22007':
    case '22008':
    case '22023':
    case '22001':
    case '22021':
      return new HttpError(400, 'invalid_field', message);
  }
  return null;
}
