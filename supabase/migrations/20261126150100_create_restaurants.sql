-- Restaurants and their members. A signed-in user sees a restaurant's calls and recordings only
-- while they are a member of it (RLS on calls and recordings reads restaurant_members).

create table public.restaurants (
  id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  name text not null default '' check (length(name) <= 200),
  created_at timestamptz not null default now()
);
comment on table public.restaurants is
  'A restaurant (tenant). id is the slug the dashboard sends as restaurant_id / backend and that dated recording paths carry (call-recordings/<id>/<date>/...).';

create table public.restaurant_members (
  restaurant_id text not null references public.restaurants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'staff' check (role in ('owner', 'staff')),
  created_at timestamptz not null default now(),
  primary key (restaurant_id, user_id)
);
comment on table public.restaurant_members is
  'Which users may see which restaurants'' calls. Managed by the service role.';
-- RLS policies look memberships up by user.
create index restaurant_members_user_id_idx on public.restaurant_members (user_id, restaurant_id);

alter table public.restaurants enable row level security;
alter table public.restaurant_members enable row level security;

create policy "Members can read their own memberships"
  on public.restaurant_members for select to authenticated
  using (user_id = (select auth.uid()));

create policy "Members can read their restaurants"
  on public.restaurants for select to authenticated
  using (id in (select m.restaurant_id from public.restaurant_members m
                where m.user_id = (select auth.uid())));

revoke all on public.restaurants, public.restaurant_members from anon, authenticated, service_role;
grant select on public.restaurants, public.restaurant_members to authenticated;
grant select, insert, update, delete on public.restaurants, public.restaurant_members to service_role;
