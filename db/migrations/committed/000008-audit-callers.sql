--! Previous: sha1:f5cd7ad4b2c0689655b7b21639c252b2e1f480c9
--! Hash: sha1:d52f30be3235bfb0665780dc6d9e0bad9b5a2269
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

create or replace function tarbox.readdir(p_path bytea) returns setof tarbox.dirent
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_dir tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
  v_entries bigint;
begin
  if not tarbox_private.is_dir(v_dir.mode) then
    perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  return query
    select e.name, tarbox_private.to_attr(i, v_tenant.block_size)
      from (select distinct on (d.name) d.name, d.ino
              from tarbox_private.dentries d
             where d.tenant_id = v_tenant.tenant_id and d.parent_ino = v_dir.ino
               and d.layer_id = any (v_tenant.layer_chain)
             order by d.name, d.layer_id desc) e
      cross join lateral tarbox_private.find_inode(v_tenant, e.ino) i
     where e.ino is not null and i.ino is not null
     order by e.name;
  if v_tenant.audit_level = 'all' then
    get diagnostics v_entries = row_count;
    perform tarbox_private.audit_query(v_tenant, 'readdir', p_path, v_dir.ino, format('entries=%s', v_entries));
  end if;
end
$$;

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
