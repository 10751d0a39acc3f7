-- The private schema `call_recordings`: settings, internal tables and the linking machinery.
-- It is not in the Data API's exposed schemas; nothing in it is reachable by anon or
-- authenticated. Functions here are granted one by one, next to their definitions.

create schema call_recordings;
comment on schema call_recordings is
  'Call Recordings internals: settings, watched buckets, parked audio URLs, link errors and the storage trigger. Not exposed through the Data API.';

-- Nobody but the owner may use the schema unless a later statement grants it.
revoke all on schema call_recordings from public;

-- One row of settings.
create table call_recordings.settings (
  id boolean primary key default true check (id),
  api_url text not null default 'http://127.0.0.1:54321'
    check (api_url ~ '^https?://[^/?#[:space:]]+(/[^?#[:space:]]*[^/?#[:space:]])?$'),
  updated_at timestamptz not null default now()
);
comment on table call_recordings.settings is
  'One row. api_url is the project''s API base URL (SUPABASE_URL, no trailing slash) used to build recording URLs. After changing it, run select call_recordings.backfill(); to rewrite stored URLs.';
alter table call_recordings.settings enable row level security;
insert into call_recordings.settings default values;
