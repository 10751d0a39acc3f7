-- Platform model: the parts of a Supabase database that this project depends on and that
-- Supabase's Postgres image, Auth and Storage servers create before any user migration runs.
--
-- Applied by a superuser (supabase_admin, as on the real image) to a database that is NOT already
-- a Supabase database (tests, `npm start`). Never applied to a hosted or `supabase start` database.
-- Facts come from shared/PLATFORM.md; each object cites the public source it mirrors.
-- Idempotent: every statement can run again on the same database.

do $$
begin
  if current_user = 'postgres' then
    raise exception 'the platform model demotes the role postgres; connect as another superuser (e.g. supabase_admin)';
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide)
-- source: supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql,
--         00000000000001-auth-schema.sql, 00000000000002-storage-schema.sql
-- ---------------------------------------------------------------------------------------------
-- Passwords are set only on roles created here (local value 'postgres', as the CLI uses), never
-- on roles that already exist in the cluster.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin login password 'postgres';
  end if;
end
$$;

-- `postgres` is not a superuser on Supabase: migrations run as this role, locally and hosted.
alter role postgres nosuperuser login createdb createrole replication bypassrls;
alter role postgres set search_path = "$user", public, extensions;
alter role anon nologin inherit;
alter role authenticated nologin inherit;
alter role service_role nologin inherit bypassrls;
-- PostgREST logs in as authenticator and switches to the request's role.
alter role authenticator login noinherit;
-- source: supabase/postgres migrations/db/init-scripts/00000000000002-storage-schema.sql
alter role supabase_storage_admin login noinherit nobypassrls;
alter role supabase_storage_admin set search_path = storage;

grant anon, authenticated, service_role to postgres;
grant anon, authenticated, service_role to authenticator;
grant authenticator to supabase_storage_admin;

-- ---------------------------------------------------------------------------------------------
-- Schemas and default privileges
-- source: supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql
-- ---------------------------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
-- On the real image supautils lets postgres create the allow-listed extensions in this schema.
grant create on schema extensions to postgres;

grant usage on schema public to postgres, anon, authenticated, service_role;
-- Functions and sequences that postgres creates in public are granted to the API roles by
-- default (tables no longer are: hosted projects since 2026-10-30). Our migrations must revoke.
alter default privileges for role postgres in schema public
  grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- auth: the helpers RLS policies call, and the users table memberships reference
-- source: supabase/auth migrations/20171026211738_setup.up.sql (users),
--         20221003041349_add_auth_jwt_function.up.sql, supabase/postgres auth-schema init script
-- ---------------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

-- A subset of auth.users' columns: the ones a foreign key or a test needs.
create table if not exists auth.users (
  id uuid primary key,
  email text,
  role text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
alter table auth.users enable row level security;
-- source: supabase/postgres migrations/db/migrations/10000000000000_demote-postgres.sql
grant all on auth.users to postgres;

create or replace function auth.jwt() returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
  to postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- storage: buckets, objects and the triggers/helpers the Storage server installs
-- source: supabase/storage migrations/tenant/0001-initialmigration.sql … 0063 (current columns,
--         see shared/PLATFORM.md), src/storage/database/knex.ts (statements it issues)
-- ---------------------------------------------------------------------------------------------
create schema if not exists storage authorization supabase_admin;
grant all on schema storage to supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;

set role supabase_storage_admin;

do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'storage' and t.typname = 'buckettype') then
    -- source: supabase/storage migrations/tenant/0029-add-bucket-type.sql (+ VECTOR later)
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;
end
$$;

create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  type storage.buckettype not null default 'STANDARD',
  versioning_status text not null default 'DISABLED'
);
create unique index if not exists bname on storage.buckets (name);
alter table storage.buckets enable row level security;

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  user_metadata jsonb,
  archived_at timestamptz,
  is_delete_marker boolean not null default false,
  is_versioned boolean not null default false
);
-- The Storage server's upsert (ON CONFLICT (name, bucket_id)) depends on this index.
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
alter table storage.objects enable row level security;

-- source: supabase/storage migrations/tenant/0002-storage-schema.sql (foldername, filename,
--         extension), 0008-update-updated-at-column.sql
create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql
as $$
begin
  new.updated_at = now();
  return new;
end
$$;

-- source: supabase/storage migrations/tenant/0057-protect-delete.sql (statement-level guard)
create or replace function storage.protect_delete() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using errcode = '42501';
  end if;
  return null;
end
$$;

create or replace trigger update_objects_updated_at
  before update on storage.objects
  for each row execute function storage.update_updated_at_column();
create or replace trigger protect_objects_delete
  before delete on storage.objects
  for each statement execute function storage.protect_delete();
create or replace trigger protect_buckets_delete
  before delete on storage.buckets
  for each statement execute function storage.protect_delete();

reset role;

grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;

-- ---------------------------------------------------------------------------------------------
-- Realtime publication (created empty by the image, owned by postgres so migrations can add tables)
-- source: supabase/postgres migrations/db/init-scripts/00000000000003-post-setup.sql
-- ---------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;

-- The database is owned by postgres, as on Supabase, so `public` (owned by pg_database_owner)
-- is postgres's to create in and the CLI can create its supabase_migrations schema.
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
end
$$;
