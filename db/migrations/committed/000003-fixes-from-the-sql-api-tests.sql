--! Previous: sha1:8362f940ed04335760840edc56c7c147ae79749a
--! Hash: sha1:410c33a91676889a9498112a08be44a8027392f7
--! Message: fixes from the SQL API tests

--! split: 1-current.sql
-- Fixes found by the SQL API test suite (test/db), forward from 000001/000002:
--  * put_blocks released nothing when any block of a write became a hole (NULL in
--    "= any" made the whole test NULL): replaced chunks leaked.
--  * a zero-length write extended the file and touched its times (POSIX: no effect).
--  * O_TRUNC on an empty file did not update mtime/ctime.
--  * rename of a directory onto itself raised EINVAL (POSIX: do nothing); RENAME_NOREPLACE
--    onto another name of the same inode did nothing (Linux: EEXIST).
--  * times before 1970 came back with negative nanoseconds (truncating division).
--  * a trailing slash was ignored: '/file/' must be ENOTDIR, '/link-to-dir/' the directory.
--  * make_directory with parents refused a symlink to a directory (mkdir -p accepts it).
--  * Linux conformance: PATH_MAX (4096) counts the NUL, so paths are at most 4095 bytes;
--    getxattr of an unsupported namespace is EOPNOTSUPP; a bad tenant block size is EINVAL.


create or replace function tarbox_private.put_blocks(p_tenant tarbox_private.tenants, p_ino bigint,
  p_block_nos bigint[], p_hashes bytea[])
returns void
language plpgsql volatile as $$
declare
  v_old bytea[];
begin
  select array_agg(b.chunk_hash) into v_old
    from tarbox_private.file_blocks b
   where b.tenant_id = p_tenant.tenant_id and b.ino = p_ino
     and b.layer_id = p_tenant.working_layer_id and b.block_no = any (p_block_nos)
     and b.chunk_hash is not null and b.chunk_hash <> all (array_remove(p_hashes, null));
  insert into tarbox_private.file_blocks (tenant_id, ino, block_no, layer_id, chunk_hash)
  select p_tenant.tenant_id, p_ino, n.block_no, p_tenant.working_layer_id, n.chunk_hash
    from unnest(p_block_nos, p_hashes) as n (block_no, chunk_hash)
  on conflict (tenant_id, ino, block_no, layer_id) do update set chunk_hash = excluded.chunk_hash;
  if v_old is not null then
    perform tarbox_private.release_chunks(p_tenant.tenant_id, v_old);
  end if;
end
$$;

create or replace function tarbox_private.write_bytes(p_tenant tarbox_private.tenants, p_inode tarbox_private.inodes,
  p_offset bigint, p_data bytea, p_uid integer)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_bs integer := p_tenant.block_size;
  v_len integer := octet_length(p_data);
  v_end bigint := p_offset + octet_length(p_data);
  v_block bigint;
  v_block_start bigint;
  v_from integer;
  v_to integer;
  v_old bytea;
  v_new bytea;
  v_keep integer;
  v_nos bigint[] := '{}';
  v_hashes bytea[] := '{}';
  v_now bigint := tarbox_private.now_ns();
begin
  perform tarbox_private.require_regular(p_inode);
  if p_offset < 0 then
    perform tarbox_private.fail('TBINV', 'negative offset');
  end if;
  if v_len = 0 then
    return p_inode;  -- a write of nothing changes nothing
  end if;
  if v_end > p_tenant.max_file_size then
    perform tarbox_private.fail('TBFBG', format('file too large: %s bytes is over the limit of %s', v_end, p_tenant.max_file_size));
  end if;
  if v_len > 0 then
    for v_block in (p_offset / v_bs) .. ((v_end - 1) / v_bs) loop
      v_block_start := v_block * v_bs;
      v_from := greatest(p_offset - v_block_start, 0)::integer;           -- first byte written in this block
      v_to := least(v_end - v_block_start, v_bs)::integer;                -- end of the written range
      -- existing bytes of this block that lie inside the current file size
      v_keep := least(greatest(p_inode.size - v_block_start, 0), v_bs)::integer;
      if v_keep > 0 and (v_from > 0 or v_to < v_keep) then
        v_old := coalesce(tarbox_private.block_data(p_tenant, p_inode.ino, v_block), ''::bytea);
        v_old := substring(v_old from 1 for v_keep);
      else
        v_old := ''::bytea;
      end if;
      if octet_length(v_old) < v_from then
        v_old := v_old || tarbox_private.zeros(v_from - octet_length(v_old));
      end if;
      v_new := substring(v_old from 1 for v_from)
            || substring(p_data from (v_block_start + v_from - p_offset + 1)::integer for v_to - v_from)
            || substring(v_old from v_to + 1);
      v_nos := v_nos || v_block;
      v_hashes := v_hashes || case when tarbox_private.is_zero(v_new) then null
                                   else tarbox_private.store_chunk(p_tenant, v_new) end;
    end loop;
    perform tarbox_private.put_blocks(p_tenant, p_inode.ino, v_nos, v_hashes);
  end if;
  p_inode.size := greatest(p_inode.size, v_end);
  p_inode.mtime_ns := v_now;
  p_inode.ctime_ns := v_now;
  if p_uid <> 0 then
    p_inode.mode := tarbox_private.kill_priv(p_inode.mode);
  end if;
  return p_inode;
end
$$;

create or replace function tarbox.open(p_path bytea, p_flags integer default 0, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
begin
  if tarbox_private.is_dir(v_inode.mode) and (p_flags & 3) <> 0 then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  -- O_TRUNC (01000) with write access
  if (p_flags & 512) <> 0 and (p_flags & 3) <> 0 and tarbox_private.is_reg(v_inode.mode) then
    v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
    v_inode := tarbox_private.truncate_bytes(v_tenant, v_inode, 0, p_uid);
    perform tarbox_private.save_inode(v_inode);
  end if;
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.rename(p_from bytea, p_to bytea, p_flags integer default 0, p_uid integer default 0)
returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_src record;
  v_dst record;
  v_source tarbox_private.inodes;
  v_target tarbox_private.inodes;
  v_source_is_dir boolean;
begin
  if p_flags not in (0, 1) then
    perform tarbox_private.fail('TBINV', 'rename: only RENAME_NOREPLACE (1) is supported');
  end if;
  select * into v_src from tarbox_private.walk(v_tenant, p_from, false);
  select * into v_dst from tarbox_private.walk(v_tenant, p_to, false);
  if v_src.name is null or v_dst.name is null then
    perform tarbox_private.fail(case when v_src.ino = v_tenant.root_ino or v_dst.ino = v_tenant.root_ino
                                     then 'TBBSY' else 'TBINV' end,
      format('rename: cannot rename %s to %s', tarbox_private.path_text(p_from), tarbox_private.path_text(p_to)));
  end if;
  v_source := tarbox_private.resolve(v_tenant, p_from, false);
  v_source_is_dir := tarbox_private.is_dir(v_source.mode);
  if v_dst.ino is not null and p_flags = 1 then
    perform tarbox_private.fail('TBEXI', format('file exists: %s', tarbox_private.path_text(p_to)));
  end if;
  if v_dst.ino = v_source.ino then
    return;  -- both names refer to the same inode: POSIX says do nothing
  end if;
  -- a directory cannot move into its own subtree
  if v_source_is_dir and v_source.ino = any (v_dst.ancestors) then
    perform tarbox_private.fail('TBINV', format('rename: cannot move %s into itself (%s)',
      tarbox_private.path_text(p_from), tarbox_private.path_text(p_to)));
  end if;
  if v_dst.ino is not null then
    v_target := tarbox_private.require_inode(v_tenant, v_dst.ino);
    if v_source_is_dir and not tarbox_private.is_dir(v_target.mode) then
      perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_to)));
    elsif not v_source_is_dir and tarbox_private.is_dir(v_target.mode) then
      perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_to)));
    end if;
    perform tarbox_private.check_sticky(v_tenant, v_dst.parent_ino, v_target, p_uid, p_to);
  end if;
  perform tarbox_private.check_sticky(v_tenant, v_src.parent_ino, v_source, p_uid, p_from);
  -- lock both parents in inode order so concurrent renames cannot deadlock
  if v_src.parent_ino = v_dst.parent_ino then
    perform tarbox_private.touch_dir(v_tenant, v_src.parent_ino, 0);
  elsif v_src.parent_ino < v_dst.parent_ino then
    perform tarbox_private.touch_dir(v_tenant, v_src.parent_ino, case when v_source_is_dir then -1 else 0 end);
    perform tarbox_private.touch_dir(v_tenant, v_dst.parent_ino, case when v_source_is_dir then 1 else 0 end);
  else
    perform tarbox_private.touch_dir(v_tenant, v_dst.parent_ino, case when v_source_is_dir then 1 else 0 end);
    perform tarbox_private.touch_dir(v_tenant, v_src.parent_ino, case when v_source_is_dir then -1 else 0 end);
  end if;
  if v_target.ino is not null then
    if v_source_is_dir then
      perform tarbox_private.lock_inode(v_tenant, v_target.ino);
      if not tarbox_private.dir_is_empty(v_tenant, v_target.ino) then
        perform tarbox_private.fail('TBNEM', format('directory not empty: %s', tarbox_private.path_text(p_to)));
      end if;
      -- the replaced directory's '..' no longer counts in the destination parent
      perform tarbox_private.touch_dir(v_tenant, v_dst.parent_ino, -1);
      perform tarbox_private.drop_inode(v_tenant, v_target.ino);
    else
      perform tarbox_private.drop_link(v_tenant, v_target.ino);
    end if;
  end if;
  perform tarbox_private.remove_entry(v_tenant, v_src.parent_ino, v_src.name);
  perform tarbox_private.put_entry(v_tenant, v_dst.parent_ino, v_dst.name, v_source.ino,
            tarbox_private.kind_of(v_source.mode));
  v_source := tarbox_private.lock_inode(v_tenant, v_source.ino);
  v_source.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_source);
end
$$;

-- Seconds rounded down and nanoseconds in 0..999999999, also before 1970 (timespec).
create function tarbox_private.ns_fraction(p_ns bigint) returns integer
language sql immutable strict parallel safe as $$
  select (((p_ns % 1000000000) + 1000000000) % 1000000000)::integer
$$;

create function tarbox_private.ns_seconds(p_ns bigint) returns bigint
language sql immutable strict parallel safe as $$
  select (p_ns - tarbox_private.ns_fraction(p_ns)) / 1000000000
$$;


create or replace function tarbox_private.to_attr(p_inode tarbox_private.inodes, p_block_size integer)
returns tarbox.attr
language sql immutable parallel safe as $$
  select row(
    p_inode.ino, p_inode.mode, p_inode.nlink, p_inode.uid, p_inode.gid, p_inode.rdev,
    p_inode.size, (p_inode.size + 511) / 512, p_block_size,
    tarbox_private.ns_seconds(p_inode.atime_ns), tarbox_private.ns_fraction(p_inode.atime_ns),
    tarbox_private.ns_seconds(p_inode.mtime_ns), tarbox_private.ns_fraction(p_inode.mtime_ns),
    tarbox_private.ns_seconds(p_inode.ctime_ns), tarbox_private.ns_fraction(p_inode.ctime_ns)
  )::tarbox.attr
$$;

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
    select e.ino, e.kind into v_entry from tarbox_private.find_entry(p_tenant, v_cur, v_comp) e;
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
    begin
      perform tarbox.mkdir(convert_to(v_prefix, 'UTF8'), p_mode);
    exception when sqlstate 'TBEXI' then
      if not tarbox_private.is_dir((tarbox_private.resolve(tarbox_private.current_tenant(),
                                      convert_to(v_prefix, 'UTF8'), true)).mode) then
        perform tarbox_private.fail('TBNDR', format('not a directory: %s', v_prefix));
      end if;
    end;
  end loop;
end
$$;

create or replace function tarbox.getxattr(p_path bytea, p_name text) returns bytea
language plpgsql stable as $$
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
  return v_value;
end
$$;

create or replace function tarbox.create_tenant(p_name text, p_display_name text default null,
  p_block_size integer default 1048576)
returns tarbox.tenant_info
language plpgsql volatile as $$
declare
  v_tenant_id bigint;
  v_layer bigint := nextval('tarbox_private.layer_numbers');
  v_root bigint := nextval('tarbox_private.inode_numbers');
  v_now bigint := tarbox_private.now_ns();
begin
  if p_name is null or p_name !~ '^[a-z0-9][a-z0-9_-]{0,62}$' then
    perform tarbox_private.fail('TBINV', format('invalid tenant name %L: use 1-63 characters a-z, 0-9, _ and -, starting with a letter or digit', p_name));
  end if;
  if p_block_size is null or p_block_size < 4096 or p_block_size > 8388608 or (p_block_size & (p_block_size - 1)) <> 0 then
    perform tarbox_private.fail('TBINV', format('invalid block size %s: a power of two from 4096 to 8388608', p_block_size));
  end if;
  if exists (select 1 from tarbox_private.tenants where name = p_name) then
    perform tarbox_private.fail('TBEXI', format('tenant already exists: %s', p_name));
  end if;
  insert into tarbox_private.tenants (name, display_name, block_size, root_ino, working_layer_id, layer_chain)
  values (p_name, p_display_name, p_block_size, v_root, v_layer, array[v_layer])
  returning tenant_id into v_tenant_id;
  insert into tarbox_private.layers (tenant_id, layer_id, parent_layer_id, message)
  values (v_tenant_id, v_layer, null, 'initial layer');
  insert into tarbox_private.inodes (tenant_id, ino, layer_id, mode, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns)
  values (v_tenant_id, v_root, v_layer, 16384 | 493, 2, 0, 0, v_now, v_now, v_now);
  return (select t from tarbox.list_tenants() t where t.tenant_id = v_tenant_id);
end
$$;
