// Writes storage.objects rows exactly as the Supabase Storage server does (shared/PLATFORM.md,
// "What the Storage server executes"): it connects as supabase_storage_admin, sets the request's
// role and claims in every transaction, runs a permission dry run that is always rolled back,
// then the real statement. There is no Storage server without Docker; this is its SQL boundary.
import type { Sql, TransactionSql } from 'postgres';
import { randomUUID } from 'node:crypto';

export interface Identity {
  role: 'service_role' | 'authenticated' | 'anon';
  claims: Record<string, unknown>;
}

export const SERVICE_ROLE: Identity = { role: 'service_role', claims: { role: 'service_role' } };

export interface UploadOptions {
  /** Who called the Storage API (the dry run runs as them). Default: the service role. */
  caller?: Identity;
  upsert?: boolean;
  size?: number;
  mimetype?: string;
}

export class StorageConflictError extends Error {
  readonly statusCode = '409';
  constructor(bucket: string, name: string) {
    super(`The resource already exists: ${bucket}/${name}`);
  }
}

// A transaction from postgres.js, or anything that can run tagged SQL.
type Tx = TransactionSql | Sql;

export async function setRequestContext(tx: Tx, who: Identity): Promise<void> {
  await tx`select set_config('role', ${who.role}, true), set_config('request.jwt.claims', ${JSON.stringify(who.claims)}, true)`;
}

function metadataFor(name: string, options: UploadOptions) {
  const size = options.size ?? 48_000;
  return {
    eTag: `"${randomUUID().replaceAll('-', '')}"`,
    size,
    mimetype: options.mimetype ?? (name.toLowerCase().endsWith('.wav') ? 'audio/wav' : 'audio/mpeg'),
    cacheControl: 'max-age=3600',
    lastModified: new Date().toUTCString(),
    contentLength: size,
    httpStatusCode: 200,
  };
}

function ownerOf(who: Identity): string | null {
  const sub = who.claims.sub;
  return typeof sub === 'string' ? sub : null;
}

/** The server's final upload statement, inside the caller's transaction `tx`. */
export async function writeObject(tx: Tx, bucket: string, name: string, options: UploadOptions = {}) {
  const owner = ownerOf(options.caller ?? SERVICE_ROLE);
  const metadata = metadataFor(name, options);
  const version = randomUUID();
  const rows = await tx`
    insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version, user_metadata)
    values (${bucket}, ${name}, ${owner}, ${owner}, ${tx.json(metadata)}, ${version}, ${tx.json({})})
    on conflict (name, bucket_id) do update set
      metadata = excluded.metadata, version = excluded.version, owner = excluded.owner,
      owner_id = excluded.owner_id, user_metadata = excluded.user_metadata
    returning id, version`;
  return rows[0] as { id: string; version: string };
}

export class StorageServer {
  /** `sql` must be connected as supabase_storage_admin. */
  constructor(private readonly sql: Sql) {}

  /** Runs `fn` in a transaction that is always rolled back, as `who` (the permission dry run). */
  private async dryRun(who: Identity, fn: (tx: TransactionSql) => Promise<unknown>): Promise<void> {
    const rollback = new Error('dry run');
    try {
      await this.sql.begin(async (tx) => {
        await setRequestContext(tx, who);
        await fn(tx);
        throw rollback;
      });
    } catch (error) {
      if (error !== rollback) throw error;
    }
  }

  async upload(bucket: string, name: string, options: UploadOptions = {}) {
    const caller = options.caller ?? SERVICE_ROLE;
    try {
      await this.dryRun(caller, async (tx) => {
        if (options.upsert) await writeObject(tx, bucket, name, options);
        else await tx`insert into storage.objects (bucket_id, name, owner_id, metadata, version)
                      values (${bucket}, ${name}, ${ownerOf(caller)}, ${tx.json(metadataFor(name, options))}, ${randomUUID()})`;
      });
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new StorageConflictError(bucket, name);
      throw error;
    }
    return await this.sql.begin(async (tx) => {
      await setRequestContext(tx, SERVICE_ROLE);
      return await writeObject(tx, bucket, name, options);
    });
  }

  async move(bucket: string, from: string, to: string, options: { caller?: Identity; toBucket?: string } = {}) {
    const caller = options.caller ?? SERVICE_ROLE;
    const destination = options.toBucket ?? bucket;
    const statement = (tx: TransactionSql) => tx`
      update storage.objects
      set name = ${to}, bucket_id = ${destination}, version = ${randomUUID()}, last_accessed_at = now()
      where bucket_id = ${bucket} and name = ${from}
      returning id`;
    await this.dryRun(caller, statement);
    const rows = await this.sql.begin(async (tx) => {
      await setRequestContext(tx, SERVICE_ROLE);
      return await statement(tx);
    });
    if (rows.length === 0) throw new Error(`Object not found: ${bucket}/${from}`);
  }

  async copy(bucket: string, from: string, to: string, options: { caller?: Identity } = {}) {
    const [source] = await this.sql`select metadata from storage.objects where bucket_id = ${bucket} and name = ${from}`;
    if (!source) throw new Error(`Object not found: ${bucket}/${from}`);
    const size = Number((source.metadata as { size?: number } | null)?.size ?? 0);
    return await this.upload(bucket, to, { caller: options.caller, size });
  }

  /** Deletes as the caller's role, the way the server does (it sets storage.allow_delete_query). */
  async remove(bucket: string, names: string[], options: { caller?: Identity } = {}) {
    const caller = options.caller ?? SERVICE_ROLE;
    return await this.sql.begin(async (tx) => {
      await setRequestContext(tx, caller);
      await tx`select set_config('storage.allow_delete_query', 'true', true)`;
      return await tx`delete from storage.objects where bucket_id = ${bucket} and name = any(${names}) returning id, name`;
    });
  }
}
