// Preparing a database the way Supabase would have it: the platform model (only where the
// database is not a Supabase database already), then our migrations applied by the Supabase CLI
// as the non-superuser `postgres`, exactly as `supabase db push` does against a hosted project.
import postgres from 'postgres';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PLATFORM_SQL = join(ROOT, 'local', 'platform.sql');
export const SEED_SQL = join(ROOT, 'supabase', 'seed.sql');
const SUPABASE_CLI = join(ROOT, 'node_modules', '.bin', 'supabase');

/** True when the database already has what Supabase's image and Storage server create. */
export async function isSupabaseDatabase(adminUrl: string): Promise<boolean> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`
      select to_regclass('storage.objects') is not null
         and exists (select 1 from pg_roles where rolname = 'supabase_storage_admin')
         and to_regprocedure('auth.uid()') is not null as supabase`;
    return Boolean(row?.supabase);
  } finally {
    await sql.end();
  }
}

/** Applies local/platform.sql as a superuser; returns false when the database is Supabase's already. */
export async function applyPlatformModel(adminUrl: string): Promise<boolean> {
  if (await isSupabaseDatabase(adminUrl)) return false;
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(readFileSync(PLATFORM_SQL, 'utf8'));
  } finally {
    await sql.end();
  }
  return true;
}

function cliDbUrl(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has('sslmode') && ['127.0.0.1', 'localhost', '::1'].includes(u.hostname)) {
    u.searchParams.set('sslmode', 'disable');
  }
  return u.toString();
}

/** `supabase migration up --db-url …` as the caller of `postgresUrl` (the role postgres). */
export async function applyMigrations(postgresUrl: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(SUPABASE_CLI, ['migration', 'up', '--db-url', cliDbUrl(postgresUrl)], {
      cwd: ROOT,
      env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`supabase migration up failed:\n${e.stderr ?? ''}${e.stdout ?? ''}${e.stderr || e.stdout ? '' : e.message}`);
  }
}

/** Loads supabase/seed.sql as postgres (what `supabase db reset` does after migrations). */
export async function loadSeed(postgresUrl: string): Promise<void> {
  const sql = postgres(postgresUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(readFileSync(SEED_SQL, 'utf8'));
  } finally {
    await sql.end();
  }
}
