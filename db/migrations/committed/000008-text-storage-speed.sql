--! Previous: sha1:f5cd7ad4b2c0689655b7b21639c252b2e1f480c9
--! Hash: sha1:356dd4c3aab69028cb1d1bb814016d936a0ab187
--! Message: text storage speed

-- Text storage (000006), faster and less in the way (docs/text-storage.md):
-- * diffs of two versions stored one against the other come from the stored delta
--   (tarbox.file_delta), not from both versions' whole id lists;
-- * packing no longer holds the tenant's exclusive lock: readers and writers go on while a
--   layer packs; packs of one tenant still run one at a time.

-- ---------------------------------------------------------------------------------------
-- Diffs from stored deltas

-- The layer of the packed text version that is an inode's whole content in a view, or null
-- (no version, or blocks written after it overlay or resize it). Was inline in
-- view_line_ids (000006), which now calls it.
create function tarbox_private.whole_text_layer(p_view tarbox_private.tenants, p_inode tarbox_private.inodes)
returns bigint
language plpgsql stable as $$
declare
  v_text record := tarbox_private.visible_text(p_view, p_inode.ino);
begin
  if v_text.layer_id is null or v_text.byte_size <> p_inode.size
     or exists (select 1 from tarbox_private.file_blocks b
                 where b.tenant_id = p_view.tenant_id and b.ino = p_inode.ino
                   and b.layer_id = any (p_view.layer_chain) and b.layer_id > v_text.layer_id) then
    return null;
  end if;
  return v_text.layer_id;
end
$$;

create or replace function tarbox_private.view_line_ids(p_view tarbox_private.tenants, p_inode tarbox_private.inodes,
  p_max_line_bytes integer default 65536)
returns bigint[]
language plpgsql stable as $$
declare
  v_layer bigint;
  v_lines bytea[];
  v_ids bigint[];
begin
  if p_inode.ino is null or not tarbox_private.is_reg(p_inode.mode) then
    return null;
  end if;
  v_layer := tarbox_private.whole_text_layer(p_view, p_inode);
  if v_layer is not null then
    return tarbox_private.text_line_ids(p_view.tenant_id, p_inode.ino, v_layer);
  end if;
  if p_inode.size > 1073741823 then
    return null;
  end if;
  v_lines := tarbox_private.split_lines(tarbox_private.read_bytes(p_view, p_inode, 0, p_inode.size::integer), p_max_line_bytes);
  if v_lines is null then
    return null;
  end if;
  select coalesce(array_agg(coalesce(l.line_id,
                  -1 - ('x' || encode(substring(sha256(u.data) from 1 for 8), 'hex'))::bit(63)::bigint) order by u.ord), '{}')
    into v_ids
    from unnest(v_lines) with ordinality as u (data, ord)
    left join tarbox_private.lines l on l.tenant_id = p_view.tenant_id and l.hash = sha256(u.data);
  return v_ids;
end
$$;

create function tarbox.file_delta(p_path text, p_from bigint, p_to bigint)
returns table (from_lines integer, hunks integer[], from_ids bigint[], to_ids bigint[])
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_a tarbox_private.inodes := tarbox_private.file_in(v_tenant, p_from, p_path);
  v_b tarbox_private.inodes := tarbox_private.file_in(v_tenant, p_to, p_path);
  v_a_layer bigint;
  v_b_layer bigint;
  v_delta tarbox_private.text_versions;
  v_base bigint[];
begin
  if v_a.ino is null or v_b.ino is null or v_a.ino <> v_b.ino
     or not tarbox_private.is_reg(v_a.mode) or not tarbox_private.is_reg(v_b.mode) then
    return;
  end if;
  v_a_layer := tarbox_private.whole_text_layer(tarbox_private.view_of(v_tenant, p_from), v_a);
  v_b_layer := tarbox_private.whole_text_layer(tarbox_private.view_of(v_tenant, p_to), v_b);
  select * into v_delta from tarbox_private.text_versions t
   where t.tenant_id = v_tenant.tenant_id and t.ino = v_b.ino and t.layer_id = v_b_layer;
  if v_a_layer is null or v_delta.base_layer_id is distinct from v_a_layer then
    return;
  end if;
  v_base := tarbox_private.text_line_ids(v_tenant.tenant_id, v_a.ino, v_a_layer);
  from_lines := cardinality(v_base);
  hunks := v_delta.hunks;
  to_ids := v_delta.line_ids;
  -- the replaced ids of every hunk, one after the other (set-based: no array grown in a loop)
  select coalesce(array_agg(u.id order by h.k, u.ord), '{}') into from_ids
    from generate_series(1, cardinality(v_delta.hunks) / 3) as h (k)
    cross join lateral unnest(v_base[v_delta.hunks[3 * h.k - 2] + 1 : v_delta.hunks[3 * h.k - 2] + v_delta.hunks[3 * h.k - 1]])
         with ordinality as u (id, ord);
  return next;
end
$$;
comment on function tarbox.file_delta is 'When the file''s version in p_to is stored as a delta against its version in p_from: the lines of p_from, the hunks (triples: lines kept before, lines of p_from replaced, lines of p_to inserted), the replaced line ids and the inserted ones. No row otherwise (diff the whole line id lists). tarbox diff starts here.';
