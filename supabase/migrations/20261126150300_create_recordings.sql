-- Recordings: one row per recognised object in a watched Storage bucket, plus the private tables
-- the linker uses (watched buckets, parked audio URLs, link errors) and the pure helpers that
-- parse recording names and build their URLs.

-- ---------------------------------------------------------------------------------------------
-- public.recordings
-- ---------------------------------------------------------------------------------------------
create sequence call_recordings.write_seq;
comment on sequence call_recordings.write_seq is 'Orders recording writes; the highest write_seq is a call''s current recording.';

create table public.recordings (
  -- A recording is its storage object: the object's id survives overwrites and moves.
  object_id uuid primary key,
  bucket_id text not null,
  object_name text not null,
  call_sid text not null check (call_sid ~ '^CA[0-9a-f]{32}$'),
  recording_sid text check (recording_sid ~ '^RE[0-9a-f]{32}$'),
  restaurant_id text,
  recorded_on date,
  size_bytes bigint,
  mime_type text,
  object_version text,
  url text not null,
  write_seq bigint not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.recordings is
  'One row per live recording object in a watched bucket, written only by the database (storage trigger and backfill). Deleted when the object is deleted.';
comment on column public.recordings.object_id is 'storage.objects.id of the recording; kept across overwrite and move.';
comment on column public.recordings.call_sid is 'CallSid parsed from the object name. The call row may not exist yet.';
comment on column public.recordings.restaurant_id is 'Restaurant segment of a dated path (call-recordings/<restaurant>/<date>/...), else null.';
comment on column public.recordings.recorded_on is 'Date segment of a dated path, else null.';
comment on column public.recordings.url is 'Storage URL as supabase-js builds it: /object/public/... for a public bucket, /object/authenticated/... otherwise.';
comment on column public.recordings.write_seq is 'Order of the last write (upload, overwrite or move); the highest is the call''s current recording.';

-- The linker and RLS find a call's recordings newest first.
create index recordings_call_sid_write_seq_idx on public.recordings (call_sid, write_seq desc);

alter table public.recordings enable row level security;

create policy "Members can read recordings of their restaurants' calls"
  on public.recordings for select to authenticated
  using (exists (select 1 from public.calls c where c.call_sid = recordings.call_sid));

revoke all on public.recordings from anon, authenticated, service_role;
grant select on public.recordings to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Private tables
-- ---------------------------------------------------------------------------------------------
create table call_recordings.watched_buckets (
  bucket_id text primary key,
  created_at timestamptz not null default now()
);
comment on table call_recordings.watched_buckets is
  'Storage buckets whose recognised objects become recordings. Watch one with select call_recordings.watch_bucket(''<bucket>'');';
alter table call_recordings.watched_buckets enable row level security;

create table call_recordings.pending_audio (
  call_sid text primary key check (call_sid ~ '^CA[0-9a-f]{32}$'),
  audio_url text not null check (audio_url ~ '^https?://' and length(audio_url) <= 2048),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table call_recordings.pending_audio is
  'Audio URLs given for calls that did not exist yet (parked); moved into calls.explicit_audio_url when the call is inserted.';
alter table call_recordings.pending_audio enable row level security;

create table call_recordings.link_errors (
  id bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  operation text not null,
  object_id uuid,
  bucket_id text,
  object_name text,
  old_bucket_id text,
  old_object_name text,
  sqlstate text not null,
  message text not null,
  detail text,
  context text,
  resolved_at timestamptz
);
comment on table call_recordings.link_errors is
  'Failures inside the storage trigger. The upload committed anyway; select call_recordings.replay_link_errors(); relinks the affected buckets once the cause is fixed.';
alter table call_recordings.link_errors enable row level security;

-- ---------------------------------------------------------------------------------------------
-- Helpers (pure)
-- ---------------------------------------------------------------------------------------------
create type call_recordings.recording_name as (
  call_sid text,
  recording_sid text,
  restaurant_id text,
  recorded_on date
);
comment on type call_recordings.recording_name is 'What a recognised object name says about its recording.';

create function call_recordings.parse_recording_name(name text)
returns call_recordings.recording_name
language plpgsql immutable parallel safe
set search_path = ''
as $$
-- String functions and open-ended patterns with length checks: this runs on every upload, and
-- Postgres's regex engine is slow on bounded repetitions such as [0-9a-f]{32}.
declare
  parts text[];
  base text;
  y int;
  m int;
  d int;
begin
  if lower(right(name, 4)) not in ('.mp3', '.wav') then
    return null;
  end if;
  -- call-recordings/<restaurant>/<YYYY-MM-DD>/<CallSid>[_<RecordingSid>].<mp3|wav>
  if starts_with(name, 'call-recordings/') then
    parts := string_to_array(name, '/');
    if array_length(parts, 1) = 4
       and length(parts[2]) <= 64 and parts[2] ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'
       and length(parts[3]) = 10 and parts[3] ~ '^[0-9]+-[0-9]+-[0-9]+$'
       and substr(parts[3], 5, 1) = '-' and substr(parts[3], 8, 1) = '-' then
      base := left(parts[4], -4);
      y := substr(parts[3], 1, 4)::int;
      m := substr(parts[3], 6, 2)::int;
      d := substr(parts[3], 9, 2)::int;
      if y >= 1 and m between 1 and 12
         and d between 1 and extract(day from make_date(y, m, 1) + interval '1 month - 1 day')
         and ((length(base) = 34 and base ~ '^CA[0-9a-f]+$')
              or (length(base) = 69 and base ~ '^CA[0-9a-f]+_RE[0-9a-f]+$' and substr(base, 35, 1) = '_')) then
        return row(left(base, 34), nullif(substr(base, 36), ''), parts[2], make_date(y, m, d))::call_recordings.recording_name;
      end if;
    end if;
  end if;
  -- [<folders>/]<CallSid>_<RecordingSid>.<mp3|wav>: 73 characters, at the start or after a '/'
  if length(name) = 73 or (length(name) > 73 and substr(name, length(name) - 73, 1) = '/') then
    base := left(right(name, 73), 69);
    if base ~ '^CA[0-9a-f]+_RE[0-9a-f]+$' and substr(base, 35, 1) = '_' then
      return row(left(base, 34), substr(base, 36), null, null)::call_recordings.recording_name;
    end if;
  end if;
  return null;
end
$$;
revoke execute on function call_recordings.parse_recording_name(text) from public;
comment on function call_recordings.parse_recording_name(text) is
  'Parses a recording object name (either layout of shared/DESIGN.md); null when the name is not a recording.';

create function call_recordings.encode_uri(value text)
returns text
language plpgsql immutable strict parallel safe
set search_path = ''
as $$
-- JavaScript's encodeURI, which supabase-js getPublicUrl applies to the whole URL.
begin
  if value ~ '^[A-Za-z0-9;,/?:@&=+$_.!~*''()#-]*$' then
    return value;
  end if;
  return (
    select string_agg(
      case when ch ~ '^[A-Za-z0-9;,/?:@&=+$_.!~*''()#-]$' then ch
           else upper(regexp_replace(encode(convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
      end, '' order by i)
    from regexp_split_to_table(value, '') with ordinality as t (ch, i)
  );
end
$$;
revoke execute on function call_recordings.encode_uri(text) from public;
comment on function call_recordings.encode_uri(text) is 'JavaScript encodeURI: percent-encodes UTF-8 bytes of all but the URI-safe characters.';

create function call_recordings.object_url(api_url text, bucket_is_public boolean, bucket_id text, object_name text)
returns text
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
  return api_url || '/storage/v1/object/'
         || case when bucket_is_public then 'public' else 'authenticated' end
         || '/' || call_recordings.encode_uri(bucket_id || '/' || object_name);
end
$$;
revoke execute on function call_recordings.object_url(text, boolean, text, text) from public;
comment on function call_recordings.object_url(text, boolean, text, text) is
  'The URL supabase-js builds for an object: getPublicUrl() for a public bucket, the authenticated download URL otherwise.';

-- ---------------------------------------------------------------------------------------------
-- The default bucket: private, because recordings are personal data. An existing bucket of the
-- same name (e.g. the dashboard's public one) is kept as it is.
-- ---------------------------------------------------------------------------------------------
insert into storage.buckets (id, name, public)
values ('call-recordings', 'call-recordings', false)
on conflict (id) do nothing;

insert into call_recordings.watched_buckets (bucket_id) values ('call-recordings');
