--! Previous: sha1:7ec6337cd0291a5943c04ccf44aa756b56991590
--! Hash: sha1:a8e08674a2325f7dc17d5a6a62a25677783e65bf
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

-- ---------------------------------------------------------------------------------------
-- Packing without the tenant's exclusive lock

-- Packs of one tenant run one at a time under their own lock (class 2003792484; 2003792482
-- is the tenant lock, 2003792483 audit maintenance). Besides it, a pack holds only the
-- shared tenant lock every call holds, so reads and writes go on while a layer packs: a
-- pack changes only frozen layers (their block rows and text versions), which no write
-- touches. Checkpoints, switches and layer deletions (exclusive) wait for the pack, so the
-- view a pack works in cannot change under it. A second pack waits for the first, then
-- finds its layers packed. A writer racing a pack for a chunk the pack releases is handled
-- as any two writers are: the block's foreign key key-share-locks the chunk (the release
-- skips it), or the commit fails with 23503 and the shim retries it.
create or replace function tarbox.pack_text(p_max_file_bytes bigint default 67108864, p_max_line_bytes integer default 65536)
returns tarbox.pack_result
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants;
  v_layer bigint;
  v_packed record;
  v_result tarbox.pack_result := row(0, 0, 0, 0, 0);
begin
  if p_max_file_bytes is null or p_max_file_bytes < 0 or p_max_file_bytes > 1073741823
     or p_max_line_bytes is null or p_max_line_bytes < 1 then
    perform tarbox_private.fail('TBINV', 'text limits: max file bytes must be 0..1073741823 and max line bytes at least 1');
  end if;
  perform pg_advisory_xact_lock(2003792484, tarbox_private.session_tenant_id()::integer);
  v_tenant := tarbox_private.current_tenant();
  -- oldest first: a layer's ancestors are packed before it, so its deltas can use them
  for v_layer in
    select l.layer_id from tarbox_private.layers l
     where l.tenant_id = v_tenant.tenant_id and l.frozen_at is not null
       and not exists (select 1 from tarbox_private.packed_layers p
                        where p.tenant_id = v_tenant.tenant_id and p.layer_id = l.layer_id)
     order by l.layer_id
  loop
    v_packed := tarbox_private.pack_layer(v_tenant, v_layer, p_max_file_bytes, p_max_line_bytes);
    insert into tarbox_private.packed_layers (tenant_id, layer_id) values (v_tenant.tenant_id, v_layer);
    v_result.layers := v_result.layers + 1;
    v_result.text_files := v_result.text_files + v_packed.text_files;
    v_result.binary_files := v_result.binary_files + v_packed.binary_files;
    v_result.lines_stored := v_result.lines_stored + v_packed.lines_stored;
  end loop;
  -- lines noted for collection before 000010 (deletions collect their lines at once now)
  v_result.lines_released := tarbox_private.collect_lines(v_tenant.tenant_id);
  if v_result.text_files > 0 then
    -- mounts drop cached block maps, which may name chunks released here
    perform pg_notify('tarbox_layers', v_tenant.tenant_id::text);
  end if;
  return v_result;
end
$$;
comment on function tarbox.pack_text is 'Store the text files of every frozen layer not packed yet as line deltas, lines shared per tenant, and release their chunks (docs/text-storage.md). Content never changes; only its storage does. Reads and writes of the tenant go on meanwhile; packs, checkpoints and switches wait.';

-- ---------------------------------------------------------------------------------------
-- Lines go with the last version that uses them

-- 000006 only noted, when text versions were deleted (with their layers), that their
-- tenant's lines needed collecting, and the next pack_text collected them: until then a
-- deleted layer's lines stayed. Now the deleting statement collects them: the lines the
-- deleted versions listed that no remaining version of the tenant lists. Only packs add
-- lines, and deletions of versions (delete_layer, tenant deletion) hold the tenant's
-- exclusive lock, so no pack can be about to reuse a line removed here.
create function tarbox_private.tg_text_versions__collect_lines() returns trigger
language plpgsql volatile as $$
declare
  v_tenant_id bigint;
begin
  for v_tenant_id in select distinct o.tenant_id from old_rows o loop
    with candidates as materialized (
      select distinct u.line_id from old_rows o cross join unnest(o.line_ids) as u (line_id)
       where o.tenant_id = v_tenant_id),
    used as materialized (
      select distinct u.line_id from tarbox_private.text_versions t cross join unnest(t.line_ids) as u (line_id)
       where t.tenant_id = v_tenant_id)
    delete from tarbox_private.lines l
     where l.tenant_id = v_tenant_id
       and l.line_id in (select c.line_id from candidates c)
       and not exists (select 1 from used where used.line_id = l.line_id);
  end loop;
  return null;
end
$$;

drop trigger _100_note_line_collection on tarbox_private.text_versions;
drop function tarbox_private.tg_text_versions__note_line_collection();
create trigger _100_collect_lines
  after delete on tarbox_private.text_versions
  referencing old table as old_rows
  for each statement execute function tarbox_private.tg_text_versions__collect_lines();

-- ---------------------------------------------------------------------------------------
-- Rebuilding a version's bytes

-- As in 000006, plus a faster path for the common case: the ids span a range with no gap
-- (a file's new lines get consecutive ids; a range loses rows only when lines are
-- collected). Then one ordered range scan reads every line of the range into an array,
-- and the version is the array's elements in the order of its ids: no join, no sort.
-- Measured on a 256 KiB file of 4,807 lines (load 15-20, 20 calls each): 7-8 ms against
-- 12-18 ms for the join. The order of unnest() is kept by the aggregate above it (one
-- function scan, no sort or join between them), as apply_hunks relies on too.
create or replace function tarbox_private.lines_content(p_tenant_id bigint, p_ids bigint[]) returns bytea
language plpgsql stable as $$
declare
  v_min bigint;
  v_max bigint;
  v_range bytea[];
begin
  select min(x), max(x) into v_min, v_max from unnest(p_ids) as x;
  if v_min is null then
    return ''::bytea;
  end if;
  if v_max - v_min < 4 * cardinality(p_ids) + 1000 then
    select array_agg(l.data order by l.line_id) into v_range
      from tarbox_private.lines l
     where l.tenant_id = p_tenant_id and l.line_id between v_min and v_max;
    if cardinality(v_range) = v_max - v_min + 1 then
      return (select string_agg(v_range[(u.id - v_min + 1)::integer], ''::bytea) from unnest(p_ids) as u (id));
    end if;
    return tarbox_private.dense_lines_content(p_tenant_id, p_ids, v_min, v_max);
  end if;
  return (select coalesce(string_agg(l.data, ''::bytea order by u.ord), ''::bytea)
            from unnest(p_ids) with ordinality as u (line_id, ord)
            join tarbox_private.lines l on l.tenant_id = p_tenant_id and l.line_id = u.line_id);
end
$$;
