// Postgres access for functions: one small pool per worker (postgres.js, prepare: false for the
// transaction-mode pooler), and every request in one transaction that first takes the caller's
// role and claims exactly as PostgREST does, so RLS decides as it does through the Data API.
import postgres from 'postgres';
import type { Identity } from './auth.ts';
import { HttpError } from './http.ts';

export type Rows = postgres.RowList<postgres.Row[]>;
export type Statement = (sql: postgres.Sql) => postgres.PendingQuery<postgres.Row[]>;

export interface Database {
  /**
   * Runs one statement in its own transaction as `who`. BEGIN, the role and claims, the
   * statement and COMMIT are pipelined: one round trip. If anything fails, the COMMIT becomes
   * a ROLLBACK on the server and the first error is thrown, so nothing is half written.
   */
  as(who: Identity, statement: Statement): Promise<Rows>;
  end(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  max?: number;
  /** Seconds a statement may run before the database cancels it. */
  statementTimeoutSeconds?: number;
  /** Seconds to wait for a connection before answering 503. */
  connectTimeoutSeconds?: number;
}

export function createDatabase(options: DatabaseOptions): Database {
  const statementTimeout = `${Math.round((options.statementTimeoutSeconds ?? 8) * 1000)}`;
  const sql = postgres(options.url, {
    prepare: false,
    max: options.max ?? 5,
    idle_timeout: 60,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    onnotice: () => {},
    connection: { application_name: 'calls-function' },
  });
  return {
    async as(who: Identity, statement: Statement): Promise<Rows> {
      const connection = await sql.reserve();
      try {
        const begin = connection`begin`.execute();
        const context = connection`select set_config('role', ${who.role}, true),
                                         set_config('request.jwt.claims', ${JSON.stringify(who.claims)}, true),
                                         set_config('statement_timeout', ${statementTimeout}, true)`.execute();
        const main = statement(connection).execute();
        const commit = connection`commit`.execute();
        const settled = await Promise.allSettled([begin, context, main, commit]);
        const failed = settled.find((s) => s.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
        return await main;
      } finally {
        connection.release();
      }
    },
    end: () => sql.end({ timeout: 5 }),
  };
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
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
