// A fresh database for each test file, cloned from the migrated template, and the personas
// that use it: the Storage server, the service role, members, strangers and anon.
import { afterAll, beforeAll, inject } from 'vitest';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { randomBytes, randomUUID } from 'node:crypto';
import { StorageServer, setRequestContext, type Identity, SERVICE_ROLE } from '../../local/storage-writes.ts';
import { withDatabase } from '../../local/cluster.ts';

export { SERVICE_ROLE, type Identity };
export const ANON: Identity = { role: 'anon', claims: { role: 'anon' } };

export function userIdentity(userId: string): Identity {
  return { role: 'authenticated', claims: { sub: userId, role: 'authenticated', aud: 'authenticated' } };
}

export function callSid(): string {
  return `CA${randomBytes(16).toString('hex')}`;
}
export function recordingSid(): string {
  return `RE${randomBytes(16).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  url(user?: string, password?: string): string;
  /** supabase_admin: a superuser, for setup and inspection only. */
  admin: Sql;
  /** The role migrations run as (and the SQL editor uses). */
  owner: Sql;
  /** Writes storage.objects the way the Storage server does. */
  storage: StorageServer;
  /** A hash of every row a request could write: calls, recordings and (unless left out) parked URLs. */
  fingerprint(options?: { pending?: boolean }): Promise<string>;
  /** Runs `fn` in one transaction as `who`, the way PostgREST and our function do. */
  as<T>(who: Identity, fn: (tx: TransactionSql) => Promise<T>): Promise<T>;
}

export function useTestDatabase(): TestDatabase {
  const db = {} as TestDatabase;
  const clients: Sql[] = [];
  const adminUrl = inject('adminUrl');
  const template = inject('templateDatabase');
  const name = `cr_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;

  beforeAll(async () => {
    const root = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await root.unsafe(`create database ${name} template ${template} owner postgres`);
    await root.end();
    const open = (user?: string, password?: string) => {
      const sql = postgres(withDatabase(adminUrl, name, user, password), { max: 4, onnotice: () => {} });
      clients.push(sql);
      return sql;
    };
    // PostgREST's login role: no privileges of its own, it switches to the request's role.
    const authenticator = open('authenticator', 'postgres');
    Object.assign(db, {
      name,
      url: (user?: string, password?: string) => withDatabase(adminUrl, name, user, password),
      admin: open(),
      owner: open('postgres', 'postgres'),
      storage: new StorageServer(open('supabase_storage_admin', 'postgres')),
      fingerprint: async ({ pending = true }: { pending?: boolean } = {}) => {
        const [row] = await db.admin`
          select md5(coalesce((select string_agg(t::text, '|' order by t.id) from public.calls t), '')
                  || coalesce((select string_agg(t::text, '|' order by t.object_id) from public.recordings t), '')
                  || case when ${pending} then coalesce((select string_agg(t::text, '|' order by t.call_sid)
                                                        from call_recordings.pending_audio t), '') else '' end) as h`;
        return row.h as string;
      },
      as: async <T>(who: Identity, fn: (tx: TransactionSql) => Promise<T>) => {
        return (await authenticator.begin(async (tx) => {
          await setRequestContext(tx, who);
          return await fn(tx);
        })) as T;
      },
    });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
    const root = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await root.unsafe(`drop database if exists ${name} with (force)`);
    await root.end();
  });

  return db;
}
