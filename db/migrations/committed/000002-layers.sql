--! Previous: sha1:a59a492e7d2150a7cf8ef3cb6f83fbe72a80e3e2
--! Hash: sha1:369a2cd8a0a6d8de6981f9b65670146b90e57d8d
--! Message: layers

--! split: 001-layers.sql
-- Layers: checkpoints, switching, deleting and diffing, on top of the layer_id that every
-- versioned row has carried since the first migration.
--
-- A checkpoint freezes the working layer and starts an empty one on top; a switch starts
-- a working layer on top of an earlier layer. Both change two rows (layers, tenants) and
-- never touch file rows, so their cost does not depend on the number of files. Indexes on
-- (tenant_id, layer_id) let "what did this layer change" be answered without a scan.

--
-- The layer indexes are on the expression (layer_id + 0), and only queries that ask for a
-- whole layer use that expression. A plain (tenant_id, layer_id) index was measured to win
-- the planner's tie for point lookups (tenant_id, ino, layer_id) while statistics are
-- missing: PL/pgSQL then cached a plan that scanned every row of the working layer for
-- each inode update (141 us per update after 4,000 creates, growing with the layer). An
-- expression index cannot match a point lookup, so those always use the primary key.
create index dentries_by_layer on tarbox_private.dentries (tenant_id, (layer_id + 0));
create index inodes_by_layer on tarbox_private.inodes (tenant_id, (layer_id + 0));
create index file_blocks_by_layer on tarbox_private.file_blocks (tenant_id, (layer_id + 0));
create index xattrs_by_layer on tarbox_private.xattrs (tenant_id, (layer_id + 0));
-- reverse lookups (inode -> its names), to print paths in layer diffs
create index dentries_by_ino on tarbox_private.dentries (tenant_id, ino) where ino is not null;

create type tarbox.layer_info as (
  layer_id bigint,
  parent_layer_id bigint,
  message text,
  created_at timestamptz,
  frozen_at timestamptz,
  is_working boolean,
  in_view boolean,
  changed_entries bigint,
  changed_bytes bigint
);

create type tarbox.layer_change as (
  path text,
  path_bytes bytea,
  change text,
  kind text
);

-- The tenant row, locked: checkpoints and switches of one tenant happen one at a time.
create function tarbox_private.lock_tenant() returns tarbox_private.tenants
language plpgsql volatile as $$
begin
  -- The exclusive side of current_tenant()'s lock; the shared request current_tenant() then
  -- makes in this same transaction is granted at once. No tenant bound: no lock, and
  -- current_tenant() raises TBNTS.
  perform pg_advisory_xact_lock(2003792482, nullif(current_setting('tarbox.tenant_id', true), '')::integer);
  return tarbox_private.current_tenant();
end
$$;

create function tarbox_private.require_layer(p_tenant tarbox_private.tenants, p_layer_id bigint)
returns tarbox_private.layers
language plpgsql stable as $$
declare
  v_layer tarbox_private.layers;
begin
  select * into v_layer from tarbox_private.layers
   where tenant_id = p_tenant.tenant_id and layer_id = p_layer_id;
  if not found then
    perform tarbox_private.fail('TBNOE', format('no such layer: %s', p_layer_id));
  end if;
  return v_layer;
end
$$;

-- The chain of a layer: itself, then its ancestors, newest first.
create function tarbox_private.chain_of(p_tenant_id bigint, p_layer_id bigint) returns bigint[]
language plpgsql stable as $$
declare
  v_chain bigint[];
begin
  with recursive up (layer_id, parent_layer_id, depth) as (
    select l.layer_id, l.parent_layer_id, 0 from tarbox_private.layers l
     where l.tenant_id = p_tenant_id and l.layer_id = p_layer_id
    union all
    select l.layer_id, l.parent_layer_id, up.depth + 1 from tarbox_private.layers l
      join up on l.layer_id = up.parent_layer_id
     where l.tenant_id = p_tenant_id)
  select array_agg(layer_id order by depth) into v_chain from up;
  return v_chain;
end
$$;

create function tarbox_private.layer_has_changes(p_tenant_id bigint, p_layer_id bigint) returns boolean
language plpgsql stable as $$
begin
  return exists (select 1 from tarbox_private.dentries where tenant_id = p_tenant_id and layer_id + 0 = p_layer_id)
      or exists (select 1 from tarbox_private.inodes where tenant_id = p_tenant_id and layer_id + 0 = p_layer_id)
      or exists (select 1 from tarbox_private.file_blocks where tenant_id = p_tenant_id and layer_id + 0 = p_layer_id)
      or exists (select 1 from tarbox_private.xattrs where tenant_id = p_tenant_id and layer_id + 0 = p_layer_id);
end
$$;

-- Make p_layer the base of a fresh working layer and point the tenant at it. Mounts are
-- told with a NOTIFY (a nudge: they drop their caches and read again).
create function tarbox_private.start_working_layer(p_tenant tarbox_private.tenants, p_base bigint)
returns bigint
language plpgsql volatile as $$
declare
  v_layer bigint := nextval('tarbox_private.layer_numbers');
begin
  insert into tarbox_private.layers (tenant_id, layer_id, parent_layer_id) values (p_tenant.tenant_id, v_layer, p_base);
  update tarbox_private.tenants
     set working_layer_id = v_layer,
         layer_chain = v_layer || tarbox_private.chain_of(p_tenant.tenant_id, p_base)
   where tenant_id = p_tenant.tenant_id;
  perform pg_notify('tarbox_layers', p_tenant.tenant_id::text);
  return v_layer;
end
$$;

create function tarbox_private.layer_info(p_tenant tarbox_private.tenants, p_layer tarbox_private.layers)
returns tarbox.layer_info
language plpgsql stable as $$
declare
  v_entries bigint;
  v_bytes bigint;
begin
  -- every file or directory the layer changed has its own inode version in it
  select count(*) into v_entries from tarbox_private.inodes
   where tenant_id = p_tenant.tenant_id and layer_id + 0 = p_layer.layer_id;
  select coalesce(sum(octet_length(c.data)), 0) into v_bytes
    from (select distinct b.chunk_hash from tarbox_private.file_blocks b
           where b.tenant_id = p_tenant.tenant_id and b.layer_id + 0 = p_layer.layer_id and b.chunk_hash is not null) h
    join tarbox_private.chunks c on c.tenant_id = p_tenant.tenant_id and c.hash = h.chunk_hash;
  return row(p_layer.layer_id, p_layer.parent_layer_id, p_layer.message, p_layer.created_at, p_layer.frozen_at,
             p_layer.layer_id = p_tenant.working_layer_id, p_layer.layer_id = any (p_tenant.layer_chain),
             v_entries, v_bytes)::tarbox.layer_info;
end
$$;

-- Checkpoint and switch return the layer without its size of changes (null): counting a
-- layer's rows is not O(1) (10,000 new files: 10,000 rows). list_layers reports the sizes.
create function tarbox_private.layer_summary(p_tenant tarbox_private.tenants, p_layer tarbox_private.layers)
returns tarbox.layer_info
language sql stable as $$
  select row(p_layer.layer_id, p_layer.parent_layer_id, p_layer.message, p_layer.created_at, p_layer.frozen_at,
             p_layer.layer_id = p_tenant.working_layer_id, p_layer.layer_id = any (p_tenant.layer_chain),
             null::bigint, null::bigint)::tarbox.layer_info
$$;

create function tarbox.create_layer(p_message text default null) returns tarbox.layer_info
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.lock_tenant();
  v_frozen tarbox_private.layers;
begin
  if p_message is not null and (length(p_message) > 1000 or p_message ~ '[\x00-\x08\x0b-\x1f]') then
    perform tarbox_private.fail('TBINV', 'layer message must be at most 1000 characters of printable text');
  end if;
  update tarbox_private.layers set frozen_at = now(), message = coalesce(p_message, message)
   where tenant_id = v_tenant.tenant_id and layer_id = v_tenant.working_layer_id
  returning * into v_frozen;
  perform tarbox_private.start_working_layer(v_tenant, v_frozen.layer_id);
  return tarbox_private.layer_summary(tarbox_private.current_tenant(), v_frozen);
end
$$;
comment on function tarbox.create_layer is 'Checkpoint: freeze the working layer (with an optional message) and open an empty working layer on top. O(1). Returns the frozen layer.';

create function tarbox.switch_layer(p_layer_id bigint) returns tarbox.layer_info
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.lock_tenant();
  v_target tarbox_private.layers := tarbox_private.require_layer(v_tenant, p_layer_id);
begin
  if v_target.layer_id = v_tenant.working_layer_id then
    return tarbox_private.layer_summary(v_tenant, v_target);
  end if;
  if tarbox_private.layer_has_changes(v_tenant.tenant_id, v_tenant.working_layer_id) then
    -- nothing is lost by a switch: unsaved changes become a checkpoint of their own
    update tarbox_private.layers
       set frozen_at = now(), message = coalesce(message, format('auto-saved before switching to layer %s', p_layer_id))
     where tenant_id = v_tenant.tenant_id and layer_id = v_tenant.working_layer_id;
  elsif v_target.frozen_at is not null then
    -- an empty working layer holds nothing worth keeping
    delete from tarbox_private.layers where tenant_id = v_tenant.tenant_id and layer_id = v_tenant.working_layer_id;
  end if;
  if v_target.frozen_at is null then
    -- the target is another (unfrozen) working layer left behind: freeze it first
    update tarbox_private.layers set frozen_at = now()
     where tenant_id = v_tenant.tenant_id and layer_id = v_target.layer_id;
  end if;
  perform tarbox_private.start_working_layer(v_tenant, v_target.layer_id);
  return tarbox_private.layer_summary(tarbox_private.current_tenant(), tarbox_private.require_layer(v_tenant, p_layer_id));
end
$$;
comment on function tarbox.switch_layer is 'Show the filesystem exactly as it was in a layer: a new working layer starts on top of it. Unsaved changes are checkpointed first. O(depth of history).';

create function tarbox.list_layers() returns setof tarbox.layer_info
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select (tarbox_private.layer_info(v_tenant, l)).*
      from tarbox_private.layers l
     where l.tenant_id = v_tenant.tenant_id
     order by l.layer_id;
end
$$;
comment on function tarbox.list_layers is 'The layer history: id, parent, message, times, which is the working layer, which are in the current view, and the size of each layer''s changes.';

create function tarbox.current_layer() returns tarbox.layer_info
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return tarbox_private.layer_summary(v_tenant, tarbox_private.require_layer(v_tenant, v_tenant.working_layer_id));
end
$$;
comment on function tarbox.current_layer is 'The working layer (where writes go); its parent is the checkpoint being shown.';

create function tarbox.delete_layer(p_layer_id bigint) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.lock_tenant();
  v_layer tarbox_private.layers := tarbox_private.require_layer(v_tenant, p_layer_id);
  v_child bigint;
  v_hashes bytea[];
begin
  if p_layer_id = any (v_tenant.layer_chain) then
    perform tarbox_private.fail('TBBSY', format('layer %s is part of the current view; switch away from it first', p_layer_id));
  end if;
  select layer_id into v_child from tarbox_private.layers
   where tenant_id = v_tenant.tenant_id and parent_layer_id = p_layer_id limit 1;
  if v_child is not null then
    perform tarbox_private.fail('TBBSY', format('layer %s is the parent of layer %s; delete that one first', p_layer_id, v_child));
  end if;
  delete from tarbox_private.dentries where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id;
  delete from tarbox_private.inodes where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id;
  delete from tarbox_private.xattrs where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id;
  with gone as (
    delete from tarbox_private.file_blocks where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id
    returning chunk_hash)
  select array_agg(distinct chunk_hash) filter (where chunk_hash is not null) into v_hashes from gone;
  delete from tarbox_private.layers where tenant_id = v_tenant.tenant_id and layer_id = p_layer_id;
  if v_hashes is not null then
    perform tarbox_private.release_chunks(v_tenant.tenant_id, v_hashes);
  end if;
end
$$;
comment on function tarbox.delete_layer is 'Delete a layer nothing depends on (not in the current view, no child layer) and release its data. TBBSY otherwise.';

-- The tenant as seen from another layer: same row, other chain.
create function tarbox_private.view_of(p_tenant tarbox_private.tenants, p_layer_id bigint)
returns tarbox_private.tenants
language plpgsql stable as $$
declare
  v_view tarbox_private.tenants := p_tenant;
begin
  perform tarbox_private.require_layer(p_tenant, p_layer_id);
  v_view.working_layer_id := p_layer_id;
  v_view.layer_chain := tarbox_private.chain_of(p_tenant.tenant_id, p_layer_id);
  return v_view;
end
$$;

-- A path of an inode in a view (one of them for hard links), or null if unreachable.
create function tarbox_private.path_of(p_view tarbox_private.tenants, p_ino bigint) returns bytea
language plpgsql stable as $$
declare
  v_path bytea := ''::bytea;
  v_ino bigint := p_ino;
  v_entry record;
  v_found boolean;
  v_depth integer := 0;
begin
  while v_ino <> p_view.root_ino loop
    v_found := false;
    for v_entry in
      select d.parent_ino, d.name from tarbox_private.dentries d
       where d.tenant_id = p_view.tenant_id and d.ino = v_ino and d.layer_id = any (p_view.layer_chain)
       order by d.layer_id desc
    loop
      if (tarbox_private.find_entry(p_view, v_entry.parent_ino, v_entry.name)).ino = v_ino then
        v_path := '\x2f'::bytea || v_entry.name || v_path;
        v_ino := v_entry.parent_ino;
        v_found := true;
        exit;
      end if;
    end loop;
    v_depth := v_depth + 1;
    if not v_found or v_depth > 4096 then
      return null;
    end if;
  end loop;
  return case when v_path = ''::bytea then '\x2f'::bytea else v_path end;
end
$$;

create function tarbox.layer_diff(p_from bigint, p_to bigint) returns setof tarbox.layer_change
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_from tarbox_private.tenants := tarbox_private.view_of(v_tenant, p_from);
  v_to tarbox_private.tenants := tarbox_private.view_of(v_tenant, p_to);
  -- layers in one chain but not the other: only their rows can differ
  v_changed bigint[] := array((select unnest(v_from.layer_chain) except select unnest(v_to.layer_chain))
                              union (select unnest(v_to.layer_chain) except select unnest(v_from.layer_chain)));
begin
  return query
  with entries as (
    select distinct d.parent_ino, d.name from tarbox_private.dentries d
     where d.tenant_id = v_tenant.tenant_id and d.layer_id + 0 = any (v_changed)),
  compared as (
    select e.parent_ino, e.name,
           (tarbox_private.find_entry(v_from, e.parent_ino, e.name)).ino as from_ino,
           (tarbox_private.find_entry(v_to, e.parent_ino, e.name)).ino as to_ino
      from entries e),
  name_changes as (
    select case when c.from_ino is null then tarbox_private.path_of(v_to, c.to_ino)
                else tarbox_private.path_of(v_from, c.from_ino) end as path,
           case when c.from_ino is null then 'added' when c.to_ino is null then 'deleted' else 'modified' end as change,
           coalesce(c.to_ino, c.from_ino) as ino,
           case when c.to_ino is null then v_from else v_to end as view
      from compared c
     where c.from_ino is distinct from c.to_ino),
  touched as (
    select ino from tarbox_private.inodes where tenant_id = v_tenant.tenant_id and layer_id + 0 = any (v_changed)
    union select ino from tarbox_private.file_blocks where tenant_id = v_tenant.tenant_id and layer_id + 0 = any (v_changed)
    union select ino from tarbox_private.xattrs where tenant_id = v_tenant.tenant_id and layer_id + 0 = any (v_changed)),
  content_changes as (
    select tarbox_private.path_of(v_to, t.ino) as path, 'modified' as change, t.ino, v_to as view
      from touched t
     where (tarbox_private.find_inode(v_from, t.ino)).ino is not null
       and (tarbox_private.find_inode(v_to, t.ino)).ino is not null
       and not tarbox_private.is_dir((tarbox_private.find_inode(v_to, t.ino)).mode)),
  all_changes as (
    select * from name_changes union select * from content_changes)
  select distinct on (a.path) tarbox_private.name_text(a.path), a.path, a.change,
         tarbox_private.kind_name((tarbox_private.find_inode(a.view, a.ino)).mode)
    from all_changes a
   where a.path is not null
   order by a.path, a.change;
end
$$;
comment on function tarbox.layer_diff is 'Paths added, modified or deleted between the views of two layers (either order).';
