--! Previous: sha1:71b19799d06778a25f3947606fac9072e536c4af
--! Hash: sha1:7e9b693eab265424004ee2de4258c8bfeee8a4d9
--! Message: native mounts

-- Native mounts defined per tenant at runtime (tarbox native add). The config file's
-- [[native_mounts]] apply to every tenant and are not stored; the shim merges both when it
-- mounts (docs/native-mounts.md). A definition is only data: the shim checks it again and does
-- every host operation itself, with containment checks, so nothing here touches the host.
-- Adding or removing one reaches the tenant's mounts at once (the NOTIFY trigger below).
create table tarbox_private.native_mounts (
  tenant_id bigint not null references tarbox_private.tenants on delete cascade,
  path text not null,
  priority integer not null default 0
    constraint native_mounts_priority_range check (priority between -1000000 and 1000000),
  source text not null,
  mode text not null default 'ro' constraint native_mounts_mode check (mode in ('ro', 'rw')),
  shared boolean not null default false,
  created_at timestamptz not null default now(),
  primary key (tenant_id, path, priority)
);
comment on table tarbox_private.native_mounts is 'Per-tenant native mounts: a path of the tenant''s tree served from a host directory.';

-- Every mount of the tenant reloads its native mounts. The channel is the one mounts already
-- listen on for "something every mount of this tenant must forget" (shim/notifications.ts);
-- the payload is the tenant id only.
create function tarbox_private.tg_native_mounts__notify() returns trigger
language plpgsql volatile as $$
begin
  perform pg_notify('tarbox_layers', coalesce(new.tenant_id, old.tenant_id)::text);
  return null;
end
$$;
create trigger _500_notify after insert or update or delete on tarbox_private.native_mounts
  for each row execute function tarbox_private.tg_native_mounts__notify();

create type tarbox.native_mount as (
  path text,
  source text,
  mode text,
  shared boolean,
  priority integer,
  created_at timestamptz
);

-- The same rules as the config file's (shim/native-mounts.ts): absolute normalized paths, not
-- "/", not under /.tarbox; sources with placeholders only as whole components, and a source
-- without one written by every tenant only when shared. TBINV names the first broken rule.
create function tarbox_private.check_native_mount(p_path text, p_source text, p_mode text, p_shared boolean)
returns void
language plpgsql immutable as $$
declare
  v_normalized text := '^(/[^/]+)+$';
begin
  if p_path is null or p_path !~ v_normalized or p_path ~ '(^|/)\.\.?(/|$)' then
    perform tarbox_private.fail('TBINV', format('native mount path must be absolute and normalized, not "/": %L', p_path));
  end if;
  if p_path = '/.tarbox' or p_path like '/.tarbox/%' then
    perform tarbox_private.fail('TBINV', format('native mount path %L is inside the control directory /.tarbox', p_path));
  end if;
  if p_source is null or p_source !~ v_normalized or p_source ~ '(^|/)\.\.?(/|$)' then
    perform tarbox_private.fail('TBINV', format('native mount source must be an absolute normalized host path, not "/": %L', p_source));
  end if;
  if p_source ~ '\{' and regexp_replace(p_source, '/\{tenant(_id)?\}(?=/|$)', '/x', 'g') ~ '[{}]' then
    perform tarbox_private.fail('TBINV',
      format('native mount source may only use {tenant} and {tenant_id}, each as a whole path component: %L', p_source));
  end if;
  if p_mode is null or p_mode not in ('ro', 'rw') then
    perform tarbox_private.fail('TBINV', format('native mount mode must be ro or rw: %L', p_mode));
  end if;
  if p_mode = 'rw' and not coalesce(p_shared, false) and p_source !~ '\{tenant(_id)?\}' then
    perform tarbox_private.fail('TBINV', format(
      'every tenant would write the same directory %L: add {tenant} or {tenant_id}, or make it shared', p_source));
  end if;
end
$$;

create function tarbox.add_native_mount(p_path text, p_source text, p_mode text default 'ro',
  p_shared boolean default false, p_priority integer default 0)
returns tarbox.native_mount
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_row tarbox_private.native_mounts;
begin
  perform tarbox_private.check_native_mount(p_path, p_source, p_mode, p_shared);
  if p_priority is null or p_priority not between -1000000 and 1000000 then
    perform tarbox_private.fail('TBINV', format('native mount priority must be from -1000000 to 1000000: %s', p_priority));
  end if;
  insert into tarbox_private.native_mounts (tenant_id, path, priority, source, mode, shared)
  values (v_tenant.tenant_id, p_path, p_priority, p_source, p_mode, coalesce(p_shared, false))
  on conflict (tenant_id, path, priority) do nothing
  returning * into v_row;
  if v_row.tenant_id is null then
    perform tarbox_private.fail('TBEXI', format('a native mount of %s with priority %s exists', p_path, p_priority));
  end if;
  return (v_row.path, v_row.source, v_row.mode, v_row.shared, v_row.priority, v_row.created_at)::tarbox.native_mount;
end
$$;
comment on function tarbox.add_native_mount is 'Serve p_path of this tenant''s tree from the host directory p_source (ro or rw); mounted filesystems pick it up at once. TBINV bad definition, TBEXI same path and priority exists.';

create function tarbox.list_native_mounts() returns setof tarbox.native_mount
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select m.path, m.source, m.mode, m.shared, m.priority, m.created_at
      from tarbox_private.native_mounts m
     where m.tenant_id = v_tenant.tenant_id
     order by m.path, m.priority desc;
end
$$;
comment on function tarbox.list_native_mounts is 'This tenant''s own native mounts (the config file''s apply too, and are not listed here).';

create function tarbox.remove_native_mount(p_path text, p_priority integer default null) returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_count integer;
begin
  delete from tarbox_private.native_mounts m
   where m.tenant_id = v_tenant.tenant_id and m.path = p_path and (p_priority is null or m.priority = p_priority);
  get diagnostics v_count = row_count;
  if v_count = 0 then
    perform tarbox_private.fail('TBNOE', format('no native mount of %s%s', p_path,
      case when p_priority is null then '' else format(' with priority %s', p_priority) end));
  end if;
  return v_count;
end
$$;
comment on function tarbox.remove_native_mount is 'Remove this tenant''s native mount of p_path (every priority, or only p_priority); returns how many. TBNOE if none.';

-- A native mount exposes a host directory: defining one is an administrator's act, not an
-- agent's. Roles that agents use must not be granted these two.
revoke execute on function tarbox.add_native_mount(text, text, text, boolean, integer) from public;
revoke execute on function tarbox.remove_native_mount(text, integer) from public;
