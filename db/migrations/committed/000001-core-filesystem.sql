--! Previous: -
--! Hash: sha1:a59a492e7d2150a7cf8ef3cb6f83fbe72a80e3e2
--! Message: core filesystem

--! split: 001-schema.sql
-- Tarbox storage schema.
--
-- Two schemas: `tarbox` is the public API (functions, types, views); `tarbox_private`
-- holds the tables, which are not an interface. tenant_id leads every key so that
-- row-level security and distribution by tenant need no key changes.
--
-- Layers: every versioned row carries the layer that wrote it. A tenant's view is the
-- chain of layers from its working layer down to the root (tenants.layer_chain, newest
-- first); the visible version of a row is the one with the highest layer_id in the chain.
-- Deletions in a layer are whiteouts (dentries.ino null, inodes.deleted, blocks with a
-- null hash, xattrs with a null value). Layer ids come from one sequence, so a child is
-- always newer than its parent and "newest in chain" is simply max(layer_id).

drop schema if exists tarbox cascade;
drop schema if exists tarbox_private cascade;
create schema tarbox_private;
create schema tarbox;
comment on schema tarbox is 'Tarbox public API: one function per filesystem operation. Tables are private.';
comment on schema tarbox_private is 'Tarbox private tables and helpers: not an interface.';

create sequence tarbox_private.inode_numbers as bigint start with 2;
create sequence tarbox_private.layer_numbers as bigint start with 1;

create table tarbox_private.tenants (
  tenant_id bigint generated always as identity primary key,
  name text not null unique
    constraint tenants_name_format check (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  display_name text,
  block_size integer not null default 1048576
    constraint tenants_block_size_power_of_two
      check (block_size between 4096 and 8388608 and (block_size & (block_size - 1)) = 0),
  max_file_size bigint not null default 1099511627776 check (max_file_size > 0),
  root_ino bigint not null,
  working_layer_id bigint not null,
  -- working layer first, then its ancestors: the order in which rows shadow each other
  layer_chain bigint[] not null,
  created_at timestamptz not null default now()
);
comment on table tarbox_private.tenants is 'One row per tenant (agent): its root inode and current layer chain.';

create table tarbox_private.layers (
  tenant_id bigint not null references tarbox_private.tenants on delete cascade,
  layer_id bigint not null default nextval('tarbox_private.layer_numbers'),
  parent_layer_id bigint,
  message text,
  created_at timestamptz not null default now(),
  frozen_at timestamptz,
  primary key (tenant_id, layer_id),
  foreign key (tenant_id, parent_layer_id) references tarbox_private.layers (tenant_id, layer_id)
);
comment on table tarbox_private.layers is 'Checkpoint history. frozen_at is null only for a working layer; frozen layers never change.';

create table tarbox_private.inodes (
  tenant_id bigint not null,
  ino bigint not null,
  layer_id bigint not null,
  mode integer not null,
  nlink integer not null check (nlink >= 0),
  uid integer not null,
  gid integer not null,
  rdev integer not null default 0,
  size bigint not null default 0 check (size >= 0),
  atime_ns bigint not null,
  mtime_ns bigint not null,
  ctime_ns bigint not null,
  target bytea,
  deleted boolean not null default false,
  primary key (tenant_id, ino, layer_id)
);
comment on table tarbox_private.inodes is 'Inode versions by layer; times in nanoseconds since the epoch; target holds a symlink''s target.';

create table tarbox_private.dentries (
  tenant_id bigint not null,
  parent_ino bigint not null,
  name bytea not null,
  layer_id bigint not null,
  ino bigint,
  kind smallint,
  primary key (tenant_id, parent_ino, name, layer_id)
);
comment on table tarbox_private.dentries is 'Directory entries by layer. Names are bytes (no / or NUL, 1..255). ino null is a whiteout. kind is the S_IFMT nibble (mode >> 12), immutable per inode.';

create table tarbox_private.chunks (
  tenant_id bigint not null,
  hash bytea not null,
  data bytea not null,
  primary key (tenant_id, hash)
);
-- Chunks are hashed by the writer and rarely compress well: skip TOAST compression (pglz
-- would cost more CPU than the write path has).
alter table tarbox_private.chunks alter column data set storage external;
comment on table tarbox_private.chunks is 'Content-addressed file data: sha256(data) -> data, shared by every block of the tenant with that content.';

create table tarbox_private.file_blocks (
  tenant_id bigint not null,
  ino bigint not null,
  block_no bigint not null,
  layer_id bigint not null,
  chunk_hash bytea,
  primary key (tenant_id, ino, block_no, layer_id),
  foreign key (tenant_id, chunk_hash) references tarbox_private.chunks (tenant_id, hash)
);
create index file_blocks_by_chunk on tarbox_private.file_blocks (tenant_id, chunk_hash);
comment on table tarbox_private.file_blocks is 'Block map by layer: block block_no of inode ino holds chunk chunk_hash; a null hash is a hole (reads as zeros).';

create table tarbox_private.xattrs (
  tenant_id bigint not null,
  ino bigint not null,
  name text not null,
  layer_id bigint not null,
  value bytea,
  primary key (tenant_id, ino, name, layer_id)
);
comment on table tarbox_private.xattrs is 'Extended attributes by layer; a null value is a whiteout.';

-- Attributes as the shim and psql see them. Times are split into seconds and nanoseconds
-- because a bigint of nanoseconds does not fit a JavaScript number exactly.
create type tarbox.attr as (
  ino bigint,
  mode integer,
  nlink integer,
  uid integer,
  gid integer,
  rdev integer,
  size bigint,
  blocks bigint,
  blksize integer,
  atime_sec bigint,
  atime_nsec integer,
  mtime_sec bigint,
  mtime_nsec integer,
  ctime_sec bigint,
  ctime_nsec integer
);

create type tarbox.dirent as (
  name bytea,
  attr tarbox.attr
);

create type tarbox.tenant_info as (
  tenant_id bigint,
  name text,
  display_name text,
  created_at timestamptz,
  inodes bigint,
  bytes bigint
);

create type tarbox.statfs_info as (
  bsize integer,
  frsize integer,
  blocks bigint,
  bfree bigint,
  bavail bigint,
  files bigint,
  ffree bigint,
  favail bigint,
  namemax integer
);

--! split: 002-internals.sql
-- Private helpers shared by the public functions: session tenant, errors, path walking,
-- layered reads and copy-on-write writes. Nothing here is an interface.

-- Mode bits (octal in comments) used throughout.
--   S_IFMT 0170000 = 61440   S_IFDIR 0040000 = 16384   S_IFREG 0100000 = 32768
--   S_IFLNK 0120000 = 40960  S_IFIFO 0010000 = 4096    S_IFSOCK 0140000 = 49152
--   S_IFCHR 0020000 = 8192   S_IFBLK 0060000 = 24576
--   S_ISUID 04000 = 2048     S_ISGID 02000 = 1024      S_ISVTX 01000 = 512   S_IXGRP 010 = 8

create function tarbox_private.fail(p_sqlstate text, p_message text) returns void
language plpgsql immutable as $$
begin
  raise exception using errcode = p_sqlstate, message = p_message;
end
$$;
comment on function tarbox_private.fail is 'Raise p_message with a Tarbox SQLSTATE (docs/sql-api.md lists them with their errno).';

-- Paths are bytes; messages are text. escape-encoding keeps arbitrary bytes printable.
create function tarbox_private.path_text(p_path bytea) returns text
language sql immutable strict parallel safe as $$
  select encode(p_path, 'escape')
$$;

create function tarbox_private.now_ns() returns bigint
language sql volatile parallel safe as $$
  select (extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000
$$;

create function tarbox_private.kind_of(p_mode integer) returns smallint
language sql immutable strict parallel safe as $$
  select ((p_mode & 61440) >> 12)::smallint
$$;

create function tarbox_private.is_dir(p_mode integer) returns boolean
language sql immutable strict parallel safe as $$ select (p_mode & 61440) = 16384 $$;

create function tarbox_private.is_reg(p_mode integer) returns boolean
language sql immutable strict parallel safe as $$ select (p_mode & 61440) = 32768 $$;

create function tarbox_private.is_lnk(p_mode integer) returns boolean
language sql immutable strict parallel safe as $$ select (p_mode & 61440) = 40960 $$;

-- Seconds rounded down and nanoseconds in 0..999999999, also before 1970 (timespec).
create function tarbox_private.ns_fraction(p_ns bigint) returns integer
language sql immutable strict parallel safe as $$
  select (((p_ns % 1000000000) + 1000000000) % 1000000000)::integer
$$;

create function tarbox_private.ns_seconds(p_ns bigint) returns bigint
language sql immutable strict parallel safe as $$
  select (p_ns - tarbox_private.ns_fraction(p_ns)) / 1000000000
$$;

create function tarbox_private.to_attr(p_inode tarbox_private.inodes, p_block_size integer)
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

-- The tenant bound to this session (tarbox.tenant_id, set by tarbox.use_tenant or as a
-- connection parameter). Every public function starts here.
-- Every call holds a shared transaction-level advisory lock on its tenant; checkpoints,
-- switches and layer deletes take it exclusively (lock_tenant). So a write that read the
-- working layer cannot commit into a layer that was frozen or dropped meanwhile: layer
-- operations wait for calls in flight, and calls after them wait for them (about a
-- millisecond). The tenant row is read after the lock is granted. Key: (2003792482 'tarb',
-- tenant_id).
create function tarbox_private.current_tenant() returns tarbox_private.tenants
language plpgsql volatile as $$
declare
  v_tenant_id bigint := nullif(current_setting('tarbox.tenant_id', true), '')::bigint;
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

-- Newest visible directory entry for (parent, name); a whiteout yields ino null.
create function tarbox_private.find_entry(p_tenant tarbox_private.tenants, p_parent bigint, p_name bytea,
  out ino bigint, out kind smallint)
language plpgsql stable as $$
begin
  select d.ino, d.kind into ino, kind
    from tarbox_private.dentries d
   where d.tenant_id = p_tenant.tenant_id
     and d.parent_ino = p_parent
     and d.name = p_name
     and d.layer_id = any (p_tenant.layer_chain)
   order by d.layer_id desc
   limit 1;
end
$$;

-- Newest visible version of an inode, or null when it does not exist in this view.
create function tarbox_private.find_inode(p_tenant tarbox_private.tenants, p_ino bigint)
returns tarbox_private.inodes
language plpgsql stable as $$
declare
  v_inode tarbox_private.inodes;
begin
  select i.* into v_inode
    from tarbox_private.inodes i
   where i.tenant_id = p_tenant.tenant_id
     and i.ino = p_ino
     and i.layer_id = any (p_tenant.layer_chain)
   order by i.layer_id desc
   limit 1;
  if v_inode.deleted then
    return null;
  end if;
  return v_inode;
end
$$;

create function tarbox_private.require_inode(p_tenant tarbox_private.tenants, p_ino bigint)
returns tarbox_private.inodes
language plpgsql stable as $$
declare
  v_inode tarbox_private.inodes := tarbox_private.find_inode(p_tenant, p_ino);
begin
  if v_inode.ino is null then
    perform tarbox_private.fail('TBNOE', format('no such inode: %s', p_ino));
  end if;
  return v_inode;
end
$$;

-- Copy-on-write: make sure the working layer holds its own version of the inode, lock
-- it, and return it. Later updates go to that row only; frozen layers are never touched.
create function tarbox_private.lock_inode(p_tenant tarbox_private.tenants, p_ino bigint)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_inode tarbox_private.inodes;
begin
  select * into v_inode from tarbox_private.inodes
   where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id
     for update;
  if not found then
    v_inode := tarbox_private.find_inode(p_tenant, p_ino);
    if v_inode.ino is null then
      perform tarbox_private.fail('TBNOE', format('no such inode: %s', p_ino));
    end if;
    v_inode.layer_id := p_tenant.working_layer_id;
    insert into tarbox_private.inodes values (v_inode.*) on conflict do nothing;
    select * into v_inode from tarbox_private.inodes
     where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id
       for update;
  end if;
  if v_inode.deleted then
    perform tarbox_private.fail('TBNOE', format('no such inode: %s', p_ino));
  end if;
  return v_inode;
end
$$;

create function tarbox_private.save_inode(p_inode tarbox_private.inodes) returns void
language plpgsql volatile as $$
begin
  update tarbox_private.inodes
     set mode = p_inode.mode, nlink = p_inode.nlink, uid = p_inode.uid, gid = p_inode.gid,
         rdev = p_inode.rdev, size = p_inode.size, atime_ns = p_inode.atime_ns,
         mtime_ns = p_inode.mtime_ns, ctime_ns = p_inode.ctime_ns, target = p_inode.target
   where tenant_id = p_inode.tenant_id and ino = p_inode.ino and layer_id = p_inode.layer_id;
end
$$;

-- Does any frozen layer of the chain hold a row for this entry? Then removing it in the
-- working layer needs a whiteout rather than a plain delete.
create function tarbox_private.entry_in_frozen_layers(p_tenant tarbox_private.tenants, p_parent bigint, p_name bytea)
returns boolean
language plpgsql stable as $$
begin
  if cardinality(p_tenant.layer_chain) < 2 then
    return false;
  end if;
  return exists (
    select 1 from tarbox_private.dentries
     where tenant_id = p_tenant.tenant_id and parent_ino = p_parent and name = p_name
       and layer_id = any (p_tenant.layer_chain[2:]));
end
$$;

create function tarbox_private.put_entry(p_tenant tarbox_private.tenants, p_parent bigint, p_name bytea,
  p_ino bigint, p_kind smallint)
returns void
language plpgsql volatile as $$
begin
  insert into tarbox_private.dentries (tenant_id, parent_ino, name, layer_id, ino, kind)
  values (p_tenant.tenant_id, p_parent, p_name, p_tenant.working_layer_id, p_ino, p_kind)
  on conflict (tenant_id, parent_ino, name, layer_id)
  do update set ino = excluded.ino, kind = excluded.kind;
end
$$;

create function tarbox_private.remove_entry(p_tenant tarbox_private.tenants, p_parent bigint, p_name bytea)
returns void
language plpgsql volatile as $$
begin
  if tarbox_private.entry_in_frozen_layers(p_tenant, p_parent, p_name) then
    perform tarbox_private.put_entry(p_tenant, p_parent, p_name, null, null);
  else
    delete from tarbox_private.dentries
     where tenant_id = p_tenant.tenant_id and parent_ino = p_parent and name = p_name
       and layer_id = p_tenant.working_layer_id;
  end if;
end
$$;

create function tarbox_private.dir_is_empty(p_tenant tarbox_private.tenants, p_dir bigint)
returns boolean
language plpgsql stable as $$
begin
  return not exists (
    select 1 from (
      select distinct on (d.name) d.ino
        from tarbox_private.dentries d
       where d.tenant_id = p_tenant.tenant_id and d.parent_ino = p_dir
         and d.layer_id = any (p_tenant.layer_chain)
       order by d.name, d.layer_id desc) visible
     where visible.ino is not null);
end
$$;

-- Validate one path component.
create function tarbox_private.check_name(p_name bytea, p_path bytea) returns void
language plpgsql immutable as $$
begin
  if octet_length(p_name) > 255 then
    perform tarbox_private.fail('TBNTL', format('file name too long (%s bytes, at most 255): %s',
      octet_length(p_name), tarbox_private.path_text(p_path)));
  end if;
  if position('\x00'::bytea in p_name) > 0 then
    perform tarbox_private.fail('TBINV', 'file names cannot contain NUL bytes');
  end if;
end
$$;

-- Resolve a path. Returns the parent directory, the last component and, when it exists,
-- its inode and kind. Intermediate symlinks are followed (up to 40, then ELOOP); the last
-- component is followed only when p_follow_last. Paths from FUSE are already canonical;
-- paths from SQL may contain '.', '..', repeated slashes and symlinks.
create function tarbox_private.walk(p_tenant tarbox_private.tenants, p_path bytea, p_follow_last boolean,
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

-- Resolve a path that must exist.
create function tarbox_private.resolve(p_tenant tarbox_private.tenants, p_path bytea, p_follow_last boolean default false)
returns tarbox_private.inodes
language plpgsql stable as $$
declare
  v_walk record;
  v_inode tarbox_private.inodes;
begin
  select * into v_walk from tarbox_private.walk(p_tenant, p_path, p_follow_last);
  if v_walk.ino is not null then
    v_inode := tarbox_private.find_inode(p_tenant, v_walk.ino);
  end if;
  if v_inode.ino is null then
    perform tarbox_private.fail('TBNOE', format('no such file or directory: %s', tarbox_private.path_text(p_path)));
  end if;
  return v_inode;
end
$$;

-- Resolve the parent of a path that is about to be created: the parent must exist and be
-- a directory, the name must be new.
create function tarbox_private.resolve_new(p_tenant tarbox_private.tenants, p_path bytea,
  out parent_ino bigint, out name bytea)
language plpgsql stable as $$
declare
  v_walk record;
begin
  select * into v_walk from tarbox_private.walk(p_tenant, p_path, false);
  if v_walk.name is null then
    perform tarbox_private.fail('TBEXI', format('file exists: %s', tarbox_private.path_text(p_path)));
  end if;
  if v_walk.ino is not null then
    perform tarbox_private.fail('TBEXI', format('file exists: %s', tarbox_private.path_text(p_path)));
  end if;
  parent_ino := v_walk.parent_ino;
  name := v_walk.name;
end
$$;

-- A new inode in the working layer. New entries inherit the group of a setgid directory
-- (and directories inherit the setgid bit itself), as on Linux.
create function tarbox_private.new_inode(p_tenant tarbox_private.tenants, p_parent tarbox_private.inodes,
  p_mode integer, p_uid integer, p_gid integer, p_rdev integer, p_target bytea)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_now bigint := tarbox_private.now_ns();
  v_inode tarbox_private.inodes;
  v_mode integer := p_mode;
  v_gid integer := p_gid;
begin
  if (p_parent.mode & 1024) <> 0 then
    v_gid := p_parent.gid;
    if tarbox_private.is_dir(p_mode) then v_mode := v_mode | 1024; end if;
  end if;
  insert into tarbox_private.inodes
    (tenant_id, ino, layer_id, mode, nlink, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, target)
  values
    (p_tenant.tenant_id, nextval('tarbox_private.inode_numbers'), p_tenant.working_layer_id, v_mode,
     case when tarbox_private.is_dir(p_mode) then 2 else 1 end, p_uid, v_gid, p_rdev,
     coalesce(octet_length(p_target), 0), v_now, v_now, v_now, p_target)
  returning * into v_inode;
  return v_inode;
end
$$;

-- Adding or removing an entry changes the directory's mtime and ctime, and its link
-- count when the entry is a subdirectory (its '..').
create function tarbox_private.touch_dir(p_tenant tarbox_private.tenants, p_dir bigint, p_nlink_delta integer)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_dir tarbox_private.inodes := tarbox_private.lock_inode(p_tenant, p_dir);
  v_now bigint := tarbox_private.now_ns();
begin
  v_dir.mtime_ns := v_now;
  v_dir.ctime_ns := v_now;
  v_dir.nlink := v_dir.nlink + p_nlink_delta;
  perform tarbox_private.save_inode(v_dir);
  return v_dir;
end
$$;

-- Chunks nobody refers to any more are released at once. Rows locked by a concurrent
-- writer that is about to refer to them (its foreign-key check holds a key-share lock)
-- are skipped; the next release of that hash collects them.
create function tarbox_private.release_chunks(p_tenant_id bigint, p_hashes bytea[]) returns void
language plpgsql volatile as $$
begin
  delete from tarbox_private.chunks c
   where c.tenant_id = p_tenant_id
     and c.hash in (
       select k.hash from tarbox_private.chunks k
        where k.tenant_id = p_tenant_id and k.hash = any (p_hashes)
          and not exists (select 1 from tarbox_private.file_blocks b
                           where b.tenant_id = p_tenant_id and b.chunk_hash = k.hash)
          for update skip locked);
end
$$;

-- Forget an inode whose last link went away: its working-layer rows go, and a whiteout
-- hides older versions still held by frozen layers.
create function tarbox_private.drop_inode(p_tenant tarbox_private.tenants, p_ino bigint) returns void
language plpgsql volatile as $$
declare
  v_hashes bytea[];
  v_in_frozen boolean;
begin
  with gone as (
    delete from tarbox_private.file_blocks
     where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id
    returning chunk_hash)
  select array_agg(distinct chunk_hash) filter (where chunk_hash is not null) into v_hashes from gone;
  delete from tarbox_private.xattrs
   where tenant_id = p_tenant.tenant_id and ino = p_ino and layer_id = p_tenant.working_layer_id;
  select exists (select 1 from tarbox_private.inodes
                  where tenant_id = p_tenant.tenant_id and ino = p_ino
                    and layer_id = any (p_tenant.layer_chain[2:]))
    into v_in_frozen;
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

-- Clearing setuid/setgid on write, truncate and chown, as Linux does for callers without
-- CAP_FSETID (uid 0 keeps them on write). setgid without group-exec is mandatory locking,
-- not a privilege, and stays.
create function tarbox_private.kill_priv(p_mode integer) returns integer
language sql immutable strict parallel safe as $$
  select case when (p_mode & 8) <> 0 then p_mode & ~(2048 | 1024) else p_mode & ~2048 end
$$;

--! split: 003-data.sql
-- File data: block maps over content-addressed chunks.
--
-- A file is cut into blocks of the tenant's block_size. Block n holds the chunk whose
-- sha256 is file_blocks.chunk_hash; a chunk may be shorter than a block (the bytes after
-- it read as zeros), and a missing block or a null hash is a hole. The FUSE shim hashes
-- in Node and ships chunks with binary COPY (docs/architecture.md explains why); SQL
-- callers use tarbox.write/tarbox.read, which do the same work inside PostgreSQL.

create function tarbox_private.zeros(p_length integer) returns bytea
language sql immutable strict parallel safe as $$
  select decode(repeat('00', greatest(p_length, 0)), 'hex')
$$;

create function tarbox_private.is_zero(p_data bytea) returns boolean
language sql immutable strict parallel safe as $$
  select octet_length(ltrim(p_data, '\x00'::bytea)) = 0
$$;

-- The newest version of each block in [p_first, p_last], holes included (hash null).
create function tarbox_private.visible_blocks(p_tenant tarbox_private.tenants, p_ino bigint,
  p_first bigint, p_last bigint)
returns table (block_no bigint, chunk_hash bytea)
language plpgsql stable as $$
begin
  return query
    select distinct on (b.block_no) b.block_no, b.chunk_hash
      from tarbox_private.file_blocks b
     where b.tenant_id = p_tenant.tenant_id and b.ino = p_ino
       and b.block_no between p_first and p_last
       and b.layer_id = any (p_tenant.layer_chain)
     order by b.block_no, b.layer_id desc;
end
$$;

create function tarbox_private.block_data(p_tenant tarbox_private.tenants, p_ino bigint, p_block_no bigint)
returns bytea
language plpgsql stable as $$
declare
  v_hash bytea;
  v_data bytea;
begin
  select b.chunk_hash into v_hash
    from tarbox_private.file_blocks b
   where b.tenant_id = p_tenant.tenant_id and b.ino = p_ino and b.block_no = p_block_no
     and b.layer_id = any (p_tenant.layer_chain)
   order by b.layer_id desc
   limit 1;
  if v_hash is null then
    return null;
  end if;
  select c.data into v_data from tarbox_private.chunks c
   where c.tenant_id = p_tenant.tenant_id and c.hash = v_hash;
  return v_data;
end
$$;

create function tarbox_private.store_chunk(p_tenant tarbox_private.tenants, p_data bytea) returns bytea
language plpgsql volatile as $$
declare
  v_hash bytea := sha256(p_data);
begin
  insert into tarbox_private.chunks (tenant_id, hash, data)
  values (p_tenant.tenant_id, v_hash, p_data)
  on conflict do nothing;
  return v_hash;
end
$$;

-- Point blocks of the working layer at new chunks (null: hole) and release the chunks
-- they pointed at before, if nothing else refers to them.
create function tarbox_private.put_blocks(p_tenant tarbox_private.tenants, p_ino bigint,
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

create function tarbox_private.require_regular(p_inode tarbox_private.inodes) returns void
language plpgsql immutable as $$
begin
  if tarbox_private.is_dir(p_inode.mode) then
    perform tarbox_private.fail('TBISD', format('is a directory: inode %s', p_inode.ino));
  elsif not tarbox_private.is_reg(p_inode.mode) then
    perform tarbox_private.fail('TBINV', format('not a regular file: inode %s', p_inode.ino));
  end if;
end
$$;

-- Write p_data at p_offset into a locked inode; the caller saves the inode.
create function tarbox_private.write_bytes(p_tenant tarbox_private.tenants, p_inode tarbox_private.inodes,
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

-- Cut or extend a locked inode to p_size; the caller saves the inode.
create function tarbox_private.truncate_bytes(p_tenant tarbox_private.tenants, p_inode tarbox_private.inodes,
  p_size bigint, p_uid integer)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_bs integer := p_tenant.block_size;
  v_first_gone bigint := (p_size + v_bs - 1) / v_bs;   -- first block entirely past the end
  v_tail bigint := p_size / v_bs;                      -- block cut in the middle, if any
  v_old bytea;
  v_gone bytea[];
  v_now bigint := tarbox_private.now_ns();
begin
  perform tarbox_private.require_regular(p_inode);
  if p_size < 0 then
    perform tarbox_private.fail('TBINV', 'negative size');
  end if;
  if p_size > p_tenant.max_file_size then
    perform tarbox_private.fail('TBFBG', format('file too large: %s bytes is over the limit of %s', p_size, p_tenant.max_file_size));
  end if;
  if p_size < p_inode.size then
    -- blocks past the end: drop the working layer's, hide the frozen layers'
    with gone as (
      delete from tarbox_private.file_blocks
       where tenant_id = p_tenant.tenant_id and ino = p_inode.ino
         and layer_id = p_tenant.working_layer_id and block_no >= v_first_gone
      returning chunk_hash)
    select array_agg(chunk_hash) filter (where chunk_hash is not null) into v_gone from gone;
    insert into tarbox_private.file_blocks (tenant_id, ino, block_no, layer_id, chunk_hash)
    select distinct p_tenant.tenant_id, p_inode.ino, b.block_no, p_tenant.working_layer_id, null::bytea
      from tarbox_private.file_blocks b
     where b.tenant_id = p_tenant.tenant_id and b.ino = p_inode.ino
       and b.block_no >= v_first_gone and b.layer_id = any (p_tenant.layer_chain[2:])
    on conflict do nothing;
    if v_gone is not null then
      perform tarbox_private.release_chunks(p_tenant.tenant_id, v_gone);
    end if;
    -- the block cut in the middle keeps only its first bytes
    if p_size % v_bs <> 0 then
      v_old := tarbox_private.block_data(p_tenant, p_inode.ino, v_tail);
      if v_old is not null and octet_length(v_old) > p_size % v_bs then
        v_old := substring(v_old from 1 for (p_size % v_bs)::integer);
        perform tarbox_private.put_blocks(p_tenant, p_inode.ino, array[v_tail],
          array[case when tarbox_private.is_zero(v_old) then null else tarbox_private.store_chunk(p_tenant, v_old) end]);
      end if;
    end if;
  end if;
  p_inode.size := p_size;
  p_inode.mtime_ns := v_now;
  p_inode.ctime_ns := v_now;
  if p_uid <> 0 then
    p_inode.mode := tarbox_private.kill_priv(p_inode.mode);
  end if;
  return p_inode;
end
$$;

-- Bytes [p_offset, p_offset + p_length) of an inode, clamped to its size.
create function tarbox_private.read_bytes(p_tenant tarbox_private.tenants, p_inode tarbox_private.inodes,
  p_offset bigint, p_length integer)
returns bytea
language plpgsql stable as $$
declare
  v_bs integer := p_tenant.block_size;
  v_end bigint := least(p_offset + p_length, p_inode.size);
  v_result bytea := ''::bytea;
  v_block record;
  v_next bigint := p_offset;     -- next file offset to append
  v_start bigint;
  v_piece bytea;
begin
  perform tarbox_private.require_regular(p_inode);
  if p_offset < 0 or p_length < 0 then
    perform tarbox_private.fail('TBINV', 'negative offset or length');
  end if;
  if p_offset >= v_end then
    return ''::bytea;
  end if;
  for v_block in
    select v.block_no, c.data
      from tarbox_private.visible_blocks(p_tenant, p_inode.ino, p_offset / v_bs, (v_end - 1) / v_bs) v
      join tarbox_private.chunks c on c.tenant_id = p_tenant.tenant_id and c.hash = v.chunk_hash
     order by v.block_no
  loop
    v_start := v_block.block_no * v_bs;
    if v_start > v_next then
      v_result := v_result || tarbox_private.zeros((v_start - v_next)::integer);
      v_next := v_start;
    end if;
    -- the block's bytes from v_next to the end of the block or of the range
    v_piece := substring(v_block.data from (v_next - v_start + 1)::integer
                                      for (least(v_start + v_bs, v_end) - v_next)::integer);
    v_result := v_result || v_piece;
    -- a chunk shorter than its block reads as zeros after its end
    v_result := v_result || tarbox_private.zeros((least(v_start + v_bs, v_end) - v_next - octet_length(v_piece))::integer);
    v_next := least(v_start + v_bs, v_end);
  end loop;
  if v_next < v_end then
    v_result := v_result || tarbox_private.zeros((v_end - v_next)::integer);
  end if;
  return v_result;
end
$$;

--! split: 004-ops.sql
-- The public filesystem API: one function per operation. Paths are bytea (file names are
-- bytes); a text literal such as '/notes.txt' is accepted as bytea by PostgreSQL. Every
-- function works on the tenant bound to the session (tarbox.use_tenant) and raises the
-- SQLSTATEs listed in docs/sql-api.md. Identity arguments (p_uid, p_gid) are the caller's:
-- the FUSE shim passes the calling process's; SQL callers act as the tenant's root (0).

-- Insert a new live entry; the name must not be live in the working layer (a concurrent
-- creator that committed first makes this raise EEXIST rather than overwrite).
create function tarbox_private.add_entry(p_tenant tarbox_private.tenants, p_parent bigint, p_name bytea,
  p_ino bigint, p_kind smallint, p_path bytea)
returns void
language plpgsql volatile as $$
begin
  insert into tarbox_private.dentries as d (tenant_id, parent_ino, name, layer_id, ino, kind)
  values (p_tenant.tenant_id, p_parent, p_name, p_tenant.working_layer_id, p_ino, p_kind)
  on conflict (tenant_id, parent_ino, name, layer_id)
  do update set ino = excluded.ino, kind = excluded.kind where d.ino is null;
  if not found then
    perform tarbox_private.fail('TBEXI', format('file exists: %s', tarbox_private.path_text(p_path)));
  end if;
end
$$;

-- Create any kind of inode at a new path: the common part of mkdir, create, mknod, symlink.
create function tarbox_private.make_node(p_path bytea, p_mode integer, p_uid integer, p_gid integer,
  p_rdev integer, p_target bytea)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_new record;
  v_parent tarbox_private.inodes;
  v_inode tarbox_private.inodes;
begin
  select * into v_new from tarbox_private.resolve_new(v_tenant, p_path);
  v_parent := tarbox_private.touch_dir(v_tenant, v_new.parent_ino,
                case when tarbox_private.is_dir(p_mode) then 1 else 0 end);
  v_inode := tarbox_private.new_inode(v_tenant, v_parent, p_mode, p_uid, p_gid, p_rdev, p_target);
  perform tarbox_private.add_entry(v_tenant, v_new.parent_ino, v_new.name, v_inode.ino,
            tarbox_private.kind_of(p_mode), p_path);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create function tarbox.getattr(p_path bytea) returns tarbox.attr
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return tarbox_private.to_attr(tarbox_private.resolve(v_tenant, p_path, false), v_tenant.block_size);
end
$$;
comment on function tarbox.getattr is 'lstat(2): attributes of the path (symlinks not followed). ENOENT, ENOTDIR, ELOOP.';

create function tarbox.lookup(p_path bytea) returns setof tarbox.attr
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_walk record;
  v_inode tarbox_private.inodes;
begin
  -- Like getattr, but a missing last component is an empty result rather than an error:
  -- negative lookups are the commonest FUSE call and raising costs more than returning.
  select * into v_walk from tarbox_private.walk(v_tenant, p_path, false);
  if v_walk.ino is null then
    return;
  end if;
  v_inode := tarbox_private.find_inode(v_tenant, v_walk.ino);
  if v_inode.ino is not null then
    return next tarbox_private.to_attr(v_inode, v_tenant.block_size);
  end if;
end
$$;
comment on function tarbox.lookup is 'lstat(2) for lookups: one row of attributes, or no row when the last component does not exist (ENOENT/ENOTDIR on the way still raise).';

create function tarbox.getattr_ino(p_ino bigint) returns tarbox.attr
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return tarbox_private.to_attr(tarbox_private.require_inode(v_tenant, p_ino), v_tenant.block_size);
end
$$;
comment on function tarbox.getattr_ino is 'fstat(2): attributes of an inode the caller holds open.';

create function tarbox.readdir(p_path bytea) returns setof tarbox.dirent
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_dir tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
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
end
$$;
comment on function tarbox.readdir is 'readdir(3) plus attributes: the live entries of a directory (without . and ..), sorted by name.';

create function tarbox.mkdir(p_path bytea, p_mode integer default 493, p_uid integer default 0, p_gid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
begin
  return tarbox_private.make_node(p_path, 16384 | (p_mode & 4095), p_uid, p_gid, 0, null);
end
$$;
comment on function tarbox.mkdir is 'mkdir(2). EEXIST, ENOENT, ENOTDIR, ENAMETOOLONG.';

create function tarbox.create(p_path bytea, p_mode integer default 420, p_uid integer default 0, p_gid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
begin
  return tarbox_private.make_node(p_path, 32768 | (p_mode & 4095), p_uid, p_gid, 0, null);
end
$$;
comment on function tarbox.create is 'creat(2) with O_EXCL: a new empty regular file. EEXIST if the name exists.';

create function tarbox.mknod(p_path bytea, p_mode integer, p_rdev integer default 0, p_uid integer default 0, p_gid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_type integer := p_mode & 61440;
begin
  if v_type = 0 then
    v_type := 32768;
  end if;
  if v_type not in (32768, 4096, 49152, 8192, 24576) then
    perform tarbox_private.fail('TBINV', 'mknod: mode must be a regular file, fifo, socket or device node');
  end if;
  return tarbox_private.make_node(p_path, v_type | (p_mode & 4095), p_uid, p_gid,
           case when v_type in (8192, 24576) then p_rdev else 0 end, null);
end
$$;
comment on function tarbox.mknod is 'mknod(2): regular files, fifos, sockets and device nodes (stored as metadata only).';

create function tarbox.symlink(p_target bytea, p_path bytea, p_uid integer default 0, p_gid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
begin
  if p_target is null or octet_length(p_target) = 0 then
    perform tarbox_private.fail('TBNOE', 'symlink: empty target');
  end if;
  if octet_length(p_target) > 4095 then
    perform tarbox_private.fail('TBNTL', 'symlink: target longer than 4095 bytes');
  end if;
  if position('\x00'::bytea in p_target) > 0 then
    perform tarbox_private.fail('TBINV', 'symlink: target contains a NUL byte');
  end if;
  return tarbox_private.make_node(p_path, 40960 | 511, p_uid, p_gid, 0, p_target);
end
$$;
comment on function tarbox.symlink is 'symlink(2): p_path becomes a symbolic link to p_target.';

create function tarbox.readlink(p_path bytea) returns bytea
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  if not tarbox_private.is_lnk(v_inode.mode) then
    perform tarbox_private.fail('TBINV', format('not a symbolic link: %s', tarbox_private.path_text(p_path)));
  end if;
  return v_inode.target;
end
$$;
comment on function tarbox.readlink is 'readlink(2). EINVAL if the path is not a symlink.';

create function tarbox.link(p_existing bytea, p_new bytea) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_source tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_existing, false);
  v_new record;
begin
  if tarbox_private.is_dir(v_source.mode) then
    perform tarbox_private.fail('TBPRM', format('hard links to directories are not allowed: %s', tarbox_private.path_text(p_existing)));
  end if;
  select * into v_new from tarbox_private.resolve_new(v_tenant, p_new);
  perform tarbox_private.touch_dir(v_tenant, v_new.parent_ino, 0);
  v_source := tarbox_private.lock_inode(v_tenant, v_source.ino);
  v_source.nlink := v_source.nlink + 1;
  v_source.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_source);
  perform tarbox_private.add_entry(v_tenant, v_new.parent_ino, v_new.name, v_source.ino,
            tarbox_private.kind_of(v_source.mode), p_new);
  return tarbox_private.to_attr(v_source, v_tenant.block_size);
end
$$;
comment on function tarbox.link is 'link(2): a new name for an existing non-directory inode.';

-- Sticky directories: only the owner of the entry, the owner of the directory or root
-- may remove or rename an entry.
create function tarbox_private.check_sticky(p_tenant tarbox_private.tenants, p_dir bigint,
  p_inode tarbox_private.inodes, p_uid integer, p_path bytea)
returns void
language plpgsql stable as $$
declare
  v_dir tarbox_private.inodes;
begin
  if p_uid = 0 or p_uid = p_inode.uid then
    return;
  end if;
  v_dir := tarbox_private.require_inode(p_tenant, p_dir);
  if (v_dir.mode & 512) <> 0 and v_dir.uid <> p_uid then
    perform tarbox_private.fail('TBPRM', format('operation not permitted in sticky directory: %s', tarbox_private.path_text(p_path)));
  end if;
end
$$;

-- Drop one link to an inode; the inode goes when its last link does.
create function tarbox_private.drop_link(p_tenant tarbox_private.tenants, p_ino bigint, p_keep_open boolean default false)
returns void
language plpgsql volatile as $$
declare
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(p_tenant, p_ino);
begin
  v_inode.nlink := case when tarbox_private.is_dir(v_inode.mode) then 0 else v_inode.nlink - 1 end;
  v_inode.ctime_ns := tarbox_private.now_ns();
  if v_inode.nlink <= 0 and not (p_keep_open and not tarbox_private.is_dir(v_inode.mode)) then
    perform tarbox_private.drop_inode(p_tenant, p_ino);
  else
    perform tarbox_private.save_inode(v_inode);  -- still linked, or an open orphan
  end if;
end
$$;

create function tarbox.unlink(p_path bytea, p_uid integer default 0, p_keep_open boolean default false) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_walk record;
  v_inode tarbox_private.inodes;
begin
  select * into v_walk from tarbox_private.walk(v_tenant, p_path, false);
  if v_walk.name is null then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  v_inode := tarbox_private.resolve(v_tenant, p_path, false);
  if tarbox_private.is_dir(v_inode.mode) then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.check_sticky(v_tenant, v_walk.parent_ino, v_inode, p_uid, p_path);
  perform tarbox_private.touch_dir(v_tenant, v_walk.parent_ino, 0);
  perform tarbox_private.remove_entry(v_tenant, v_walk.parent_ino, v_walk.name);
  perform tarbox_private.drop_link(v_tenant, v_inode.ino, p_keep_open);
end
$$;
comment on function tarbox.unlink is 'unlink(2). EISDIR for directories, EPERM in a sticky directory for non-owners. With p_keep_open the caller holds the file open: its inode stays, nameless, until tarbox.release(ino, ..., true).';

create function tarbox.rmdir(p_path bytea, p_uid integer default 0) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_walk record;
  v_inode tarbox_private.inodes;
begin
  select * into v_walk from tarbox_private.walk(v_tenant, p_path, false);
  if v_walk.ino = v_tenant.root_ino then
    perform tarbox_private.fail('TBBSY', 'cannot remove the root directory');
  end if;
  if v_walk.name is null then
    perform tarbox_private.fail('TBINV', format('cannot remove . or ..: %s', tarbox_private.path_text(p_path)));
  end if;
  v_inode := tarbox_private.resolve(v_tenant, p_path, false);
  if not tarbox_private.is_dir(v_inode.mode) then
    perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.check_sticky(v_tenant, v_walk.parent_ino, v_inode, p_uid, p_path);
  perform tarbox_private.touch_dir(v_tenant, v_walk.parent_ino, -1);
  -- lock the directory before checking it is empty, so no entry can be added meanwhile
  perform tarbox_private.lock_inode(v_tenant, v_inode.ino);
  if not tarbox_private.dir_is_empty(v_tenant, v_inode.ino) then
    perform tarbox_private.fail('TBNEM', format('directory not empty: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.remove_entry(v_tenant, v_walk.parent_ino, v_walk.name);
  perform tarbox_private.drop_inode(v_tenant, v_inode.ino);
end
$$;
comment on function tarbox.rmdir is 'rmdir(2). ENOTEMPTY, ENOTDIR, EBUSY for the root.';

create function tarbox.rename(p_from bytea, p_to bytea, p_flags integer default 0, p_uid integer default 0,
  p_keep_open boolean default false)
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
      perform tarbox_private.drop_link(v_tenant, v_target.ino, p_keep_open);
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
comment on function tarbox.rename is 'rename(2) (p_flags 1 = RENAME_NOREPLACE): replaces a file or an empty directory; EINVAL for a move into its own subtree. p_keep_open: the replaced file is held open by the caller (see unlink).';

create function tarbox.chmod(p_path bytea, p_mode integer) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode.mode := (v_inode.mode & 61440) | (p_mode & 4095);
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.chmod is 'chmod(2): permission bits including setuid, setgid and sticky.';

create function tarbox.chown(p_path bytea, p_uid integer, p_gid integer) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  if p_uid <> -1 then v_inode.uid := p_uid; end if;
  if p_gid <> -1 then v_inode.gid := p_gid; end if;
  if (p_uid <> -1 or p_gid <> -1) and not tarbox_private.is_dir(v_inode.mode) then
    v_inode.mode := tarbox_private.kill_priv(v_inode.mode);
  end if;
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.chown is 'lchown(2): -1 leaves a field unchanged; clears setuid (and setgid with group-exec) on non-directories.';

create function tarbox.utimens(p_path bytea, p_atime_sec bigint, p_atime_nsec integer,
  p_mtime_sec bigint, p_mtime_nsec integer)
returns tarbox.attr
language plpgsql volatile as $$
declare
  -- UTIME_NOW and UTIME_OMIT from <sys/stat.h>
  c_now constant integer := 1073741823;
  c_omit constant integer := 1073741822;
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
  v_now bigint := tarbox_private.now_ns();
begin
  if (p_atime_nsec not in (c_now, c_omit) and (p_atime_nsec < 0 or p_atime_nsec > 999999999))
     or (p_mtime_nsec not in (c_now, c_omit) and (p_mtime_nsec < 0 or p_mtime_nsec > 999999999)) then
    perform tarbox_private.fail('TBINV', 'utimens: nanoseconds out of range');
  end if;
  if p_atime_nsec = c_omit and p_mtime_nsec = c_omit then
    return tarbox_private.to_attr(v_inode, v_tenant.block_size);
  end if;
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode.atime_ns := case p_atime_nsec when c_omit then v_inode.atime_ns when c_now then v_now
                      else p_atime_sec * 1000000000 + p_atime_nsec end;
  v_inode.mtime_ns := case p_mtime_nsec when c_omit then v_inode.mtime_ns when c_now then v_now
                      else p_mtime_sec * 1000000000 + p_mtime_nsec end;
  v_inode.ctime_ns := v_now;
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.utimens is 'utimensat(2) with nanoseconds; nsec 1073741823 is UTIME_NOW, 1073741822 is UTIME_OMIT.';

create function tarbox.access(p_path bytea, p_mask integer, p_uid integer default 0, p_gid integer default 0)
returns void
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
  v_bits integer;
begin
  if p_mask = 0 then
    return;  -- F_OK: existence only
  end if;
  if p_uid = 0 then
    -- root may do anything, except execute a file nobody may execute
    if (p_mask & 1) <> 0 and not tarbox_private.is_dir(v_inode.mode) and (v_inode.mode & 73) = 0 then
      perform tarbox_private.fail('TBACC', format('permission denied: %s', tarbox_private.path_text(p_path)));
    end if;
    return;
  end if;
  v_bits := case when p_uid = v_inode.uid then (v_inode.mode >> 6) & 7
                 when p_gid = v_inode.gid then (v_inode.mode >> 3) & 7
                 else v_inode.mode & 7 end;
  if (p_mask & 7) & ~v_bits <> 0 then
    perform tarbox_private.fail('TBACC', format('permission denied: %s', tarbox_private.path_text(p_path)));
  end if;
end
$$;
comment on function tarbox.access is 'access(2) for the given uid/gid (R_OK 4, W_OK 2, X_OK 1, F_OK 0). EACCES.';

create function tarbox.open(p_path bytea, p_flags integer default 0, p_uid integer default 0) returns tarbox.attr
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
comment on function tarbox.open is 'open(2) of an existing path (symlinks followed): returns its attributes; O_TRUNC truncates.';

create function tarbox.read(p_path bytea, p_offset bigint default 0, p_length integer default 1073741823)
returns bytea
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return tarbox_private.read_bytes(v_tenant, tarbox_private.resolve(v_tenant, p_path, true), p_offset, p_length);
end
$$;
comment on function tarbox.read is 'pread(2) by path (symlinks followed): up to p_length bytes from p_offset; holes read as zeros.';

create function tarbox.read_ino(p_ino bigint, p_offset bigint, p_length integer) returns bytea
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return tarbox_private.read_bytes(v_tenant, tarbox_private.require_inode(v_tenant, p_ino), p_offset, p_length);
end
$$;
comment on function tarbox.read_ino is 'pread(2) on an open inode.';

create function tarbox.write(p_path bytea, p_offset bigint, p_data bytea, p_uid integer default 0) returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode := tarbox_private.write_bytes(v_tenant, v_inode, p_offset, p_data, p_uid);
  perform tarbox_private.save_inode(v_inode);
  return octet_length(p_data);
end
$$;
comment on function tarbox.write is 'pwrite(2) by path (symlinks followed); returns the number of bytes written. EFBIG, EISDIR.';

create function tarbox.write_ino(p_ino bigint, p_offset bigint, p_data bytea, p_uid integer default 0) returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
begin
  v_inode := tarbox_private.write_bytes(v_tenant, v_inode, p_offset, p_data, p_uid);
  perform tarbox_private.save_inode(v_inode);
  return octet_length(p_data);
end
$$;
comment on function tarbox.write_ino is 'pwrite(2) on an open inode.';

-- O_APPEND that holds across processes and mounts: the offset is the inode's size while its
-- row lock is held, so two appenders can never pick the same one.
create function tarbox.append_ino(p_ino bigint, p_data bytea, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
begin
  v_inode := tarbox_private.write_bytes(v_tenant, v_inode, v_inode.size, p_data, p_uid);
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.append_ino is 'write(2) on an O_APPEND descriptor: p_data goes at the end of the file as it is when the call runs; returns the new attributes.';

create function tarbox.truncate(p_path bytea, p_size bigint, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode := tarbox_private.truncate_bytes(v_tenant, v_inode, p_size, p_uid);
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.truncate is 'truncate(2): cut or extend (with a hole) to p_size. EISDIR, EINVAL, EFBIG.';

create function tarbox.truncate_ino(p_ino bigint, p_size bigint, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
begin
  v_inode := tarbox_private.truncate_bytes(v_tenant, v_inode, p_size, p_uid);
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.truncate_ino is 'ftruncate(2) on an open inode.';

create function tarbox.fsync(p_ino bigint default null) returns void
language plpgsql volatile as $$
begin
  -- Mounts commit with synchronous_commit off. This transaction commits synchronously and,
  -- having a transaction id, writes and flushes a commit record; WAL is flushed in order,
  -- so every commit before it (from any session) is durable when it returns.
  perform set_config('synchronous_commit', 'on', true);
  perform pg_catalog.txid_current();
end
$$;
comment on function tarbox.fsync is 'fsync(2): when this call returns (committed with synchronous_commit on), every change committed before it is durable.';

create function tarbox.flush(p_ino bigint) returns tarbox.attr
language plpgsql stable as $$
begin
  -- Every SQL call commits on its own, so there is nothing left to write: flush returns the
  -- committed attributes, which is what close-to-open needs to observe.
  return tarbox.getattr_ino(p_ino);
end
$$;
comment on function tarbox.flush is 'close(2)/flush: the committed attributes of an open inode (SQL writes are committed per call).';

create function tarbox.release(p_ino bigint, p_was_read boolean default false, p_orphan boolean default false)
returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes;
  v_now bigint := tarbox_private.now_ns();
begin
  v_inode := tarbox_private.find_inode(v_tenant, p_ino);
  if v_inode.ino is null then
    return;  -- removed meanwhile: nothing to do
  end if;
  if p_orphan and v_inode.nlink = 0 then
    perform tarbox_private.lock_inode(v_tenant, p_ino);
    perform tarbox_private.drop_inode(v_tenant, p_ino);
    return;
  end if;
  -- relatime, Linux's default: atime moves on a read only when it is not newer than mtime
  -- or ctime, or is more than a day old. Cheap to ask, rare to write.
  if p_was_read and (v_inode.atime_ns <= v_inode.mtime_ns or v_inode.atime_ns <= v_inode.ctime_ns
                     or v_inode.atime_ns < v_now - 86400000000000) then
    v_inode := tarbox_private.lock_inode(v_tenant, p_ino);
    v_inode.atime_ns := v_now;
    perform tarbox_private.save_inode(v_inode);
  end if;
end
$$;
comment on function tarbox.release(bigint, boolean, boolean) is 'Last close of an open inode: with p_was_read, atime moves by relatime rules; with p_orphan, an unlinked file kept open (see unlink) goes now.';

create function tarbox.collect_orphans() returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_ino bigint;
  v_count integer := 0;
begin
  -- only safe while no mount of the tenant holds unlinked files open
  for v_ino in
    select i.ino from tarbox_private.inodes i
     where i.tenant_id = v_tenant.tenant_id and i.layer_id = v_tenant.working_layer_id
       and i.nlink = 0 and not i.deleted and not tarbox_private.is_dir(i.mode)
  loop
    perform tarbox_private.drop_inode(v_tenant, v_ino);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
comment on function tarbox.collect_orphans is 'Remove unlinked files that a crashed mount held open (nlink 0). Run while the tenant is not mounted. Returns how many.';

create function tarbox.statfs() returns tarbox.statfs_info
language sql stable as $$
  select row(t.block_size, t.block_size,
             (1::bigint << 50) / t.block_size, (1::bigint << 50) / t.block_size, (1::bigint << 50) / t.block_size,
             1::bigint << 32, 1::bigint << 32, 1::bigint << 32, 255)::tarbox.statfs_info
    from tarbox_private.current_tenant() t
$$;
comment on function tarbox.statfs is 'statfs(2). Capacity is nominal (1 PiB) until quotas give it a limit.';

--! split: 005-xattrs_blocks.sql
-- Extended attributes, and the block-level data path used by the FUSE shim.

create function tarbox_private.check_xattr_name(p_name text) returns void
language plpgsql immutable as $$
begin
  if p_name is null or octet_length(p_name) = 0 or octet_length(p_name) > 255 then
    perform tarbox_private.fail('TBRNG', 'xattr name must be 1 to 255 bytes');
  end if;
  if p_name !~ '^(user|trusted|security)\.' then
    perform tarbox_private.fail('TBNSP', format('xattr namespace not supported: %s', p_name));
  end if;
end
$$;

create function tarbox_private.find_xattr(p_tenant tarbox_private.tenants, p_ino bigint, p_name text)
returns bytea
language plpgsql stable as $$
declare
  v_value bytea;
begin
  select x.value into v_value from tarbox_private.xattrs x
   where x.tenant_id = p_tenant.tenant_id and x.ino = p_ino and x.name = p_name
     and x.layer_id = any (p_tenant.layer_chain)
   order by x.layer_id desc
   limit 1;
  return v_value;
end
$$;

create function tarbox.setxattr(p_path bytea, p_name text, p_value bytea, p_flags integer default 0)
returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
  v_exists boolean;
begin
  perform tarbox_private.check_xattr_name(p_name);
  if octet_length(p_value) > 65536 then
    perform tarbox_private.fail('TBBIG', 'xattr value larger than 64 KiB');
  end if;
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);   -- serializes xattr changes per inode
  v_exists := tarbox_private.find_xattr(v_tenant, v_inode.ino, p_name) is not null;
  if (p_flags & 1) <> 0 and v_exists then          -- XATTR_CREATE
    perform tarbox_private.fail('TBEXI', format('xattr exists: %s', p_name));
  elsif (p_flags & 2) <> 0 and not v_exists then   -- XATTR_REPLACE
    perform tarbox_private.fail('TBNOD', format('no such xattr: %s', p_name));
  end if;
  insert into tarbox_private.xattrs (tenant_id, ino, name, layer_id, value)
  values (v_tenant.tenant_id, v_inode.ino, p_name, v_tenant.working_layer_id, coalesce(p_value, ''::bytea))
  on conflict (tenant_id, ino, name, layer_id) do update set value = excluded.value;
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
end
$$;
comment on function tarbox.setxattr is 'lsetxattr(2): flags 1 = XATTR_CREATE (EEXIST), 2 = XATTR_REPLACE (ENODATA). Namespaces user., trusted., security.; others EOPNOTSUPP.';

create function tarbox.getxattr(p_path bytea, p_name text) returns bytea
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
comment on function tarbox.getxattr is 'lgetxattr(2). ENODATA when the attribute is not set.';

create function tarbox.listxattr(p_path bytea) returns setof text
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
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
end
$$;
comment on function tarbox.listxattr is 'llistxattr(2): names of the attributes that are set.';

create function tarbox.removexattr(p_path bytea, p_name text) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  if tarbox_private.find_xattr(v_tenant, v_inode.ino, p_name) is null then
    perform tarbox_private.fail('TBNOD', format('no such xattr: %s', p_name));
  end if;
  if exists (select 1 from tarbox_private.xattrs
              where tenant_id = v_tenant.tenant_id and ino = v_inode.ino and name = p_name
                and layer_id = any (v_tenant.layer_chain[2:])) then
    update tarbox_private.xattrs set value = null
     where tenant_id = v_tenant.tenant_id and ino = v_inode.ino and name = p_name
       and layer_id = v_tenant.working_layer_id;
    if not found then
      insert into tarbox_private.xattrs (tenant_id, ino, name, layer_id, value)
      values (v_tenant.tenant_id, v_inode.ino, p_name, v_tenant.working_layer_id, null);
    end if;
  else
    delete from tarbox_private.xattrs
     where tenant_id = v_tenant.tenant_id and ino = v_inode.ino and name = p_name
       and layer_id = v_tenant.working_layer_id;
  end if;
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
end
$$;
comment on function tarbox.removexattr is 'lremovexattr(2). ENODATA when the attribute is not set.';

-- ---------------------------------------------------------------------------------------
-- Block-level data path for the FUSE shim. The shim hashes blocks in Node, asks which
-- chunks the tenant lacks, COPYs those (binary) into tarbox_private.chunks and commits the
-- block map with commit_blocks, all in one transaction. COPY is the one place where the
-- shim writes a table directly: passing chunk bytes through a function costs 3x more
-- (docs/architecture.md has the numbers).

create function tarbox.missing_chunks(p_hashes bytea[]) returns setof bytea
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select h.hash from unnest(p_hashes) as h (hash)
     where not exists (select 1 from tarbox_private.chunks c
                        where c.tenant_id = v_tenant.tenant_id and c.hash = h.hash);
end
$$;
comment on function tarbox.missing_chunks is 'The hashes among p_hashes that the tenant does not store yet (to upload only those).';

create function tarbox.commit_blocks(p_ino bigint, p_block_nos bigint[], p_hashes bytea[],
  p_end bigint, p_uid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
  v_now bigint := tarbox_private.now_ns();
begin
  perform tarbox_private.require_regular(v_inode);
  if p_end > v_tenant.max_file_size then
    perform tarbox_private.fail('TBFBG', format('file too large: %s bytes is over the limit of %s', p_end, v_tenant.max_file_size));
  end if;
  perform tarbox_private.put_blocks(v_tenant, p_ino, p_block_nos, p_hashes);
  v_inode.size := greatest(v_inode.size, p_end);
  v_inode.mtime_ns := v_now;
  v_inode.ctime_ns := v_now;
  if p_uid <> 0 then
    v_inode.mode := tarbox_private.kill_priv(v_inode.mode);
  end if;
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;
comment on function tarbox.commit_blocks is 'Commit whole blocks written by the shim (chunks already stored): block p_block_nos[i] points at p_hashes[i] (null: hole), size grows to p_end.';

create function tarbox.file_blocks(p_ino bigint, p_first bigint, p_count integer)
returns table (block_no bigint, chunk_hash bytea)
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  perform tarbox_private.require_inode(v_tenant, p_ino);
  return query
    select v.block_no, v.chunk_hash
      from tarbox_private.visible_blocks(v_tenant, p_ino, p_first, p_first + p_count - 1) v
     where v.chunk_hash is not null
     order by v.block_no;
end
$$;
comment on function tarbox.file_blocks is 'The non-hole blocks among p_count blocks from p_first: block number and chunk hash.';

create function tarbox.read_chunks(p_hashes bytea[]) returns table (hash bytea, data bytea)
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select c.hash, c.data from tarbox_private.chunks c
     where c.tenant_id = v_tenant.tenant_id and c.hash = any (p_hashes);
end
$$;
comment on function tarbox.read_chunks is 'Chunk contents by hash (the shim reads them with COPY ... TO STDOUT in binary).';

--! split: 006-tenants_convenience.sql
-- Tenants, and a text-friendly layer for psql users and the CLI.

create function tarbox.create_tenant(p_name text, p_display_name text default null,
  p_block_size integer default 1048576, p_max_file_size bigint default 1099511627776)
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
  if p_max_file_size is null or p_max_file_size < 1 then
    perform tarbox_private.fail('TBINV', format('invalid max file size %s', p_max_file_size));
  end if;
  if exists (select 1 from tarbox_private.tenants where name = p_name) then
    perform tarbox_private.fail('TBEXI', format('tenant already exists: %s', p_name));
  end if;
  insert into tarbox_private.tenants (name, display_name, block_size, max_file_size, root_ino, working_layer_id, layer_chain)
  values (p_name, p_display_name, p_block_size, p_max_file_size, v_root, v_layer, array[v_layer])
  returning tenant_id into v_tenant_id;
  insert into tarbox_private.layers (tenant_id, layer_id, parent_layer_id, message)
  values (v_tenant_id, v_layer, null, 'initial layer');
  insert into tarbox_private.inodes (tenant_id, ino, layer_id, mode, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns)
  values (v_tenant_id, v_root, v_layer, 16384 | 493, 2, 0, 0, v_now, v_now, v_now);
  return (select t from tarbox.list_tenants() t where t.tenant_id = v_tenant_id);
end
$$;
comment on function tarbox.create_tenant is 'A new tenant with an empty root directory (0755, owned by 0:0) and its first working layer; block size and file size limit from the configuration.';

create function tarbox.list_tenants() returns setof tarbox.tenant_info
language sql stable as $$
  select t.tenant_id, t.name, t.display_name, t.created_at,
         (select count(distinct i.ino) from tarbox_private.inodes i
           where i.tenant_id = t.tenant_id and not i.deleted),
         (select coalesce(sum(octet_length(c.data)), 0)::bigint from tarbox_private.chunks c
           where c.tenant_id = t.tenant_id)
    from tarbox_private.tenants t
   order by t.name
$$;
comment on function tarbox.list_tenants is 'Tenants with their usage: inodes (all layers) and stored chunk bytes (after dedup).';

create function tarbox.tenant_id(p_name text) returns bigint
language plpgsql stable as $$
declare
  v_id bigint;
begin
  select tenant_id into v_id from tarbox_private.tenants where name = p_name;
  if v_id is null then
    perform tarbox_private.fail('TBTNT', format('unknown tenant: %s', p_name));
  end if;
  return v_id;
end
$$;
comment on function tarbox.tenant_id is 'The id of a tenant by name. TBTNT if unknown.';

create function tarbox.use_tenant(p_name text) returns bigint
language plpgsql volatile as $$
declare
  v_id bigint := tarbox.tenant_id(p_name);
begin
  perform set_config('tarbox.tenant_id', v_id::text, false);
  return v_id;
end
$$;
comment on function tarbox.use_tenant is 'Bind this session to a tenant: every other function then works on its files.';

create function tarbox.delete_tenant(p_name text) returns void
language plpgsql volatile as $$
declare
  v_id bigint := tarbox.tenant_id(p_name);
begin
  delete from tarbox_private.xattrs where tenant_id = v_id;
  delete from tarbox_private.file_blocks where tenant_id = v_id;
  delete from tarbox_private.chunks where tenant_id = v_id;
  delete from tarbox_private.dentries where tenant_id = v_id;
  delete from tarbox_private.inodes where tenant_id = v_id;
  delete from tarbox_private.tenants where tenant_id = v_id;  -- layers cascade
end
$$;
comment on function tarbox.delete_tenant is 'Remove a tenant and all of its files, layers and chunks.';

-- ---------------------------------------------------------------------------------------
-- Text-friendly functions: paths as text (UTF-8), names shown as text.

create function tarbox_private.kind_name(p_mode integer) returns text
language sql immutable strict parallel safe as $$
  select case p_mode & 61440
           when 32768 then 'file' when 16384 then 'dir' when 40960 then 'symlink'
           when 4096 then 'fifo' when 49152 then 'socket' when 8192 then 'chardev'
           when 24576 then 'blockdev' else 'unknown' end
$$;

-- Names are bytes; show valid UTF-8 as is and anything else escaped.
create function tarbox_private.name_text(p_name bytea) returns text
language plpgsql immutable strict parallel safe as $$
begin
  return convert_from(p_name, 'UTF8');
exception when character_not_in_repertoire or untranslatable_character then
  return encode(p_name, 'escape');
end
$$;

create function tarbox_private.ns_time(p_sec bigint, p_nsec integer) returns timestamptz
language sql immutable strict parallel safe as $$
  select to_timestamp(p_sec + p_nsec / 1e9)
$$;

create function tarbox.ls(p_path text default '/')
returns table (name text, kind text, mode integer, size bigint, uid integer, gid integer,
               nlink integer, mtime timestamptz, target text)
language plpgsql stable as $$
declare
  v_path bytea := convert_to(p_path, 'UTF8');
  v_attr tarbox.attr := tarbox.getattr(v_path);
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
end
$$;
comment on function tarbox.ls is 'List a directory (or show one file) with readable columns: select * from tarbox.ls(''/'').';

create function tarbox.stat(p_path text)
returns table (path text, ino bigint, kind text, mode integer, nlink integer, uid integer, gid integer,
               size bigint, blocks bigint, atime timestamptz, mtime timestamptz, ctime timestamptz, target text)
language plpgsql stable as $$
declare
  v_attr tarbox.attr := tarbox.getattr(convert_to(p_path, 'UTF8'));
begin
  return query select p_path, v_attr.ino, tarbox_private.kind_name(v_attr.mode), v_attr.mode & 4095,
    v_attr.nlink, v_attr.uid, v_attr.gid, v_attr.size, v_attr.blocks,
    tarbox_private.ns_time(v_attr.atime_sec, v_attr.atime_nsec),
    tarbox_private.ns_time(v_attr.mtime_sec, v_attr.mtime_nsec),
    tarbox_private.ns_time(v_attr.ctime_sec, v_attr.ctime_nsec),
    case when (v_attr.mode & 61440) = 40960
         then tarbox_private.name_text(tarbox.readlink(convert_to(p_path, 'UTF8'))) end;
end
$$;
comment on function tarbox.stat is 'Attributes of a path with readable times: select * from tarbox.stat(''/notes.txt'').';

create function tarbox.read_file(p_path text) returns bytea
language sql stable as $$
  select tarbox.read(convert_to(p_path, 'UTF8'), 0, 1073741823)
$$;
comment on function tarbox.read_file is 'Whole content of a file (symlinks followed). Use convert_from(..., ''UTF8'') for text.';

create function tarbox.write_file(p_path text, p_data bytea, p_mode integer default 420) returns bigint
language plpgsql volatile as $$
declare
  v_path bytea := convert_to(p_path, 'UTF8');
begin
  begin
    perform tarbox.create(v_path, p_mode);
  exception when sqlstate 'TBEXI' then
    perform tarbox.truncate(v_path, 0);
  end;
  perform tarbox.write(v_path, 0, p_data);
  return octet_length(p_data);
end
$$;
comment on function tarbox.write_file is 'Create or replace a file''s content; returns its size.';

create function tarbox.make_directory(p_path text, p_parents boolean default false, p_mode integer default 493)
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
comment on function tarbox.make_directory is 'mkdir, or mkdir -p with p_parents.';

create function tarbox_private.remove_tree(p_path bytea) returns void
language plpgsql volatile as $$
declare
  v_entry tarbox.dirent;
  v_prefix bytea := case when p_path = '\x2f'::bytea then p_path else p_path || '\x2f'::bytea end;
begin
  for v_entry in select * from tarbox.readdir(p_path) loop
    if ((v_entry.attr).mode & 61440) = 16384 then
      perform tarbox_private.remove_tree(v_prefix || v_entry.name);
      perform tarbox.rmdir(v_prefix || v_entry.name);
    else
      perform tarbox.unlink(v_prefix || v_entry.name);
    end if;
  end loop;
end
$$;

create function tarbox.remove(p_path text, p_recursive boolean default false) returns void
language plpgsql volatile as $$
declare
  v_path bytea := convert_to(p_path, 'UTF8');
  v_attr tarbox.attr := tarbox.getattr(v_path);
begin
  if (v_attr.mode & 61440) <> 16384 then
    perform tarbox.unlink(v_path);
  elsif p_recursive then
    perform tarbox_private.remove_tree(v_path);
    if v_attr.ino <> (tarbox_private.current_tenant()).root_ino then
      perform tarbox.rmdir(v_path);
    end if;
  else
    perform tarbox.rmdir(v_path);
  end if;
end
$$;
comment on function tarbox.remove is 'rm, rmdir, or rm -r with p_recursive (the root itself is emptied, not removed).';
