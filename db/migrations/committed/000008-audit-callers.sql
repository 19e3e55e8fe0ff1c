--! Previous: sha1:f5cd7ad4b2c0689655b7b21639c252b2e1f480c9
--! Hash: sha1:f0fa6682ea0495d1a477ff964ac1cac89f7d7c5a
--! Message: audit callers

--! split: 001-with-caller.sql
-- The calling process on every row of a change made through the mount (issue #4).
-- The mount knows uid, gid and pid per FUSE operation, but most change functions take at
-- most a uid, and none a pid. Rather than a new parameter on every function (new signatures,
-- overloads, every call site), the caller travels as transaction-local settings, the same
-- tarbox.uid/gid/pid that tarbox_private.audit already prefers over its arguments (the CLI
-- sends them once per connection). with_caller wraps one argument of the change call, so the
-- settings are made in the same statement, before the function runs (PostgreSQL evaluates
-- arguments before the call): no extra statement, no extra round trip. Outside a transaction
-- block a statement is its own transaction, so the settings end with it.
create function tarbox.with_caller(p_value anyelement, p_uid integer, p_gid integer, p_pid integer)
returns anyelement
language plpgsql volatile as $$
begin
  perform set_config('tarbox.uid', coalesce(p_uid::text, ''), true),
          set_config('tarbox.gid', coalesce(p_gid::text, ''), true),
          set_config('tarbox.pid', coalesce(p_pid::text, ''), true);
  return p_value;
end
$$;
comment on function tarbox.with_caller is 'Returns p_value unchanged, and makes p_uid/p_gid/p_pid the caller of every audit row written in the rest of the transaction (a single statement outside a transaction block). Wrap an argument of a change call: select tarbox.unlink(tarbox.with_caller(path, uid, gid, pid)).';

--! split: 002-lookups-at-level-all.sql
-- Lookups and listings through SQL at level "all" (issue #4): one row per API call, like
-- reads (000003). Two rules keep this off the hot paths:
-- * the level is a column of the tenant row each function already holds: at "writes" (the
--   default) the cost is one comparison, and no function changes at all for the mount's
--   lookups (tarbox.lookup is not logged: it is the mount's function, SQL callers ask with
--   getattr or stat);
-- * sessions of a mount (tarbox.interface = 'fuse') are not logged here even at "all": the
--   kernel's lookups, readlinks and xattr probes (security.capability before every write)
--   would make one row each; the mount logs one row per open handle instead.
-- A lookup made inside another API call (ls calls getattr, readdir and readlink) belongs to
-- that call's row: only the outermost tarbox function of the statement logs.
-- The functions become volatile because they may write that row.

create function tarbox_private.audit_query(p_tenant tarbox_private.tenants, p_operation text, p_path bytea,
  p_ino bigint, p_detail text default null)
returns void
language plpgsql volatile as $$
declare
  v_context text;
begin
  if current_setting('tarbox.interface', true) is not distinct from 'fuse' then
    return;
  end if;
  get diagnostics v_context = pg_context;
  if regexp_count(v_context, '^PL/pgSQL function tarbox\.', 1, 'n') > 1 then
    return;
  end if;
  perform tarbox_private.audit(p_tenant, p_operation, p_path, p_ino, p_detail => p_detail);
end
$$;
comment on function tarbox_private.audit_query is 'Log a lookup or listing of a SQL caller at level all (callers check the level first): one row per outermost API call, none for mount sessions.';

create or replace function tarbox.getattr(p_path bytea) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  if v_tenant.audit_level = 'all' then
    perform tarbox_private.audit_query(v_tenant, 'getattr', p_path, v_inode.ino);
  end if;
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

-- readdir logs its listing row in 000009, which rewrote it as one paged query.

create or replace function tarbox.readlink(p_path bytea) returns bytea
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  if not tarbox_private.is_lnk(v_inode.mode) then
    perform tarbox_private.fail('TBINV', format('not a symbolic link: %s', tarbox_private.path_text(p_path)));
  end if;
  if v_tenant.audit_level = 'all' then
    perform tarbox_private.audit_query(v_tenant, 'readlink', p_path, v_inode.ino);
  end if;
  return v_inode.target;
end
$$;

create or replace function tarbox.getxattr(p_path bytea, p_name text) returns bytea
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
  v_value bytea;
begin
  perform tarbox_private.check_xattr_name(p_name);
  v_value := tarbox_private.find_xattr(v_tenant, v_inode.ino, p_name);
  if v_value is null then
    perform tarbox_private.fail('TBNOD', format('no such xattr: %s', p_name));
  end if;
  if v_tenant.audit_level = 'all' then
    perform tarbox_private.audit_query(v_tenant, 'getxattr', p_path, v_inode.ino, p_name);
  end if;
  return v_value;
end
$$;

create or replace function tarbox.listxattr(p_path bytea) returns setof text
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
  v_names bigint;
begin
  return query
    select v.name from (
      select distinct on (x.name) x.name, x.value
        from tarbox_private.xattrs x
       where x.tenant_id = v_tenant.tenant_id and x.ino = v_inode.ino
         and x.layer_id = any (v_tenant.layer_chain)
       order by x.name, x.layer_id desc) v
     where v.value is not null
     order by v.name;
  if v_tenant.audit_level = 'all' then
    get diagnostics v_names = row_count;
    perform tarbox_private.audit_query(v_tenant, 'listxattr', p_path, v_inode.ino, format('names=%s', v_names));
  end if;
end
$$;

-- ls and stat are one question each: one row (readdir or getattr) for the whole call; the
-- getattr, readdir and readlink calls they make are nested and log nothing.
create or replace function tarbox.ls(p_path text default '/')
returns table (name text, kind text, mode integer, size bigint, uid integer, gid integer,
               nlink integer, mtime timestamptz, target text)
language plpgsql volatile as $$
declare
  v_path bytea := convert_to(p_path, 'UTF8');
  v_attr tarbox.attr := tarbox.getattr(v_path);
  v_tenant tarbox_private.tenants;
  v_entries bigint;
begin
  if (v_attr.mode & 61440) = 16384 then
    return query
      select tarbox_private.name_text(d.name), tarbox_private.kind_name((d.attr).mode),
             (d.attr).mode & 4095, (d.attr).size, (d.attr).uid, (d.attr).gid, (d.attr).nlink,
             tarbox_private.ns_time((d.attr).mtime_sec, (d.attr).mtime_nsec),
             case when ((d.attr).mode & 61440) = 40960
                  then tarbox_private.name_text(tarbox.readlink(
                         case when v_path = '\x2f'::bytea then v_path else v_path || '\x2f'::bytea end || d.name))
             end
        from tarbox.readdir(v_path) d;
  else
    return query
      select regexp_replace(p_path, '^.*/', ''), tarbox_private.kind_name(v_attr.mode), v_attr.mode & 4095,
             v_attr.size, v_attr.uid, v_attr.gid, v_attr.nlink,
             tarbox_private.ns_time(v_attr.mtime_sec, v_attr.mtime_nsec),
             case when (v_attr.mode & 61440) = 40960 then tarbox_private.name_text(tarbox.readlink(v_path)) end;
  end if;
  v_tenant := tarbox_private.current_tenant();
  if v_tenant.audit_level = 'all' then
    get diagnostics v_entries = row_count;
    perform tarbox_private.audit_query(v_tenant, case when (v_attr.mode & 61440) = 16384 then 'readdir' else 'getattr' end,
              v_path, v_attr.ino, format('ls, entries=%s', v_entries));
  end if;
end
$$;

create or replace function tarbox.stat(p_path text)
returns table (path text, ino bigint, kind text, mode integer, nlink integer, uid integer, gid integer,
               size bigint, blocks bigint, atime timestamptz, mtime timestamptz, ctime timestamptz, target text)
language plpgsql volatile as $$
declare
  v_attr tarbox.attr := tarbox.getattr(convert_to(p_path, 'UTF8'));
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  if v_tenant.audit_level = 'all' then
    perform tarbox_private.audit_query(v_tenant, 'getattr', convert_to(p_path, 'UTF8'), v_attr.ino, 'stat');
  end if;
  return query select p_path, v_attr.ino, tarbox_private.kind_name(v_attr.mode), v_attr.mode & 4095,
    v_attr.nlink, v_attr.uid, v_attr.gid, v_attr.size, v_attr.blocks,
    tarbox_private.ns_time(v_attr.atime_sec, v_attr.atime_nsec),
    tarbox_private.ns_time(v_attr.mtime_sec, v_attr.mtime_nsec),
    tarbox_private.ns_time(v_attr.ctime_sec, v_attr.ctime_nsec),
    case when (v_attr.mode & 61440) = 40960
         then tarbox_private.name_text(tarbox.readlink(convert_to(p_path, 'UTF8'))) end;
end
$$;

--! split: 003-failures-of-sql-callers.sql
-- Failed operations of SQL callers, with their errno (issue #4). A failing statement rolls
-- back with its transaction, and PostgreSQL has no autonomous transactions; the one sound
-- way to keep a row of a failure from inside the failing transaction is to write it through
-- another connection: dblink, which ships with PostgreSQL's contrib (and the embedded
-- server). Where dblink cannot be installed (it needs a superuser once) or connect, nothing
-- changes: failures of SQL callers are not logged and every error stays exactly as it was.
--
-- * Where: tarbox_private.fail, the one place Tarbox's own errors are raised, logs before it
--   raises. Errors PostgreSQL raises itself (privileges, bad input syntax, timeouts) are not
--   logged. The row names the primitive function that failed (the innermost tarbox function:
--   write_file's create, remove's getattr), as change rows do.
-- * Who: sessions of SQL callers. The mount and the CLI log their own failures (with the
--   caller's pid): an admin session that says it is one (tarbox.interface fuse or cli) is
--   skipped; a tenant's own login is always logged, whatever it claims.
-- * No forgery, no deletion: the row is written by a login role of its own whose password
--   only the owner can read, through a security definer function that takes the tenant from
--   the session's login, not from the caller (a tenant can log failures of its own tenant
--   only, as tarbox.log_operation already lets it). Nothing gains update or delete.
-- * No row for a change that rolled back: a failure changed nothing; rows of changes are
--   still written only in the change's own transaction.

create schema tarbox_dblink;
comment on schema tarbox_dblink is 'dblink, for the audit rows of failed operations (owner only: tenants must not open connections from the server).';
revoke all on schema tarbox_dblink from public;

-- The login that writes failure rows, and its password (readable by the owner only).
create table tarbox_private.audit_failure_writer (
  singleton boolean primary key default true constraint audit_failure_writer_singleton check (singleton),
  role_name text not null,
  password text not null
);
comment on table tarbox_private.audit_failure_writer is 'The login role through which failures of SQL callers are logged (dblink), and its password. Owner only.';
revoke all on tarbox_private.audit_failure_writer from public, tarbox_tenants;

do $$
declare
  v_role text := 'tarbox_audit_' || substr(md5(gen_random_uuid()::text), 1, 8);
  v_password text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  create extension if not exists dblink schema tarbox_dblink;
  execute format('create role %I login password %L', v_role, v_password);
  insert into tarbox_private.audit_failure_writer (role_name, password) values (v_role, v_password);
exception when others then
  -- no dblink, or not allowed to install it or to create roles: failures of SQL callers are
  -- not logged (docs/audit.md); everything else works as before
  raise notice 'tarbox: failures of SQL callers will not be logged: %', sqlerrm;
end
$$;

-- Written by the writer's connection: one failure row, as it was given. A procedure, as
-- dblink_exec refuses a statement that returns a row.
create procedure tarbox_private.record_failure(p_tenant_id bigint, p_layer_id bigint, p_operation text,
  p_path text, p_errno integer, p_uid integer, p_gid integer, p_pid integer, p_node text, p_interface text,
  p_detail text)
language sql security definer set search_path = pg_catalog, tarbox_private as $$
  insert into tarbox_private.audit_events (tenant_id, layer_id, operation, path, ino, errno, uid, gid, pid,
    node, interface, detail)
  values (p_tenant_id, p_layer_id, p_operation, p_path, null, p_errno, p_uid, p_gid, p_pid, p_node, p_interface,
    p_detail)
$$;
revoke execute on procedure tarbox_private.record_failure from public, tarbox_tenants;
do $$
begin
  execute format('grant usage on schema tarbox_private to %I', (select role_name from tarbox_private.audit_failure_writer));
  execute format('grant execute on procedure tarbox_private.record_failure to %I', (select role_name from tarbox_private.audit_failure_writer));
exception when others then
  null; -- no writer (see above)
end
$$;

-- A libpq connection string value, quoted.
create function tarbox_private.conninfo_value(p_value text) returns text
language sql immutable strict parallel safe as $$
  select '''' || replace(replace(p_value, '\', '\\'), '''', '\''') || ''''
$$;

-- Sends one failure row through the writer's connection. The tenant comes from the session's
-- login: a tenant's own role logs into its own tenant whatever it passes; only an admin
-- login (the owner, or a superuser) may name the tenant (its session setting).
create function tarbox_private.send_failure(p_tenant_id bigint, p_layer_id bigint, p_operation text,
  p_path text, p_errno integer, p_uid integer, p_gid integer, p_pid integer, p_node text, p_interface text,
  p_detail text)
returns void
language plpgsql volatile security definer set search_path = pg_catalog, tarbox_private, tarbox_dblink as $$
declare
  v_writer tarbox_private.audit_failure_writer;
  v_tenant_id bigint;
  v_layer_id bigint;
  v_host text := coalesce(host(inet_server_addr()), nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), 'localhost');
  v_call text;
begin
  select * into v_writer from tarbox_private.audit_failure_writer;
  if v_writer.role_name is null then
    return;
  end if;
  select r.tenant_id into v_tenant_id from tarbox_private.tenant_roles r where r.role_name = session_user;
  if v_tenant_id is null then
    if not pg_has_role(session_user, (select nspowner from pg_namespace where nspname = 'tarbox_private'), 'member') then
      return;
    end if;
    v_tenant_id := p_tenant_id;
  end if;
  v_layer_id := case when v_tenant_id = p_tenant_id then p_layer_id end;
  v_call := format('call tarbox_private.record_failure(%s, %s, %L, %L, %s, %s, %s, %s, %L, %L, %L)',
    v_tenant_id, coalesce(v_layer_id::text, 'null'), p_operation, p_path, coalesce(p_errno::text, 'null'),
    coalesce(p_uid::text, 'null'), coalesce(p_gid::text, 'null'), coalesce(p_pid::text, 'null'),
    p_node, p_interface, p_detail);
  -- The connection stays open for the rest of the session: opening one costs a backend start
  -- and a SCRAM exchange (tens of ms under load), a row on an open one well under a ms.
  -- One retry on a fresh connection if the kept one was lost.
  for v_attempt in 1..2 loop
    begin
      if not coalesce('tarbox_audit_writer' = any (dblink_get_connections()), false) then
        perform dblink_connect('tarbox_audit_writer',
          format('host=%s port=%s dbname=%s user=%s password=%s application_name=tarbox-audit-writer connect_timeout=5 options=%s',
                 tarbox_private.conninfo_value(v_host), current_setting('port'), tarbox_private.conninfo_value(current_database()),
                 tarbox_private.conninfo_value(v_writer.role_name), tarbox_private.conninfo_value(v_writer.password),
                 tarbox_private.conninfo_value('-c lock_timeout=2000 -c statement_timeout=5000')));
      end if;
      perform dblink_exec('tarbox_audit_writer', v_call);
      return;
    exception when others then
      if v_attempt = 2 then
        raise;
      end if;
      begin
        perform dblink_disconnect('tarbox_audit_writer');
      exception when others then
        null;
      end;
    end;
  end loop;
end
$$;
comment on function tarbox_private.send_failure is 'Log a failure row through a connection of its own (dblink as the audit writer role, kept open for the session), so that it outlives the failing transaction. The tenant is the session login''s.';

-- The operation a failing API function performs, as audit rows name it.
create function tarbox_private.operation_of_function(p_function text) returns text
language sql immutable parallel safe as $$
  select case p_function
    when 'create_and_stat_dir' then 'create' when 'unlink_and_stat_dir' then 'unlink'
    when 'write_ino' then 'write' when 'append_ino' then 'write' when 'commit_blocks' then 'write'
    when 'truncate_ino' then 'truncate' when 'read_ino' then 'read' when 'getattr_ino' then 'getattr'
    when 'lookup' then 'getattr' when 'stat' then 'getattr' when 'ls' then 'readdir'
    when 'create_layer' then 'layer_create' when 'switch_layer' then 'layer_switch'
    when 'delete_layer' then 'layer_delete' when 'write_file' then 'write' when 'make_directory' then 'mkdir'
    when 'remove' then 'unlink'
    else p_function end
$$;

-- The errno of a Tarbox SQLSTATE (docs/sql-api.md; shim/errors.ts maps the same).
create function tarbox_private.errno_of(p_sqlstate text) returns integer
language sql immutable parallel safe as $$
  select case p_sqlstate when 'TBNOE' then 2 when 'TBEXI' then 17 when 'TBNDR' then 20 when 'TBISD' then 21
    when 'TBNEM' then 39 when 'TBINV' then 22 when 'TBNTL' then 36 when 'TBFBG' then 27 when 'TBPRM' then 1
    when 'TBACC' then 13 when 'TBNOD' then 61 when 'TBRNG' then 34 when 'TBLOP' then 40 when 'TBXDV' then 18
    when 'TBBSY' then 16 when 'TBNSP' then 95 when 'TBBIG' then 7 when 'TBROF' then 30 when 'TBQTA' then 122
    when 'TBNSC' then 28 else 5 end
$$;

-- Decides whether a failure about to be raised is logged, and logs it. Never changes the
-- error: anything going wrong here is swallowed (a subtransaction, on failure paths only).
create function tarbox_private.log_sql_failure(p_sqlstate text, p_message text) returns void
language plpgsql volatile as $$
declare
  v_context text;
  v_function text;
  v_operation text;
  v_tenant tarbox_private.tenants;
begin
  if p_sqlstate in ('TBNTS', 'TBTNT')   -- no tenant to log into
     or (current_setting('tarbox.interface', true) in ('fuse', 'cli')
         and not exists (select 1 from tarbox_private.tenant_roles where role_name = session_user)) then
    return;   -- the mount and the CLI log their own failures, with the caller's pid
  end if;
  get diagnostics v_context = pg_context;
  if regexp_count(v_context, '^PL/pgSQL function tarbox_private\.log_sql_failure\(', 1, 'n') > 1 then
    return;   -- a failure while logging a failure
  end if;
  -- The innermost API function on the stack is the primitive that failed (write_file's
  -- create), except a lookup made inside another API function (remove's or write_file's
  -- look before they act): that failure is the caller's (remove: unlink, write_file: write).
  select f.name into v_function
    from regexp_matches(v_context, '^PL/pgSQL function tarbox\."?([a-z_]+)"?\(', 'gn') with ordinality as m(match, depth)
   cross join lateral (select m.match[1] as name) f
   order by f.name in ('lookup', 'getattr'), m.depth
   limit 1;
  if v_function is null then
    return;   -- not raised by an API function
  end if;
  v_operation := tarbox_private.operation_of_function(v_function);
  -- a missing name asked about is an answer, not a refusal (as on the mount)
  if (v_operation, p_sqlstate) in (('getattr', 'TBNOE'), ('getxattr', 'TBNOD'), ('readlink', 'TBINV')) then
    return;
  end if;
  v_tenant := tarbox_private.current_tenant();
  if v_tenant.audit_level = 'off' or (v_tenant.audit_level = 'writes' and not tarbox_private.is_change(v_operation)) then
    return;
  end if;
  perform tarbox_private.send_failure(v_tenant.tenant_id, v_tenant.working_layer_id, v_operation,
    -- the path the error names (messages end with it, escape-encoded)
    tarbox_private.audit_path(decode((regexp_match(p_message, ': (/.*)$'))[1], 'escape')),
    tarbox_private.errno_of(p_sqlstate),
    tarbox_private.setting_int('tarbox.uid'), tarbox_private.setting_int('tarbox.gid'), tarbox_private.setting_int('tarbox.pid'),
    coalesce(nullif(current_setting('tarbox.node', true), ''), nullif(current_setting('application_name'), '')),
    coalesce(nullif(current_setting('tarbox.interface', true), ''), 'sql'),
    p_message);
exception when others then
  return;
end
$$;
comment on function tarbox_private.log_sql_failure is 'Log a failure of a SQL caller through the audit writer''s connection (it outlives the failing transaction): the innermost API function as the operation, the errno, the path the message names.';

-- Redefined (000001): they asked create and mkdir and caught EEXIST, which would now log a
-- failure that nobody saw. They look first; the handler stays for a name made concurrently
-- since the lookup (then that create or mkdir did fail, and its row says so).
create or replace function tarbox.write_file(p_path text, p_data bytea, p_mode integer default 420) returns bigint
language plpgsql volatile as $$
declare
  v_path bytea := convert_to(p_path, 'UTF8');
  v_exists boolean := exists (select 1 from tarbox.lookup(v_path));
begin
  if not v_exists then
    begin
      perform tarbox.create(v_path, p_mode);
    exception when sqlstate 'TBEXI' then
      v_exists := true;
    end;
  end if;
  if v_exists then
    perform tarbox.truncate(v_path, 0);
  end if;
  perform tarbox.write(v_path, 0, p_data);
  return octet_length(p_data);
end
$$;

create or replace function tarbox.make_directory(p_path text, p_parents boolean default false, p_mode integer default 493)
returns void
language plpgsql volatile as $$
declare
  v_prefix text := '';
  v_part text;
begin
  if not p_parents then
    perform tarbox.mkdir(convert_to(p_path, 'UTF8'), p_mode);
    return;
  end if;
  foreach v_part in array string_to_array(trim(both '/' from p_path), '/') loop
    continue when v_part = '';
    v_prefix := v_prefix || '/' || v_part;
    if not exists (select 1 from tarbox.lookup(convert_to(v_prefix, 'UTF8'))) then
      begin
        perform tarbox.mkdir(convert_to(v_prefix, 'UTF8'), p_mode);
        continue;
      exception when sqlstate 'TBEXI' then
        null;   -- made concurrently since the lookup
      end;
    end if;
    if not tarbox_private.is_dir((tarbox_private.resolve(tarbox_private.current_tenant(),
                                    convert_to(v_prefix, 'UTF8'), true)).mode) then
      perform tarbox_private.fail('TBNDR', format('not a directory: %s', v_prefix));
    end if;
  end loop;
end
$$;

-- Redefined (000001): logs the failure of a SQL caller, then raises as before. Volatile now
-- that it may write (it was immutable; every caller uses it in PERFORM).
create or replace function tarbox_private.fail(p_sqlstate text, p_message text) returns void
language plpgsql volatile as $$
begin
  perform tarbox_private.log_sql_failure(p_sqlstate, p_message);
  raise exception using errcode = p_sqlstate, message = p_message;
end
$$;
