// Security invariants, checked on the migrated database (in the spirit of supabase/splinter).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useTestDatabase } from '../support/db.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT } from '../../local/database.ts';

const db = useTestDatabase();
const OUR_SCHEMAS = ['public', 'call_recordings'];

describe('security invariants', () => {
  it('enables RLS on every table we create', async () => {
    const tables = await db.admin`
      select n.nspname || '.' || c.relname as name, c.relrowsecurity as rls
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname = any(${OUR_SCHEMAS})`;
    expect(tables.length).toBeGreaterThanOrEqual(8);
    expect(tables.filter((t) => !t.rls).map((t) => t.name)).toEqual([]);
  });

  it('sets search_path on every function we create', async () => {
    const functions = await db.admin`
      select p.oid::regprocedure::text as name, p.proconfig
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = any(${OUR_SCHEMAS}) and p.prokind = 'f'
        and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')`;
    expect(functions.length).toBeGreaterThanOrEqual(15);
    const missing = functions.filter((f) => !(f.proconfig ?? []).some((c: string) => c.startsWith('search_path=')));
    expect(missing.map((f) => f.name)).toEqual([]);
  });

  it('lets no API role but service_role execute a security definer function', async () => {
    const rows = await db.admin`
      select p.oid::regprocedure::text as name, r.rolname
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      cross join (values ('anon'), ('authenticated'), ('public')) as r (rolname)
      where p.prosecdef and n.nspname = any(${OUR_SCHEMAS})
        and case when r.rolname = 'public'
                 then exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a where a.grantee = 0)
                 else has_function_privilege(r.rolname, p.oid, 'execute') end`;
    expect(rows).toEqual([]);
    const definers = await db.admin`
      select count(*)::int as n from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where p.prosecdef and n.nspname = any(${OUR_SCHEMAS}) and p.proconfig @> array['search_path=""']`;
    expect(definers[0].n).toBe(3);
  });

  it('lets anon execute none of our functions', async () => {
    const rows = await db.admin`
      select p.oid::regprocedure::text as name
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = any(${OUR_SCHEMAS}) and has_function_privilege('anon', p.oid, 'execute')
        and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')`;
    expect(rows.map((r) => r.name)).toEqual([]);
  });

  it('keeps no object of ours in the storage schema', async () => {
    const rows = await db.admin`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'storage' and pg_get_userbyid(c.relowner) = 'postgres'
      union all
      select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'storage' and pg_get_userbyid(p.proowner) = 'postgres'`;
    expect(rows).toEqual([]);
    const [trigger] = await db.admin`
      select t.tgname, p.pronamespace::regnamespace::text as schema from pg_trigger t join pg_proc p on p.oid = t.tgfoid
      where t.tgrelid = 'storage.objects'::regclass and t.tgname = 'call_recordings_link'`;
    expect(trigger).toEqual({ tgname: 'call_recordings_link', schema: 'call_recordings' });
  });

  it('has migrations that never drop triggers, alter tables or create policies on storage tables', () => {
    const dir = join(ROOT, 'supabase', 'migrations');
    const offending: string[] = [];
    for (const file of readdirSync(dir)) {
      const text = readFileSync(join(dir, file), 'utf8').replace(/--.*$/gm, '').toLowerCase();
      const patterns = [/drop\s+trigger[^;]*\bon\s+storage\./, /alter\s+table\s+(if\s+exists\s+)?storage\./,
                        /create\s+policy[^;]*\bon\s+storage\./, /create\s+(unique\s+)?index[^;]*\bon\s+storage\./,
                        /comment\s+on\s+trigger[^;]*\bon\s+storage\./];
      for (const pattern of patterns) if (pattern.test(text)) offending.push(`${file}: ${pattern}`);
    }
    expect(offending).toEqual([]);
  });

  it('applies migrations as postgres, which is not a superuser', async () => {
    const [role] = await db.admin`select rolsuper, rolbypassrls from pg_roles where rolname = 'postgres'`;
    expect(role).toEqual({ rolsuper: false, rolbypassrls: true });
    const [owner] = await db.admin`select pg_get_userbyid(relowner) as owner from pg_class where oid = 'public.calls'::regclass`;
    expect(owner.owner).toBe('postgres');
    const history = await db.admin`select version from supabase_migrations.schema_migrations order by version`;
    const files = readdirSync(join(ROOT, 'supabase', 'migrations')).map((f) => f.split('_')[0]).sort();
    expect(history.map((h) => h.version)).toEqual(files);
  });

  it('passes Supabase\'s own security and performance advisors (splinter) at level warn', async () => {
    const url = new URL(db.url('postgres', 'postgres'));
    url.searchParams.set('sslmode', 'disable');
    const { stdout, stderr } = await promisify(execFile)(join(ROOT, 'node_modules', '.bin', 'supabase'),
      ['db', 'advisors', '--db-url', url.toString(), '--type', 'all', '--level', 'warn', '--fail-on', 'warn'], { cwd: ROOT });
    expect(stdout + stderr).toContain('No issues found');
  });

  it('publishes calls to Realtime', async () => {
    const rows = await db.admin`select tablename from pg_publication_tables where pubname = 'supabase_realtime'`;
    expect(rows.map((r) => r.tablename)).toContain('calls');
  });
});
