-- public.calls: one row per phone call, with the fields the ordering dashboard saves, and
-- audio_url, which the database keeps pointing at the call's current recording.
--
-- audio_url is derived: clients never write it. They write explicit_audio_url (through
-- public.save_call / public.update_call_audio or the columns granted below); the triggers in
-- the linking migration set audio_url = newest live recording's URL, else explicit_audio_url.

create extension if not exists pg_trgm with schema extensions;

create table public.calls (
  id uuid primary key default gen_random_uuid(),
  call_sid text not null unique check (call_sid ~ '^CA[0-9a-f]{32}$'),
  restaurant_id text references public.restaurants (id),
  call_date timestamptz not null default now(),
  customer_name text check (length(customer_name) <= 500),
  phone_number text check (length(phone_number) <= 100),
  delivery_address text check (length(delivery_address) <= 2000),
  order_items jsonb not null default '[]' check (jsonb_typeof(order_items) = 'array'),
  special_instructions text check (length(special_instructions) <= 5000),
  payment_method text check (length(payment_method) <= 100),
  delivery_time text check (length(delivery_time) <= 200),
  total_price text check (length(total_price) <= 100),
  call_duration integer check (call_duration >= 0),
  transcript jsonb not null default '[]' check (jsonb_typeof(transcript) = 'array'),
  metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
  explicit_audio_url text check (explicit_audio_url ~ '^https?://' and length(explicit_audio_url) <= 2048),
  audio_url text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.calls is
  'One phone call. audio_url links itself to the call''s newest recording in a watched Storage bucket, whatever the order of save and upload.';
comment on column public.calls.call_sid is 'Twilio CallSid: CA followed by 32 lowercase hex digits.';
comment on column public.calls.restaurant_id is
  'Owning restaurant. May be null when only the CallSid is known; filled from a dated recording path (call-recordings/<restaurant>/<date>/...) when that restaurant exists.';
comment on column public.calls.call_date is 'When the call happened; history is ordered by it, newest first.';
comment on column public.calls.order_items is 'JSON array of ordered items, e.g. {"item","quantity","price","notes"}.';
comment on column public.calls.total_price is 'Display text as the dashboard sends it, e.g. "PKR 1,500".';
comment on column public.calls.call_duration is 'Length of the call in seconds.';
comment on column public.calls.transcript is 'JSON array of turns, e.g. {"speaker","text","timestamp"}.';
comment on column public.calls.metadata is 'Free-form JSON object for the integrator.';
comment on column public.calls.explicit_audio_url is
  'An audio URL the client gave (save / update-audio). Used as audio_url while the call has no live recording in a watched bucket.';
comment on column public.calls.audio_url is
  'Read-only. URL of the newest live recording of this call, else explicit_audio_url, else null. Maintained by the database.';

-- History: per restaurant, newest first (keyset pagination on call_date, id).
create index calls_restaurant_id_call_date_idx on public.calls (restaurant_id, call_date desc, id desc);
create index calls_call_date_idx on public.calls (call_date desc, id desc);
-- Search by customer name or phone number (ILIKE '%…%').
create index calls_customer_name_trgm_idx on public.calls using gin (customer_name extensions.gin_trgm_ops);
create index calls_phone_number_trgm_idx on public.calls using gin (phone_number extensions.gin_trgm_ops);

create function call_recordings.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
revoke execute on function call_recordings.touch_updated_at() from public;
comment on function call_recordings.touch_updated_at() is 'Sets updated_at on every update.';

create trigger calls_touch_updated_at
  before update on public.calls
  for each row execute function call_recordings.touch_updated_at();

alter table public.calls enable row level security;

create policy "Members can read their restaurants' calls"
  on public.calls for select to authenticated
  using (restaurant_id in (select m.restaurant_id from public.restaurant_members m
                           where m.user_id = (select auth.uid())));

create policy "Members can add calls to their restaurants"
  on public.calls for insert to authenticated
  with check (restaurant_id in (select m.restaurant_id from public.restaurant_members m
                                where m.user_id = (select auth.uid())));

create policy "Members can update their restaurants' calls"
  on public.calls for update to authenticated
  using (restaurant_id in (select m.restaurant_id from public.restaurant_members m
                           where m.user_id = (select auth.uid())))
  with check (restaurant_id in (select m.restaurant_id from public.restaurant_members m
                                where m.user_id = (select auth.uid())));

-- Privileges: audio_url, id, call_sid (after insert) and timestamps are the database's to write.
revoke all on public.calls from anon, authenticated, service_role;
grant select on public.calls to authenticated, service_role;
grant insert (call_sid, restaurant_id, call_date, customer_name, phone_number, delivery_address,
              order_items, special_instructions, payment_method, delivery_time, total_price,
              call_duration, transcript, metadata, explicit_audio_url)
  on public.calls to authenticated, service_role;
grant update (restaurant_id, call_date, customer_name, phone_number, delivery_address,
              order_items, special_instructions, payment_method, delivery_time, total_price,
              call_duration, transcript, metadata, explicit_audio_url)
  on public.calls to authenticated, service_role;
grant delete on public.calls to service_role;

-- Frontends subscribe to changes instead of polling for audio_url.
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime' and not puballtables) then
    alter publication supabase_realtime add table public.calls;
  end if;
end
$$;
