-- Linking: recordings link themselves to calls in the transaction that writes them.
--
--   storage.objects  --AFTER INSERT/UPDATE/DELETE-->  public.recordings  -->  public.calls.audio_url
--   public.calls     --BEFORE INSERT / UPDATE OF explicit_audio_url-->  audio_url from recordings,
--                                                                       else the parked/explicit URL
--
-- Rules (each in one function below):
--   current_recording_url  a call's current recording is its recording with the highest write_seq
--   recorded_restaurant    a call without a restaurant takes the newest dated path's, if it exists
--   relink_call            audio_url = current recording's URL, else explicit_audio_url, else null
-- Recording writes, call inserts and parking take lock_call(call_sid) before touching the call's
-- row, so a call saved concurrently with its upload always sees the other side (both orders,
-- any delay). An UPDATE of explicit_audio_url holds the row lock instead, and never waits for
-- lock_call while holding it (that would deadlock with a linker).

-- The helpers below are plpgsql rather than sql: with `set search_path` a sql function is not
-- inlined and is planned again in every transaction; plpgsql keeps its plans for the session.
create function call_recordings.lock_call(call_sid text) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('call_recordings:' || call_sid, 0));
end
$$;
revoke execute on function call_recordings.lock_call(text) from public;
comment on function call_recordings.lock_call(text) is
  'Serialises linking for one CallSid until the end of the transaction.';

create function call_recordings.current_recording_url(call_sid text) returns text
language plpgsql stable
set search_path = ''
as $$
begin
  return (select r.url from public.recordings r
          where r.call_sid = current_recording_url.call_sid
          order by r.write_seq desc
          limit 1);
end
$$;
revoke execute on function call_recordings.current_recording_url(text) from public;
comment on function call_recordings.current_recording_url(text) is
  'URL of the call''s most recently written live recording, or null.';

create function call_recordings.recorded_restaurant(call_sid text) returns text
language plpgsql stable
set search_path = ''
as $$
begin
  return (select r.restaurant_id from public.recordings r
          join public.restaurants x on x.id = r.restaurant_id
          where r.call_sid = recorded_restaurant.call_sid
          order by r.write_seq desc
          limit 1);
end
$$;
revoke execute on function call_recordings.recorded_restaurant(text) from public;
comment on function call_recordings.recorded_restaurant(text) is
  'Restaurant named by the call''s newest dated recording path, if that restaurant exists.';

create function call_recordings.relink_call(call_sid text) returns boolean
language sql volatile
set search_path = ''
as $$
  -- Computed from the row being updated (not from an earlier read of it), so a concurrent
  -- change of explicit_audio_url is never overwritten with a stale value.
  with changed as (
    update public.calls c
    set audio_url = coalesce(call_recordings.current_recording_url(c.call_sid), c.explicit_audio_url),
        restaurant_id = coalesce(c.restaurant_id, call_recordings.recorded_restaurant(c.call_sid))
    where c.call_sid = relink_call.call_sid
      and (c.audio_url is distinct from coalesce(call_recordings.current_recording_url(c.call_sid), c.explicit_audio_url)
           or (c.restaurant_id is null and call_recordings.recorded_restaurant(c.call_sid) is not null))
    returning 1
  )
  select exists (select 1 from changed)
$$;
revoke execute on function call_recordings.relink_call(text) from public;
comment on function call_recordings.relink_call(text) is
  'Recomputes a call''s audio_url (current recording, else explicit URL, else null) and fills its restaurant; true when the row changed.';

-- ---------------------------------------------------------------------------------------------
-- The storage trigger
-- ---------------------------------------------------------------------------------------------
create function call_recordings.on_storage_object_change() returns trigger
language plpgsql
-- definer: Storage writes as service_role or as the uploader; linking must write our tables whoever it is.
security definer
set search_path = ''
as $$
declare
  bucket_public boolean;
  api_url text;
  parsed call_recordings.recording_name;
  old_call_sid text;
  url text;
  is_write boolean;
  err_state text;
  err_message text;
  err_detail text;
  err_context text;
begin
  begin
    -- New side: only recognised names in watched buckets.
    if tg_op <> 'DELETE' then
      select b.public, s.api_url into bucket_public, api_url
      from call_recordings.watched_buckets w
      join storage.buckets b on b.id = w.bucket_id
      cross join call_recordings.settings s
      where w.bucket_id = new.bucket_id;
      if found then
        parsed := call_recordings.parse_recording_name(new.name);
        if parsed.call_sid is not null then
          url := call_recordings.object_url(api_url, bucket_public, new.bucket_id, new.name);
        end if;
      end if;
    end if;

    -- DELETE: the recording goes; the call falls back to its previous one.
    if tg_op = 'DELETE' then
      delete from public.recordings r where r.object_id = old.id returning r.call_sid into old_call_sid;
      if old_call_sid is not null then
        perform call_recordings.lock_call(old_call_sid);
        perform call_recordings.relink_call(old_call_sid);
      end if;
      return null;
    end if;

    if tg_op = 'INSERT' then
      if parsed.call_sid is null then
        return null;
      end if;
      perform call_recordings.lock_call(parsed.call_sid);
      is_write := true;
    else
      -- UPDATE (overwrite, move, metadata): start from the recording the object was, if any.
      select r.call_sid into old_call_sid from public.recordings r where r.object_id = old.id;
      if old_call_sid is null and parsed.call_sid is null then
        return null;
      end if;
      perform call_recordings.lock_call(s)
      from (select distinct s from unnest(array[old_call_sid, parsed.call_sid]) s where s is not null order by s) t;
      if parsed.call_sid is null then
        -- moved out of a watched bucket or to a name that is not a recording
        delete from public.recordings r where r.object_id = old.id;
        perform call_recordings.relink_call(old_call_sid);
        return null;
      end if;
      is_write := new.version is distinct from old.version
                  or new.name is distinct from old.name
                  or new.bucket_id is distinct from old.bucket_id;
    end if;

    insert into public.recordings as r
      (object_id, bucket_id, object_name, call_sid, recording_sid, restaurant_id, recorded_on,
       size_bytes, mime_type, object_version, url, write_seq)
    values
      (new.id, new.bucket_id, new.name, parsed.call_sid, parsed.recording_sid, parsed.restaurant_id,
       parsed.recorded_on,
       case when new.metadata ->> 'size' ~ '^[0-9]{1,18}$' then (new.metadata ->> 'size')::bigint end,
       new.metadata ->> 'mimetype', new.version, url, nextval('call_recordings.write_seq'))
    on conflict (object_id) do update set
      bucket_id = excluded.bucket_id, object_name = excluded.object_name, call_sid = excluded.call_sid,
      recording_sid = excluded.recording_sid, restaurant_id = excluded.restaurant_id,
      recorded_on = excluded.recorded_on, size_bytes = excluded.size_bytes,
      mime_type = excluded.mime_type, object_version = excluded.object_version, url = excluded.url,
      -- a metadata-only update does not make a recording newer
      write_seq = case when is_write then excluded.write_seq else r.write_seq end,
      updated_at = now();

    if tg_op = 'INSERT' then
      -- The object just written is the call's newest recording: no need to look the others up.
      update public.calls c
      set audio_url = url,
          restaurant_id = coalesce(c.restaurant_id, (select x.id from public.restaurants x
                                                     where x.id = parsed.restaurant_id))
      where c.call_sid = parsed.call_sid;
    else
      if old_call_sid is not null and old_call_sid <> parsed.call_sid then
        perform call_recordings.relink_call(old_call_sid);
      end if;
      perform call_recordings.relink_call(parsed.call_sid);
    end if;
    return null;
  exception when others then
    -- Never fail the upload: record what went wrong, with enough to replay it.
    get stacked diagnostics err_state = returned_sqlstate, err_message = message_text,
                            err_detail = pg_exception_detail, err_context = pg_exception_context;
    insert into call_recordings.link_errors
      (operation, object_id, bucket_id, object_name, old_bucket_id, old_object_name,
       sqlstate, message, detail, context)
    values
      (tg_op, coalesce(new.id, old.id), new.bucket_id, new.name, old.bucket_id, old.name,
       err_state, err_message, nullif(err_detail, ''), nullif(err_context, ''));
    return null;
  end;
end
$$;
revoke execute on function call_recordings.on_storage_object_change() from public;
comment on function call_recordings.on_storage_object_change() is
  'Links storage objects in watched buckets to calls in the writing transaction. Never raises: failures go to call_recordings.link_errors.';

create or replace trigger call_recordings_link
  after insert or update or delete on storage.objects
  for each row execute function call_recordings.on_storage_object_change();

-- ---------------------------------------------------------------------------------------------
-- The calls trigger: a call saved after its recording (or after a parked URL) links at insert.
-- ---------------------------------------------------------------------------------------------
create function call_recordings.on_call_write() returns trigger
language plpgsql
-- definer: must read every recording and the private parking table, whichever role saves the call.
security definer
set search_path = ''
as $$
declare
  parked text;
begin
  if tg_op = 'INSERT' then
    -- Before the row exists, so nobody can hold its row lock while waiting for ours. (An UPDATE
    -- already holds the row lock here: it must not wait for this lock, or it would deadlock
    -- with a linker holding it; the row lock alone orders it with the linkers' updates.)
    perform call_recordings.lock_call(new.call_sid);
    delete from call_recordings.pending_audio p where p.call_sid = new.call_sid
    returning p.audio_url into parked;
    new.explicit_audio_url := coalesce(new.explicit_audio_url, parked);
    new.restaurant_id := coalesce(new.restaurant_id, call_recordings.recorded_restaurant(new.call_sid));
  end if;
  new.audio_url := coalesce(call_recordings.current_recording_url(new.call_sid), new.explicit_audio_url);
  return new;
end
$$;
revoke execute on function call_recordings.on_call_write() from public;
comment on function call_recordings.on_call_write() is
  'On insert: applies a parked audio URL, links recordings uploaded earlier and fills the restaurant from a dated path. On explicit_audio_url change: recomputes audio_url.';

create trigger calls_link_audio
  before insert or update of explicit_audio_url on public.calls
  for each row execute function call_recordings.on_call_write();

-- ---------------------------------------------------------------------------------------------
-- Parking an audio URL for a call that does not exist yet (service role only)
-- ---------------------------------------------------------------------------------------------
create function call_recordings.park_audio_url(call_sid text, audio_url text) returns public.calls
language plpgsql
-- definer: writes the private parking table, which no API role may touch directly.
security definer
set search_path = ''
as $$
declare
  saved public.calls;
begin
  perform call_recordings.lock_call(park_audio_url.call_sid);
  -- The call may have been saved since the caller looked: then apply the URL to it.
  update public.calls c set explicit_audio_url = park_audio_url.audio_url
  where c.call_sid = park_audio_url.call_sid
  returning c.* into saved;
  if found then
    return saved;
  end if;
  insert into call_recordings.pending_audio as p (call_sid, audio_url)
  values (park_audio_url.call_sid, park_audio_url.audio_url)
  on conflict on constraint pending_audio_pkey do update set audio_url = excluded.audio_url, updated_at = now();
  return null;
end
$$;
revoke execute on function call_recordings.park_audio_url(text, text) from public, anon, authenticated;
grant usage on schema call_recordings to service_role;
grant execute on function call_recordings.park_audio_url(text, text) to service_role;
comment on function call_recordings.park_audio_url(text, text) is
  'Keeps an audio URL for a CallSid with no call yet; the call picks it up when inserted. Returns the call if it exists after all.';

-- ---------------------------------------------------------------------------------------------
-- Backfill, watching buckets, replaying errors (run as postgres, e.g. in the SQL editor)
-- ---------------------------------------------------------------------------------------------
create function call_recordings.backfill(bucket_id text default null)
returns table (recordings_written bigint, recordings_removed bigint, calls_updated bigint)
language plpgsql
set search_path = ''
as $$
declare
  written bigint;
  removed bigint;
  updated bigint;
begin
  create temporary table backfill_objects on commit drop as
  select o.id, o.bucket_id, o.name, o.version, o.metadata, o.updated_at, p.call_sid, p.recording_sid,
         p.restaurant_id, p.recorded_on,
         call_recordings.object_url(s.api_url, b.public, o.bucket_id, o.name) as url
  from storage.objects o
  join call_recordings.watched_buckets w on w.bucket_id = o.bucket_id
  join storage.buckets b on b.id = o.bucket_id
  cross join call_recordings.settings s
  cross join lateral call_recordings.parse_recording_name(o.name) p
  where (backfill.bucket_id is null or o.bucket_id = backfill.bucket_id)
    and p.call_sid is not null;

  -- Objects new to us are numbered oldest first, so the newest object is each call's current one.
  insert into public.recordings as r
    (object_id, bucket_id, object_name, call_sid, recording_sid, restaurant_id, recorded_on,
     size_bytes, mime_type, object_version, url, write_seq)
  select o.id, o.bucket_id, o.name, o.call_sid, o.recording_sid, o.restaurant_id, o.recorded_on,
         case when o.metadata ->> 'size' ~ '^[0-9]{1,18}$' then (o.metadata ->> 'size')::bigint end,
         o.metadata ->> 'mimetype', o.version, o.url, nextval('call_recordings.write_seq')
  from (select * from backfill_objects order by updated_at, id) o
  on conflict (object_id) do update set
    bucket_id = excluded.bucket_id, object_name = excluded.object_name, call_sid = excluded.call_sid,
    recording_sid = excluded.recording_sid, restaurant_id = excluded.restaurant_id,
    recorded_on = excluded.recorded_on, size_bytes = excluded.size_bytes,
    mime_type = excluded.mime_type, object_version = excluded.object_version, url = excluded.url,
    write_seq = case when (r.object_version, r.object_name, r.bucket_id)
                          is distinct from (excluded.object_version, excluded.object_name, excluded.bucket_id)
                     then excluded.write_seq else r.write_seq end,
    updated_at = now()
  where (r.bucket_id, r.object_name, r.call_sid, r.recording_sid, r.restaurant_id, r.recorded_on,
         r.size_bytes, r.mime_type, r.object_version, r.url)
        is distinct from
        (excluded.bucket_id, excluded.object_name, excluded.call_sid, excluded.recording_sid,
         excluded.restaurant_id, excluded.recorded_on, excluded.size_bytes, excluded.mime_type,
         excluded.object_version, excluded.url);
  get diagnostics written = row_count;

  -- Recordings whose object is gone, unwatched or no longer a recording.
  delete from public.recordings r
  where (backfill.bucket_id is null or r.bucket_id = backfill.bucket_id)
    and not exists (select 1 from backfill_objects o where o.id = r.object_id);
  get diagnostics removed = row_count;

  select count(*) filter (where call_recordings.relink_call(c.call_sid)) into updated
  from public.calls c;

  drop table backfill_objects;
  return query select written, removed, updated;
end
$$;
revoke execute on function call_recordings.backfill(text) from public;
comment on function call_recordings.backfill(text) is
  'Links every recording object already in the watched buckets (or in one bucket) and relinks every call. Idempotent: a second run changes nothing.';

create function call_recordings.watch_bucket(bucket_id text)
returns table (recordings_written bigint, recordings_removed bigint, calls_updated bigint)
language sql
set search_path = ''
as $$
  insert into call_recordings.watched_buckets (bucket_id) values (watch_bucket.bucket_id)
  on conflict do nothing;
  select * from call_recordings.backfill(watch_bucket.bucket_id);
$$;
revoke execute on function call_recordings.watch_bucket(text) from public;
comment on function call_recordings.watch_bucket(text) is
  'Starts linking recordings uploaded to an existing bucket, and links the ones already there.';

create function call_recordings.unwatch_bucket(bucket_id text)
returns table (recordings_written bigint, recordings_removed bigint, calls_updated bigint)
language sql
set search_path = ''
as $$
  delete from call_recordings.watched_buckets w where w.bucket_id = unwatch_bucket.bucket_id;
  select * from call_recordings.backfill(unwatch_bucket.bucket_id);
$$;
revoke execute on function call_recordings.unwatch_bucket(text) from public;
comment on function call_recordings.unwatch_bucket(text) is
  'Stops linking a bucket and removes its recordings (calls fall back to their explicit URL or null).';

create function call_recordings.replay_link_errors()
returns table (recordings_written bigint, recordings_removed bigint, calls_updated bigint)
language sql
set search_path = ''
as $$
  update call_recordings.link_errors set resolved_at = now() where resolved_at is null;
  select * from call_recordings.backfill();
$$;
revoke execute on function call_recordings.replay_link_errors() from public;
comment on function call_recordings.replay_link_errors() is
  'After fixing what made linking fail, relinks everything (backfill) and marks the recorded errors resolved.';
