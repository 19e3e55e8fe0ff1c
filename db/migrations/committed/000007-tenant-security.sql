--! Previous: sha1:aee6e4d57c7a6be0ce0b5c699da8e9f444d5f4d1
--! Hash: sha1:f5cd7ad4b2c0689655b7b21639c252b2e1f480c9
--! Message: tenant security

-- Tenant isolation that holds for agents speaking SQL (docs/security.md).
--
-- * Every tenant has a PostgreSQL login role, a member of the nologin group role
--   tarbox_tenants. tarbox_private.tenant_roles maps role -> tenant; a mapped role's tenant
--   comes from that table, never from a setting the agent can change. The admin (the
--   owner of the tables) keeps binding a tenant with tarbox.use_tenant / tarbox.tenant_id.
-- * Row-level security on every table in tarbox_private with a tenant_id column, through
--   one function, tarbox_private.secure_table(); later migrations call it for new tables.
--   The owner is exempt (RLS is enabled, not forced), so the CLI and maintenance work as before.
-- * Tenant roles may execute the public API, nothing that acts across tenants.
-- * Optional per-tenant quotas on stored bytes and inodes (TBQTA, EDQUOT on the mount).

--------------------------------------------------------------------------------------------
-- Roles and the role -> tenant map

do $$
begin
  -- Roles are cluster-wide: another database of the cluster may have created it already.
  if not exists (select 1 from pg_roles where rolname = 'tarbox_tenants') then
    create role tarbox_tenants nologin;
  end if;
end
$$;

create table tarbox_private.tenant_roles (
  tenant_id bigint not null references tarbox_private.tenants on delete cascade,
  role_name name not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, role_name)
);
-- current_tenant() looks a session's role up on every call: index-only by role name.
create unique index tenant_roles_by_role on tarbox_private.tenant_roles (role_name) include (tenant_id);
comment on table tarbox_private.tenant_roles is 'PostgreSQL login roles of each tenant: a session of such a role works on that tenant only.';

create table tarbox_private.tenant_quotas (
  tenant_id bigint primary key references tarbox_private.tenants on delete cascade,
  max_bytes bigint check (max_bytes >= 0),
  max_inodes bigint check (max_inodes >= 0)
);
comment on table tarbox_private.tenant_quotas is 'Optional limits: stored chunk bytes (after dedup) and live inodes. null: no limit.';

-- The tenant of this session: the mapped tenant of current_user when there is one (a tenant
-- role cannot change it), else the tarbox.tenant_id setting (the admin's use_tenant). An
-- unmapped non-owner role (tarbox_tenants itself, after SET ROLE) may name any tenant here,
-- but row-level security then shows it no row, so current_tenant() raises TBNTS.
create function tarbox_private.session_tenant_id() returns bigint
language plpgsql stable as $$
declare
  v_tenant_id bigint;
begin
  select r.tenant_id into v_tenant_id from tarbox_private.tenant_roles r where r.role_name = current_user;
  if found then
    return v_tenant_id;
  end if;
  return nullif(current_setting('tarbox.tenant_id', true), '')::bigint;
end
$$;
comment on function tarbox_private.session_tenant_id is 'The tenant of this session: its role''s tenant, or for the admin the tarbox.tenant_id setting.';

-- Redefined (000001): the tenant now comes from session_tenant_id(). Same signature and lock.
create or replace function tarbox_private.current_tenant() returns tarbox_private.tenants
language plpgsql volatile as $$
declare
  v_tenant_id bigint := tarbox_private.session_tenant_id();
  v_tenant tarbox_private.tenants;
begin
  if v_tenant_id is not null then
    perform pg_advisory_xact_lock_shared(2003792482, v_tenant_id::integer);
    select * into v_tenant from tarbox_private.tenants where tenant_id = v_tenant_id;
  end if;
  if v_tenant.tenant_id is null then
    perform tarbox_private.fail('TBNTS', 'no tenant bound to this session: call tarbox.use_tenant(name) first');
  end if;
  return v_tenant;
end
$$;

-- Redefined (000002): lock the session's tenant as current_tenant() sees it, not the setting
-- (a tenant role's setting is meaningless and may name another tenant).
create or replace function tarbox_private.lock_tenant() returns tarbox_private.tenants
language plpgsql volatile as $$
begin
  perform pg_advisory_xact_lock(2003792482, tarbox_private.session_tenant_id()::integer);
  return tarbox_private.current_tenant();
end
$$;

--------------------------------------------------------------------------------------------
-- Row-level security, generically

-- The row filter of every tenant table: the mapped tenant of current_user, as a subquery
-- (an InitPlan, evaluated once per statement; a function call here would be planned or
-- called per statement too, at several times the cost). Unmapped roles see nothing. The
-- owner is not subject to it.
create function tarbox_private.tenant_filter() returns text
language sql immutable as $$
  select '(select r.tenant_id from tarbox_private.tenant_roles r where r.role_name = current_user)'
$$;

-- Every table holding tenant data goes through here, in this migration and in every later
-- one (docs/security.md): RLS on, a policy that limits rows to the session role's tenant for
-- reading and writing, and the privileges the public API needs (null: none, e.g. for a
-- partition, reached only through its parent).
create function tarbox_private.secure_table(p_table regclass,
  p_privileges text default 'select, insert, update, delete')
returns void
language plpgsql volatile as $$
begin
  execute format('alter table %s enable row level security', p_table);
  execute format('drop policy if exists tenant_isolation on %s', p_table);
  execute format('create policy tenant_isolation on %s using (tenant_id = %s) with check (tenant_id = %s)',
                 p_table, tarbox_private.tenant_filter(), tarbox_private.tenant_filter());
  execute format('revoke all on %s from public, tarbox_tenants', p_table);
  if p_privileges is not null then
    execute format('grant %s on %s to tarbox_tenants', p_privileges, p_table);
  end if;
end
$$;
comment on function tarbox_private.secure_table is 'Row-level security by tenant_id plus grants to tarbox_tenants. Every migration that adds a table with tenant data calls it.';

-- Every table of tarbox_private with a tenant_id, including those of migrations this one
-- cannot see. Append-only tables (the audit log) get select and insert only; the tenants
-- row can change only its layer pointers (layer switches); quotas are read-only.
do $$
declare
  v_table record;
begin
  for v_table in
    select c.oid::regclass as oid, c.relname, c.relispartition
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
     where n.nspname = 'tarbox_private' and c.relkind in ('r', 'p') and c.relname <> 'tenant_roles'
  loop
    perform tarbox_private.secure_table(v_table.oid,
      case when v_table.relispartition then null
           when v_table.relname = 'tenants' then 'select'
           when v_table.relname in ('tenant_quotas', 'audit_events') then
             case v_table.relname when 'tenant_quotas' then 'select' else 'select, insert' end
           else 'select, insert, update, delete' end);
  end loop;
end
$$;
grant update (working_layer_id, layer_chain) on tarbox_private.tenants to tarbox_tenants;

-- The map itself: a role sees its own row (session_tenant_id and the policies read it).
alter table tarbox_private.tenant_roles enable row level security;
create policy own_role on tarbox_private.tenant_roles using (role_name = current_user);
revoke all on tarbox_private.tenant_roles from public;
grant select on tarbox_private.tenant_roles to tarbox_tenants;

-- COPY FROM is refused on a table with row-level security, so the shim uploads chunks
-- through this view: its INSTEAD OF trigger inserts each row into chunks, where the policy
-- checks the tenant like any insert. One trigger call per chunk (up to 8 MiB) costs
-- microseconds against milliseconds of data. A chunk a concurrent writer stored first is
-- skipped: an error raised in the middle of a COPY is lost by postgres.js (the stream never
-- finishes), so the upload must not raise for ordinary reasons (the quota is checked
-- before it, by tarbox.check_space).
create view tarbox_private.chunk_uploads with (security_invoker = true) as
  select c.tenant_id, c.hash, c.data from tarbox_private.chunks c where false;
comment on view tarbox_private.chunk_uploads is 'Write-only: COPY chunks here (binary); each row is inserted into chunks under the tenant policy.';

create function tarbox_private.tg_chunk_uploads__store() returns trigger
language plpgsql volatile as $$
begin
  insert into tarbox_private.chunks (tenant_id, hash, data) values (new.tenant_id, new.hash, new.data)
  on conflict do nothing;
  return new;
end
$$;
create trigger _500_store instead of insert on tarbox_private.chunk_uploads
  for each row execute function tarbox_private.tg_chunk_uploads__store();
revoke all on tarbox_private.chunk_uploads from public;
grant insert on tarbox_private.chunk_uploads to tarbox_tenants;

-- Views run with their owner's rights unless security_invoker is set: a view over tenant
-- tables would bypass row-level security. Set it on every view of both schemas.
do $$
declare
  v_view regclass;
begin
  for v_view in
    select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('tarbox', 'tarbox_private') and c.relkind = 'v'
  loop
    execute format('alter view %s set (security_invoker = true)', v_view);
  end loop;
end
$$;

grant usage on schema tarbox, tarbox_private to tarbox_tenants;
-- nextval for inode and layer numbers; no setval (that needs update)
grant usage on all sequences in schema tarbox_private to tarbox_tenants;

--------------------------------------------------------------------------------------------
-- Tenant roles

-- Role names are cluster-wide but tenants live in one database: a random suffix keeps two
-- databases (or a deleted and re-created tenant) from colliding. Login, no password: the
-- CLI sets one (tarbox tenant create/credentials), or pg_hba trusts local connections.
create function tarbox_private.create_tenant_role(p_tenant_id bigint, p_name text) returns name
language plpgsql volatile as $$
declare
  v_role name := format('tarbox_%s_%s', left(p_name, 40), substr(md5(random()::text || clock_timestamp()::text), 1, 8));
begin
  execute format('create role %I login in role tarbox_tenants', v_role);
  insert into tarbox_private.tenant_roles (tenant_id, role_name) values (p_tenant_id, v_role);
  return v_role;
end
$$;

create function tarbox_private.tg_tenants__create_role() returns trigger
language plpgsql volatile as $$
begin
  perform tarbox_private.create_tenant_role(new.tenant_id, new.name);
  return null;
end
$$;
-- A trigger rather than a new create_tenant(): every way of creating a tenant gets its role.
create trigger _100_create_role after insert on tarbox_private.tenants
  for each row execute function tarbox_private.tg_tenants__create_role();

-- Tenants that exist already get their role now.
select tarbox_private.create_tenant_role(t.tenant_id, t.name) from tarbox_private.tenants t;

create function tarbox.tenant_role(p_name text) returns name
language plpgsql stable as $$
declare
  v_role name;
begin
  select r.role_name into v_role from tarbox_private.tenant_roles r
   where r.tenant_id = tarbox.tenant_id(p_name) order by r.created_at, r.role_name limit 1;
  if v_role is null then
    perform tarbox_private.fail('TBTNT', format('tenant %s has no role', p_name));
  end if;
  return v_role;
end
$$;
comment on function tarbox.tenant_role is 'The login role of a tenant (mounts run as it). Admin only.';

-- p_password may be a SCRAM-SHA-256 verifier (the CLI sends one, so the password itself
-- never reaches the server or its logs).
create function tarbox.set_tenant_password(p_name text, p_password text) returns name
language plpgsql volatile as $$
declare
  v_role name := tarbox.tenant_role(p_name);
begin
  execute format('alter role %I password %L', v_role, p_password);
  return v_role;
end
$$;
comment on function tarbox.set_tenant_password is 'Set (or rotate) the password of a tenant''s login role; returns the role. Admin only.';

--------------------------------------------------------------------------------------------
-- Tenant delete: every table, the roles, refusing while in use

-- Sessions working on the tenant: logged in as one of its roles, or a mount (whose
-- application_name is tarbox-mount:<tenant id>; a mount logs in as the admin and sets the
-- tenant role, which pg_stat_activity does not show).
create function tarbox_private.tenant_sessions(p_tenant_id bigint) returns setof integer
language sql stable as $$
  select a.pid from pg_stat_activity a
   where a.datname = current_database() and a.pid <> pg_backend_pid()
     and (a.usename in (select r.role_name from tarbox_private.tenant_roles r where r.tenant_id = p_tenant_id)
          or a.application_name = 'tarbox-mount:' || p_tenant_id)
$$;

-- Delete the tenant's rows from every table with a tenant_id, whatever migration added it.
-- Foreign keys between those tables are unknown here: a table whose delete is blocked by a
-- reference is retried after the others.
create function tarbox_private.purge_tenant(p_tenant_id bigint, p_keep_audit boolean) returns void
language plpgsql volatile as $$
declare
  v_tables regclass[];
  v_left regclass[];
  v_table regclass;
  v_role name;
begin
  for v_role in select r.role_name from tarbox_private.tenant_roles r where r.tenant_id = p_tenant_id loop
    execute format('drop owned by %I', v_role);
    execute format('drop role %I', v_role);
  end loop;
  -- the audit log is append-only (000003): only maintenance, flagged for this transaction, deletes
  if not p_keep_audit then
    perform set_config('tarbox.audit_maintenance', 'on', true);
  end if;
  select array_agg(c.oid::regclass) into v_tables
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
   where n.nspname = 'tarbox_private' and c.relkind in ('r', 'p') and not c.relispartition
     and c.relname <> 'tenants' and not (p_keep_audit and c.relname = 'audit_events');
  loop
    v_left := '{}';
    foreach v_table in array coalesce(v_tables, '{}') loop
      begin
        execute format('delete from %s where tenant_id = $1', v_table) using p_tenant_id;
      exception when foreign_key_violation then
        v_left := v_left || v_table;
      end;
    end loop;
    exit when cardinality(v_left) = 0;
    if cardinality(v_left) = cardinality(v_tables) then
      perform tarbox_private.fail('23503', format('cannot delete tenant %s: rows of %s are still referenced', p_tenant_id, v_left));
    end if;
    v_tables := v_left;
  end loop;
  delete from tarbox_private.tenants where tenant_id = p_tenant_id;
  perform set_config('tarbox.audit_maintenance', 'off', true);
end
$$;

create function tarbox.delete_tenant(p_name text, p_keep_audit boolean, p_force boolean) returns void
language plpgsql volatile as $$
declare
  v_id bigint := tarbox.tenant_id(p_name);
  v_pids integer[];
begin
  -- wait for calls in flight, like a layer switch
  perform pg_advisory_xact_lock(2003792482, v_id::integer);
  select array_agg(s) into v_pids from tarbox_private.tenant_sessions(v_id) s;
  if v_pids is not null then
    if not p_force then
      perform tarbox_private.fail('TBBSY', format('tenant %s is in use by %s session(s) (a mount or a login of its role): unmount it first, or force', p_name, cardinality(v_pids)));
    end if;
    perform pg_terminate_backend(p, 5000) from unnest(v_pids) p;
  end if;
  -- kept audit history ends with the deletion itself (000003 logged it the same way)
  if p_keep_audit then
    perform tarbox_private.audit(t, 'tenant_delete', '\x2f'::bytea, t.root_ino, p_detail => p_name)
       from tarbox_private.tenants t where t.tenant_id = v_id;
  end if;
  perform tarbox_private.purge_tenant(v_id, p_keep_audit);
end
$$;
comment on function tarbox.delete_tenant(text, boolean, boolean) is 'Remove a tenant: rows of every tenant table (audit rows kept with p_keep_audit), its roles. TBBSY while a mount or a login of its role is connected, unless p_force (then they are terminated). Admin only.';

-- Redefined (000001): the generic delete (every table, roles), refusing while in use.
create or replace function tarbox.delete_tenant(p_name text) returns void
language sql volatile as $$
  select tarbox.delete_tenant(p_name, false, false)
$$;
comment on function tarbox.delete_tenant(text) is 'Remove a tenant with all its rows and roles (see delete_tenant(name, keep_audit, force)). Admin only.';

--------------------------------------------------------------------------------------------
-- Quotas

create function tarbox.set_quota(p_name text, p_max_bytes bigint, p_max_inodes bigint) returns void
language plpgsql volatile as $$
declare
  v_id bigint := tarbox.tenant_id(p_name);
begin
  if p_max_bytes < 0 or p_max_inodes < 0 then
    perform tarbox_private.fail('TBINV', 'quota limits must not be negative');
  end if;
  if p_max_bytes is null and p_max_inodes is null then
    delete from tarbox_private.tenant_quotas where tenant_id = v_id;
  else
    insert into tarbox_private.tenant_quotas (tenant_id, max_bytes, max_inodes) values (v_id, p_max_bytes, p_max_inodes)
    on conflict (tenant_id) do update set max_bytes = excluded.max_bytes, max_inodes = excluded.max_inodes;
  end if;
end
$$;
comment on function tarbox.set_quota is 'Limit a tenant''s stored bytes and live inodes (null: no limit; both null removes the quota). Admin only.';

-- Usage as list_tenants() reports it: live inode numbers, stored chunk bytes.
create function tarbox_private.used_inodes(p_tenant_id bigint) returns bigint
language sql stable as $$
  select count(distinct i.ino) from tarbox_private.inodes i where i.tenant_id = p_tenant_id and not i.deleted
$$;

create function tarbox_private.used_bytes(p_tenant_id bigint) returns bigint
language sql stable as $$
  select coalesce(sum(octet_length(c.data)), 0)::bigint from tarbox_private.chunks c where c.tenant_id = p_tenant_id
$$;

-- Statement-level: one probe of tenant_quotas per statement when no quota is set. Only
-- statements that add a new inode number count; copy-ups and whiteouts of existing inodes
-- (how a file is changed or deleted after a checkpoint) must keep working over the limit.
create function tarbox_private.tg_inodes__check_quota() returns trigger
language plpgsql volatile as $$
declare
  v_quota tarbox_private.tenant_quotas;
  v_used bigint;
begin
  -- the common case, before touching the transition table: no inode quota anywhere in view
  if not exists (select 1 from tarbox_private.tenant_quotas q where q.max_inodes is not null) then
    return null;
  end if;
  for v_quota in
    select q.* from tarbox_private.tenant_quotas q
     where q.max_inodes is not null and q.tenant_id in (select n.tenant_id from new_rows n)
  loop
    if exists (select 1 from new_rows n
                where n.tenant_id = v_quota.tenant_id and not n.deleted
                  and not exists (select 1 from tarbox_private.inodes i
                                   where i.tenant_id = n.tenant_id and i.ino = n.ino and i.layer_id <> n.layer_id)) then
      v_used := tarbox_private.used_inodes(v_quota.tenant_id);
      if v_used > v_quota.max_inodes then
        perform tarbox_private.fail('TBQTA', format('inode quota exceeded: %s inodes, the limit is %s', v_used, v_quota.max_inodes));
      end if;
    end if;
  end loop;
  return null;
end
$$;
create trigger _900_check_quota after insert on tarbox_private.inodes
  referencing new table as new_rows
  for each statement execute function tarbox_private.tg_inodes__check_quota();

-- Chunks carry up to 8 MiB each: no transition table (it would copy every byte); the
-- session's tenant is the one writing (RLS makes it so for tenant roles).
create function tarbox_private.tg_chunks__check_quota() returns trigger
language plpgsql volatile as $$
begin
  -- the same check the shim asks before a COPY, with nothing more to store
  perform tarbox.check_space(0);
  return null;
end
$$;
create trigger _900_check_quota after insert on tarbox_private.chunks
  for each statement execute function tarbox_private.tg_chunks__check_quota();

-- The shim asks before it COPYs new chunks (see chunk_uploads): one probe when no quota is set.
create function tarbox.check_space(p_bytes bigint) returns void
language plpgsql stable as $$
declare
  v_quota tarbox_private.tenant_quotas;
  v_used bigint;
begin
  select q.* into v_quota from tarbox_private.tenant_quotas q where q.tenant_id = tarbox_private.session_tenant_id();
  if v_quota.max_bytes is not null then
    v_used := tarbox_private.used_bytes(v_quota.tenant_id);
    if v_used + p_bytes > v_quota.max_bytes then
      perform tarbox_private.fail('TBQTA', format('byte quota exceeded: %s bytes stored, %s more asked, the limit is %s', v_used, p_bytes, v_quota.max_bytes));
    end if;
  end if;
end
$$;
comment on function tarbox.check_space is 'TBQTA when storing p_bytes more bytes of new chunks would exceed the tenant''s byte quota.';

create function tarbox.tenant_usage()
returns table (tenant_id bigint, name text, display_name text, created_at timestamptz,
               inodes bigint, bytes bigint, max_bytes bigint, max_inodes bigint, roles name[])
language sql stable as $$
  select t.tenant_id, t.name, t.display_name, t.created_at, t.inodes, t.bytes, q.max_bytes, q.max_inodes,
         array(select r.role_name from tarbox_private.tenant_roles r where r.tenant_id = t.tenant_id
                order by r.created_at, r.role_name)
    from tarbox.list_tenants() t
    left join tarbox_private.tenant_quotas q on q.tenant_id = t.tenant_id
   order by t.name
$$;
comment on function tarbox.tenant_usage is 'Every tenant with its usage, quota limits and roles. Admin only.';

--------------------------------------------------------------------------------------------
-- Who may call what

-- Functions are executable by the owner and tarbox_tenants only; maintenance (acting across
-- tenants or on their lifecycle) by the owner only. Functions of later migrations: the
-- default privileges below give them to tarbox_tenants; a maintenance function must revoke.
revoke execute on all functions in schema tarbox, tarbox_private from public;
grant execute on all functions in schema tarbox, tarbox_private to tarbox_tenants;
alter default privileges in schema tarbox, tarbox_private revoke execute on functions from public;
alter default privileges in schema tarbox, tarbox_private grant execute on functions to tarbox_tenants;

revoke execute on function
  tarbox.create_tenant(text, text, integer, bigint),
  tarbox.list_tenants(),
  tarbox.delete_tenant(text),
  tarbox.delete_tenant(text, boolean, boolean),
  tarbox.collect_orphans(),
  tarbox.tenant_role(text),
  tarbox.set_tenant_password(text, text),
  tarbox.set_quota(text, bigint, bigint),
  tarbox.tenant_usage(),
  tarbox_private.secure_table(regclass, text),
  tarbox_private.create_tenant_role(bigint, text),
  tarbox_private.purge_tenant(bigint, boolean),
  tarbox_private.tenant_sessions(bigint),
  -- an agent must not silence or reshape its own audit log (000003), nor expose host
  -- directories to itself (000005): the operator's CLI and the mount's admin connection do these
  tarbox.set_audit_level(text),
  tarbox.configure_audit(text, integer),
  tarbox.maintain_audit(timestamptz),
  tarbox.add_native_mount(text, text, text, boolean, integer),
  tarbox.remove_native_mount(text, integer)
from tarbox_tenants;
