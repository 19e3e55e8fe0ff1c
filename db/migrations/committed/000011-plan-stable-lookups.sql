--! Previous: sha1:a8e08674a2325f7dc17d5a6a62a25677783e65bf
--! Hash: sha1:e83ee2c2fa48313c122e720b618f566eeea8bfb7
--! Message: plan-stable lookups

-- Lookups that keep one plan per session instead of being planned on every call
-- (docs/performance.md, "Plans made on every call").
--
-- The newest visible version of a name or an inode was found with
--     ... and layer_id = any (p_tenant.layer_chain) order by layer_id desc limit 1
-- The chain is a parameter of the cached plan, so a generic plan must assume an array of
-- ten layers: ten index descents, cost 48 against 8.4 for the custom plan of a one-layer
-- chain. PL/pgSQL's plan cache therefore never settled on the generic plan and planned
-- the statement again on every execution. A probe on BuildCachedPlan while a mount ran 200
-- files through create/chmod/utime/stat/rename/symlink/link/read/unlink counted 19,394
-- plannings of walk's dentry lookup and 3,600 of find_inode's, a planning per path
-- component of every call. With plan_cache_mode = force_generic_plan a create ran 1,992
-- calls/s against 1,403 (pgbench, one connection).
--
-- The chain now filters rows the primary-key prefix finds, instead of being a condition of
-- the index: (tenant_id, parent_ino, name) or (tenant_id, ino) are equalities on the key, the
-- versions of one name or inode in all layers are few, and the backward scan stops at the
-- first one whose layer is in the chain. Same rows, same order, same result. Writing the
-- column as (layer_id + 0) keeps the planner from turning the filter back into an index
-- condition; generic and custom plans then cost the same, and the generic one is kept.

-- Newest visible directory entry for (parent, name); a whiteout yields ino null.
create or replace function tarbox_private.find_entry(p_tenant tarbox_private.tenants, p_parent bigint, p_name bytea,
  out ino bigint, out kind smallint)
language plpgsql stable as $$
begin
  select d.ino, d.kind into ino, kind
    from tarbox_private.dentries d
   where d.tenant_id = p_tenant.tenant_id
     and d.parent_ino = p_parent
     and d.name = p_name
     and (d.layer_id + 0) = any (p_tenant.layer_chain)
   order by d.layer_id desc
   limit 1;
end
$$;

-- Newest visible version of an inode, or null when it does not exist in this view.
create or replace function tarbox_private.find_inode(p_tenant tarbox_private.tenants, p_ino bigint)
returns tarbox_private.inodes
language plpgsql stable as $$
declare
  v_inode tarbox_private.inodes;
begin
  select i.* into v_inode
    from tarbox_private.inodes i
   where i.tenant_id = p_tenant.tenant_id
     and i.ino = p_ino
     and (i.layer_id + 0) = any (p_tenant.layer_chain)
   order by i.layer_id desc
   limit 1;
  if v_inode.deleted then
    return null;
  end if;
  return v_inode;
end
$$;

-- walk (000009), its component lookup written the same way; otherwise unchanged.
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
    -- find_entry's query (kept inline, 000009)
    select d.ino, d.kind into v_entry
      from tarbox_private.dentries d
     where d.tenant_id = p_tenant.tenant_id and d.parent_ino = v_cur and d.name = v_comp
       and (d.layer_id + 0) = any (p_tenant.layer_chain)  -- a filter: see the top of this file
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

-- SQL functions PostgreSQL could not inline, and so planned their query on every call from
-- PL/pgSQL (~75 us each here; chown and every commit by a non-root writer call kill_priv).
-- A STRICT SQL function is inlined only when its body is strict too, and a CASE or a
-- greatest() is not. Same results for every input, null included.

-- Not STRICT any more: a null mode still gives null (both branches of the CASE are null).
create or replace function tarbox_private.kill_priv(p_mode integer) returns integer
language sql immutable called on null input parallel safe as $$
  select case when (p_mode & 8) <> 0 then p_mode & ~(2048 | 1024) else p_mode & ~2048 end
$$;

-- repeat() already gives '' for a count below one, so greatest() was not needed.
create or replace function tarbox_private.zeros(p_length integer) returns bytea
language sql immutable strict parallel safe as $$
  select decode(repeat('00', p_length), 'hex')
$$;
