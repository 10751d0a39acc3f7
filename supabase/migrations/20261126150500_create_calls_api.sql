-- The SQL API the `calls` edge function calls (and that PostgREST's /rpc exposes the same way).
-- Every function is security invoker: RLS and column privileges decide what the caller may do.
-- Client mistakes raise SQLSTATE PT4xx, which PostgREST (and our function) answer with HTTP 4xx.

create function public.save_call(call jsonb) returns public.calls
language plpgsql
security invoker
set search_path = ''
as $$
declare
  given public.calls;
  saved public.calls;
begin
  if jsonb_typeof(call) is distinct from 'object' then
    raise exception 'call must be a JSON object' using errcode = 'PT400';
  end if;
  if coalesce(call ->> 'call_sid', '') !~ '^CA[0-9a-f]{32}$' then
    raise exception 'call_sid must be CA followed by 32 lowercase hex digits' using errcode = 'PT400';
  end if;
  given := jsonb_populate_record(null::public.calls, call);

  insert into public.calls as c
    (call_sid, restaurant_id, call_date, customer_name, phone_number, delivery_address, order_items,
     special_instructions, payment_method, delivery_time, total_price, call_duration, transcript,
     metadata, explicit_audio_url)
  values
    (given.call_sid, given.restaurant_id, coalesce(given.call_date, now()), given.customer_name,
     given.phone_number, given.delivery_address, coalesce(given.order_items, '[]'),
     given.special_instructions, given.payment_method, given.delivery_time, given.total_price,
     given.call_duration, coalesce(given.transcript, '[]'), coalesce(given.metadata, '{}'),
     call ->> 'audio_url')
  on conflict (call_sid) do update set
    -- A field the caller sent replaces the stored one; a field it left out is kept.
    restaurant_id = coalesce(c.restaurant_id, excluded.restaurant_id),
    call_date = case when call ? 'call_date' then excluded.call_date else c.call_date end,
    customer_name = case when call ? 'customer_name' then excluded.customer_name else c.customer_name end,
    phone_number = case when call ? 'phone_number' then excluded.phone_number else c.phone_number end,
    delivery_address = case when call ? 'delivery_address' then excluded.delivery_address else c.delivery_address end,
    order_items = case when call ? 'order_items' then excluded.order_items else c.order_items end,
    special_instructions = case when call ? 'special_instructions' then excluded.special_instructions else c.special_instructions end,
    payment_method = case when call ? 'payment_method' then excluded.payment_method else c.payment_method end,
    delivery_time = case when call ? 'delivery_time' then excluded.delivery_time else c.delivery_time end,
    total_price = case when call ? 'total_price' then excluded.total_price else c.total_price end,
    call_duration = case when call ? 'call_duration' then excluded.call_duration else c.call_duration end,
    transcript = case when call ? 'transcript' then excluded.transcript else c.transcript end,
    metadata = case when call ? 'metadata' then excluded.metadata else c.metadata end,
    -- An audio URL is only ever replaced by another one, never by null.
    explicit_audio_url = coalesce(excluded.explicit_audio_url, c.explicit_audio_url)
  -- A call never moves between restaurants through save. (given, not excluded: the insert
  -- trigger may have filled excluded.restaurant_id from a recording path.)
  where c.restaurant_id is null or given.restaurant_id is null or c.restaurant_id = given.restaurant_id
  returning c.* into saved;

  if saved.id is null then
    -- Only someone who can see the call learns that it exists elsewhere.
    if exists (select 1 from public.calls c where c.call_sid = given.call_sid) then
      raise exception 'call % belongs to another restaurant', given.call_sid using errcode = 'PT409';
    end if;
    raise exception 'permission denied for call %', given.call_sid using errcode = '42501';
  end if;
  return saved;
end
$$;
revoke execute on function public.save_call(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.save_call(jsonb) to authenticated, service_role;
comment on function public.save_call(jsonb) is
  'Creates or updates a call by call_sid (atomic upsert). Fields left out are kept; audio_url sets the explicit URL and null never clears a link; restaurant_id cannot change once set.';

create function public.update_call_audio(call_sid text, audio_url text) returns public.calls
language plpgsql
security invoker
set search_path = ''
as $$
declare
  saved public.calls;
begin
  if coalesce(update_call_audio.call_sid, '') !~ '^CA[0-9a-f]{32}$' then
    raise exception 'call_sid must be CA followed by 32 lowercase hex digits' using errcode = 'PT400';
  end if;
  if coalesce(update_call_audio.audio_url, '') !~ '^https?://' or length(update_call_audio.audio_url) > 2048 then
    raise exception 'audio_url must be an http(s) URL of at most 2048 characters' using errcode = 'PT400';
  end if;

  update public.calls c set explicit_audio_url = update_call_audio.audio_url
  where c.call_sid = update_call_audio.call_sid
  returning c.* into saved;
  if found then
    return saved;
  end if;

  -- No call we can see. A role that sees every call (service role) knows it does not exist yet:
  -- park the URL so the call picks it up when saved. Anyone else gets nothing.
  if (select r.rolbypassrls from pg_catalog.pg_roles r where r.rolname = current_user) then
    return call_recordings.park_audio_url(update_call_audio.call_sid, update_call_audio.audio_url);
  end if;
  return null;
end
$$;
revoke execute on function public.update_call_audio(text, text) from public, anon, authenticated, service_role;
grant execute on function public.update_call_audio(text, text) to authenticated, service_role;
comment on function public.update_call_audio(text, text) is
  'Sets a call''s explicit audio URL. Returns null when the call is not there (yet); for the service role the URL is then parked and applied when the call is saved.';

create function public.get_call(id text) returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select to_jsonb(c) || jsonb_build_object('recordings', coalesce((
           select jsonb_agg(to_jsonb(r) - 'write_seq' order by r.write_seq desc)
           from public.recordings r where r.call_sid = c.call_sid), '[]'::jsonb))
  from public.calls c
  where c.call_sid = get_call.id
     or c.id = case when get_call.id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    then get_call.id::uuid end
  limit 1
$$;
revoke execute on function public.get_call(text) from public, anon, authenticated, service_role;
grant execute on function public.get_call(text) to authenticated, service_role;
comment on function public.get_call(text) is
  'One call by id (uuid) or call_sid, with its live recordings newest first; null when not found or not visible.';

create function public.list_calls(
  restaurant_id text default null,
  search text default null,
  date_from timestamptz default null,
  date_to timestamptz default null,
  has_audio boolean default null,
  max_rows integer default 50,
  skip_rows integer default 0,
  before_call_date timestamptz default null,
  before_id uuid default null
) returns setof public.calls
language sql stable
security invoker
set search_path = ''
as $$
  select c.*
  from public.calls c
  where (list_calls.restaurant_id is null or c.restaurant_id = list_calls.restaurant_id)
    and (list_calls.search is null
         or c.customer_name ilike '%' || replace(replace(replace(list_calls.search, '\', '\\'), '%', '\%'), '_', '\_') || '%'
         or c.phone_number ilike '%' || replace(replace(replace(list_calls.search, '\', '\\'), '%', '\%'), '_', '\_') || '%')
    and (list_calls.date_from is null or c.call_date >= list_calls.date_from)
    and (list_calls.date_to is null or c.call_date < list_calls.date_to)
    and (list_calls.has_audio is null or (c.audio_url is not null) = list_calls.has_audio)
    and (list_calls.before_call_date is null
         or (c.call_date, c.id) < (list_calls.before_call_date,
                                   coalesce(list_calls.before_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)))
  order by c.call_date desc, c.id desc
  limit least(greatest(coalesce(list_calls.max_rows, 50), 1), 1000)
  offset greatest(coalesce(list_calls.skip_rows, 0), 0)
$$;
revoke execute on function public.list_calls(text, text, timestamptz, timestamptz, boolean, integer, integer, timestamptz, uuid)
  from public, anon, authenticated, service_role;
grant execute on function public.list_calls(text, text, timestamptz, timestamptz, boolean, integer, integer, timestamptz, uuid)
  to authenticated, service_role;
comment on function public.list_calls(text, text, timestamptz, timestamptz, boolean, integer, integer, timestamptz, uuid) is
  'Call history newest first (call_date, id): optional restaurant, search (customer name or phone, substring), date range [from, to), has_audio; page by skip_rows or by the (before_call_date, before_id) cursor of the last row seen. At most 1000 rows.';
