--! Previous: sha1:f0fa6682ea0495d1a477ff964ac1cac89f7d7c5a
--! Hash: sha1:7ec6337cd0291a5943c04ccf44aa756b56991590
--! Message: core metadata speed

-- Fewer statements per create and unlink (docs/performance.md, "Metadata speed"). Measured
-- with track_functions = all: a create ran ~25 SQL statements inside nested PL/pgSQL calls,
-- an unlink ~35, each costing its executor start, the row-level security InitPlan and a
-- PL/pgSQL frame (150-270 us per find_entry / find_inode under load). The semantics and the
-- audit rows are unchanged; what goes:
--
-- * create_and_stat_dir and unlink_and_stat_dir re-resolved the directory (current_tenant,
--   a walk from the root, find_inode) to return its attributes; the operation itself has
--   them in hand from touch_dir. The bodies of make_node and unlink moved into *_in
--   functions that take the tenant and return the directory too; the public functions wrap
--   them.
-- * tarbox.unlink walked the path twice (walk, then resolve walked it again).
-- * touch_dir was a SELECT ... FOR UPDATE and an UPDATE through two more functions; it is one
--   UPDATE ... RETURNING when the directory already has a working-layer row (always, after
--   the first change in a layer), and the old way (copy-up) otherwise.
-- * drop_inode looked for versions in frozen layers even when there are none, and deleted
--   blocks and xattrs in two statements.

--------------------------------------------------------------------------------------------
-- touch_dir: one statement in the common case

create or replace function tarbox_private.touch_dir(p_tenant tarbox_private.tenants, p_dir bigint, p_nlink_delta integer)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_now bigint := tarbox_private.now_ns();
  v_dir tarbox_private.inodes;
begin
  -- the row updated is locked as lock_inode would lock it
  update tarbox_private.inodes
     set mtime_ns = v_now, ctime_ns = v_now, nlink = nlink + p_nlink_delta
   where tenant_id = p_tenant.tenant_id and ino = p_dir and layer_id = p_tenant.working_layer_id
     and not deleted
  returning * into v_dir;
  if found then
    return v_dir;
  end if;
  -- no live working-layer row: copy it up from a frozen layer, or raise TBNOE
  v_dir := tarbox_private.lock_inode(p_tenant, p_dir);
  v_dir.mtime_ns := v_now;
  v_dir.ctime_ns := v_now;
  v_dir.nlink := v_dir.nlink + p_nlink_delta;
  perform tarbox_private.save_inode(v_dir);
  return v_dir;
end
$$;

--------------------------------------------------------------------------------------------
-- drop_inode: no look into frozen layers when the chain has none; one statement fewer

create or replace function tarbox_private.drop_inode(p_tenant tarbox_private.tenants, p_ino bigint) returns void
language plpgsql volatile as $$
declare
  v_hashes bytea[];
  v_in_frozen boolean := false;
begin
  -- blocks and xattrs in one statement (a data-modifying CTE runs whether read or not)
  with gone as (
    delete from tarbox_private.file_blocks
     where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id
    returning chunk_hash),
  gone_xattrs as (
    delete from tarbox_private.xattrs
     where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id)
  select array_agg(distinct chunk_hash) filter (where chunk_hash is not null) into v_hashes from gone;
  if cardinality(p_tenant.layer_chain) > 1 then
    select exists (select 1 from tarbox_private.inodes
                    where tenant_id = p_tenant.tenant_id and ino = p_ino
                      and layer_id = any (p_tenant.layer_chain[2:]))
      into v_in_frozen;
  end if;
  if v_in_frozen then
    update tarbox_private.inodes set deleted = true, nlink = 0
     where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id;
  else
    delete from tarbox_private.inodes
     where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id;
  end if;
  if v_hashes is not null then
    perform tarbox_private.release_chunks(p_tenant.tenant_id, v_hashes);
  end if;
end
$$;

--------------------------------------------------------------------------------------------
-- Creating a node: the body of make_node (000003), now returning the directory as well

create function tarbox_private.make_node_in(p_tenant tarbox_private.tenants, p_path bytea, p_mode integer,
  p_uid integer, p_gid integer, p_rdev integer, p_target bytea,
  out node tarbox_private.inodes, out dir tarbox_private.inodes)
language plpgsql volatile as $$
declare
  v_new record;
begin
  select * into v_new from tarbox_private.resolve_new(p_tenant, p_path);
  dir := tarbox_private.touch_dir(p_tenant, v_new.parent_ino,
           case when tarbox_private.is_dir(p_mode) then 1 else 0 end);
  node := tarbox_private.new_inode(p_tenant, dir, p_mode, p_uid, p_gid, p_rdev, p_target);
  perform tarbox_private.add_entry(p_tenant, v_new.parent_ino, v_new.name, node.ino,
            tarbox_private.kind_of(p_mode), p_path);
  perform tarbox_private.audit(p_tenant, tarbox_private.audit_operation_of(p_mode), p_path, node.ino,
            p_uid => p_uid, p_gid => p_gid, p_detail => tarbox_private.name_text(p_target));
end
$$;
comment on function tarbox_private.make_node_in is 'Create any kind of inode at a new path; returns it and its directory as changed.';

create or replace function tarbox_private.make_node(p_path bytea, p_mode integer, p_uid integer, p_gid integer,
  p_rdev integer, p_target bytea)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_made record;
begin
  select * into v_made from tarbox_private.make_node_in(v_tenant, p_path, p_mode, p_uid, p_gid, p_rdev, p_target);
  return tarbox_private.to_attr(v_made.node, v_tenant.block_size);
end
$$;

-- tarbox.create's mode, in one place for create and create_and_stat_dir
create function tarbox_private.regular_file_mode(p_mode integer) returns integer
language sql immutable strict parallel safe as $$
  select 32768 | (p_mode & 4095)
$$;

create or replace function tarbox.create(p_path bytea, p_mode integer default 420, p_uid integer default 0, p_gid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
begin
  return tarbox_private.make_node(p_path, tarbox_private.regular_file_mode(p_mode), p_uid, p_gid, 0, null);
end
$$;

-- Redefined (000004): the directory's attributes as the create left them, not re-resolved.
create or replace function tarbox.create_and_stat_dir(p_path bytea, p_mode integer default 420, p_uid integer default 0,
  p_gid integer default 0)
returns setof tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_made record;
begin
  select * into v_made from tarbox_private.make_node_in(v_tenant, p_path,
    tarbox_private.regular_file_mode(p_mode), p_uid, p_gid, 0, null);
  return next tarbox_private.to_attr(v_made.node, v_tenant.block_size);
  return next tarbox_private.to_attr(v_made.dir, v_tenant.block_size);
end
$$;

--------------------------------------------------------------------------------------------
-- Unlink: the body of tarbox.unlink (000003) with one walk instead of two, returning the
-- directory as changed

create function tarbox_private.unlink_in(p_tenant tarbox_private.tenants, p_path bytea, p_uid integer,
  p_keep_open boolean)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_walk record;
  v_inode tarbox_private.inodes;
  v_dir tarbox_private.inodes;
begin
  select * into v_walk from tarbox_private.walk(p_tenant, p_path, false);
  if v_walk.name is null then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  -- what resolve() would return, without walking the path again
  if v_walk.ino is not null then
    v_inode := tarbox_private.find_inode(p_tenant, v_walk.ino);
  end if;
  if v_inode.ino is null then
    perform tarbox_private.fail('TBNOE', format('no such file or directory: %s', tarbox_private.path_text(p_path)));
  end if;
  if tarbox_private.is_dir(v_inode.mode) then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.check_sticky(p_tenant, v_walk.parent_ino, v_inode, p_uid, p_path);
  v_dir := tarbox_private.touch_dir(p_tenant, v_walk.parent_ino, 0);
  perform tarbox_private.remove_entry(p_tenant, v_walk.parent_ino, v_walk.name);
  perform tarbox_private.drop_link(p_tenant, v_inode.ino, p_keep_open);
  perform tarbox_private.audit(p_tenant, 'unlink', p_path, v_inode.ino, p_uid => p_uid);
  return v_dir;
end
$$;
comment on function tarbox_private.unlink_in is 'unlink(2) for a tenant; returns the directory the name was in, as changed.';

create or replace function tarbox.unlink(p_path bytea, p_uid integer default 0, p_keep_open boolean default false) returns void
language plpgsql volatile as $$
begin
  perform tarbox_private.unlink_in(tarbox_private.current_tenant(), p_path, p_uid, p_keep_open);
end
$$;

-- Redefined (000004): the directory's attributes as the unlink left them, not re-resolved.
create or replace function tarbox.unlink_and_stat_dir(p_path bytea, p_uid integer default 0, p_keep_open boolean default false)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_dir tarbox_private.inodes := tarbox_private.unlink_in(v_tenant, p_path, p_uid, p_keep_open);
begin
  -- to_attr(unlink_in(...)) would not be inlined (a volatile argument): planned on every call
  return tarbox_private.to_attr(v_dir, v_tenant.block_size);
end
$$;

--------------------------------------------------------------------------------------------
-- walk (000001): the lookup of each component inline. Called as a function from here,
-- find_entry was a query running a function running a query (~150 us a call under load);
-- walk runs once per component of every path of every call. Otherwise unchanged.

create or replace function tarbox_private.walk(p_tenant tarbox_private.tenants, p_path bytea, p_follow_last boolean,
  out parent_ino bigint, out name bytea, out ino bigint, out kind smallint, out ancestors bigint[])
language plpgsql stable as $$
declare
  v_rest bytea := p_path;
  v_comp bytea;
  v_pos integer;
  v_stack bigint[] := array[p_tenant.root_ino];
  v_cur bigint := p_tenant.root_ino;
  v_entry record;
  v_links integer := 0;
  v_target bytea;
  v_last boolean;
  -- 'a/' names a directory: a symlink there is followed, anything else is ENOTDIR
  v_trailing boolean := octet_length(p_path) > 1 and get_byte(p_path, octet_length(p_path) - 1) = 47;
  v_follow_last boolean := p_follow_last or v_trailing;
begin
  if p_path is null or octet_length(p_path) = 0 or get_byte(p_path, 0) <> 47 then
    perform tarbox_private.fail('TBINV', format('path must be absolute: %s', coalesce(tarbox_private.path_text(p_path), 'null')));
  end if;
  if octet_length(p_path) > 4095 then
    perform tarbox_private.fail('TBNTL', 'path too long (more than 4095 bytes)');
  end if;
  parent_ino := p_tenant.root_ino; name := null; ino := p_tenant.root_ino; kind := 4;
  loop
    -- strip leading slashes
    while octet_length(v_rest) > 0 and get_byte(v_rest, 0) = 47 loop
      v_rest := substring(v_rest from 2);
    end loop;
    exit when octet_length(v_rest) = 0;
    v_pos := position('\x2f'::bytea in v_rest);
    if v_pos = 0 then
      v_comp := v_rest; v_rest := ''::bytea;
    else
      v_comp := substring(v_rest from 1 for v_pos - 1); v_rest := substring(v_rest from v_pos);
    end if;
    v_last := octet_length(ltrim(v_rest, '\x2f'::bytea)) = 0;
    if ino is null then
      -- a previous component did not exist
      perform tarbox_private.fail('TBNOE', format('no such file or directory: %s', tarbox_private.path_text(p_path)));
    end if;
    if kind <> 4 then
      perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_path)));
    end if;
    v_cur := ino;
    if v_comp = '\x2e'::bytea then
      parent_ino := coalesce(v_stack[array_length(v_stack, 1) - 1], p_tenant.root_ino);
      name := null;
      continue;
    elsif v_comp = '\x2e2e'::bytea then
      if array_length(v_stack, 1) > 1 then
        v_stack := v_stack[1:array_length(v_stack, 1) - 1];
      end if;
      ino := v_stack[array_length(v_stack, 1)];
      parent_ino := coalesce(v_stack[array_length(v_stack, 1) - 1], p_tenant.root_ino);
      kind := 4; name := null;
      continue;
    end if;
    perform tarbox_private.check_name(v_comp, p_path);
    -- find_entry's query
    select d.ino, d.kind into v_entry
      from tarbox_private.dentries d
     where d.tenant_id = p_tenant.tenant_id and d.parent_ino = v_cur and d.name = v_comp
       and d.layer_id = any (p_tenant.layer_chain)
     order by d.layer_id desc
     limit 1;
    parent_ino := v_cur; name := v_comp; ino := v_entry.ino; kind := v_entry.kind;
    if ino is not null and kind = 10 and (not v_last or v_follow_last) then
      v_links := v_links + 1;
      if v_links > 40 then
        perform tarbox_private.fail('TBLOP', format('too many levels of symbolic links: %s', tarbox_private.path_text(p_path)));
      end if;
      select i.target into v_target from tarbox_private.find_inode(p_tenant, ino) i;
      if get_byte(v_target, 0) = 47 then
        v_stack := array[p_tenant.root_ino];
      end if;
      v_rest := v_target || '\x2f'::bytea || v_rest;
      ino := v_stack[array_length(v_stack, 1)]; kind := 4;
      parent_ino := coalesce(v_stack[array_length(v_stack, 1) - 1], p_tenant.root_ino); name := null;
      continue;
    end if;
    if ino is not null and kind = 4 then
      v_stack := v_stack || ino;
    end if;
  end loop;
  if v_trailing and ino is not null and kind <> 4 then
    perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  ancestors := v_stack;
end
$$;

--------------------------------------------------------------------------------------------
-- readdir: one query, index probes by construction
--
-- 000001 called find_inode (a PL/pgSQL function, one query each) per entry. Its plan is
-- the session's: cached while the tables were small it can be a sequential scan, and then a
-- 10,000-entry listing costs 10,000 scans (one benchmark run hit the 10 s statement_timeout
-- right after the write workloads). The newest visible version of each inode now comes from
-- a LIMIT 1 subquery in primary-key order, which only an index scan can answer cheaply.
-- Optional keyset paging (p_after, p_limit) keeps each statement short for huge directories.

-- Volatile: at audit level "all" a SQL caller's listing is logged (000008), one row per page.
create function tarbox.readdir(p_path bytea, p_after bytea, p_limit integer) returns setof tarbox.dirent
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_dir tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
  v_entries bigint;
begin
  if not tarbox_private.is_dir(v_dir.mode) then
    perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  if p_limit is not null and p_limit < 1 then
    perform tarbox_private.fail('TBINV', format('readdir: the page size must be positive, not %s', p_limit));
  end if;
  return query
    select e.name, tarbox_private.to_attr(i, v_tenant.block_size)
      from (select distinct on (d.name) d.name, d.ino
              from tarbox_private.dentries d
             where d.tenant_id = v_tenant.tenant_id and d.parent_ino = v_dir.ino
               and d.layer_id = any (v_tenant.layer_chain)
               and (p_after is null or d.name > p_after)
             order by d.name, d.layer_id desc) e
      cross join lateral (
        select v.* from tarbox_private.inodes v
         where v.tenant_id = v_tenant.tenant_id and v.ino = e.ino and v.layer_id = any (v_tenant.layer_chain)
         order by v.layer_id desc
         limit 1) i
     where e.ino is not null and not i.deleted
     order by e.name
     limit p_limit;
  if v_tenant.audit_level = 'all' then
    get diagnostics v_entries = row_count;
    perform tarbox_private.audit_query(v_tenant, 'readdir', p_path, v_dir.ino, format('entries=%s', v_entries));
  end if;
end
$$;
comment on function tarbox.readdir(bytea, bytea, integer) is 'readdir(3) plus attributes, a page at a time: at most p_limit live entries named after p_after (null: from the start; null limit: all), sorted by name.';

-- the one-page form of 000001, same signature and answer
create or replace function tarbox.readdir(p_path bytea) returns setof tarbox.dirent
language sql volatile as $$
  select * from tarbox.readdir(p_path, null, null)
$$;
