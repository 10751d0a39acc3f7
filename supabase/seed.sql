-- Local demo data only (`npm start` on a fresh data folder, `supabase db reset`). Never run in
-- production. Runs as postgres after the migrations; every statement is idempotent.

-- Restaurants: `demo` is the one `npm run demo` and the README examples use; `demo-other` lets
-- examples show that members of one restaurant do not see another's calls.
insert into public.restaurants (id, name) values
  ('demo', 'Demo Pizzeria'),
  ('demo-other', 'Other Demo Restaurant')
on conflict (id) do nothing;

-- A demo user who is a member (owner) of `demo`, for examples that act as a signed-in user (a
-- session JWT with sub = this id). Optional: skipped with a notice where postgres may not write
-- auth.users (the local platform model grants it only select) or where the row would not fit.
do $$
declare
  demo_user constant uuid := '00000000-0000-4000-8000-00000000de30';
begin
  insert into auth.users (id, email, role)
  values (demo_user, 'demo@example.com', 'authenticated')
  on conflict (id) do nothing;

  -- On a real Supabase database, the columns Supabase Auth reads for an email user.
  if exists (select 1 from information_schema.columns
             where table_schema = 'auth' and table_name = 'users' and column_name = 'aud') then
    execute $sql$
      update auth.users set
        instance_id = coalesce(instance_id, '00000000-0000-0000-0000-000000000000'),
        aud = coalesce(aud, 'authenticated'),
        raw_app_meta_data = coalesce(raw_app_meta_data, '{"provider": "email", "providers": ["email"]}'),
        raw_user_meta_data = coalesce(raw_user_meta_data, '{}'),
        email_confirmed_at = coalesce(email_confirmed_at, now()),
        created_at = coalesce(created_at, now()),
        updated_at = coalesce(updated_at, now())
      where id = $1
    $sql$ using demo_user;
  end if;

  insert into public.restaurant_members (restaurant_id, user_id, role)
  values ('demo', demo_user, 'owner')
  on conflict do nothing;
exception
  when insufficient_privilege or undefined_table or undefined_column or not_null_violation
       or unique_violation or check_violation then
    raise notice 'seed: demo user skipped (%: %)', sqlstate, sqlerrm;
end
$$;
