--! Previous: sha1:7e9b693eab265424004ee2de4258c8bfeee8a4d9
--! Hash: sha1:aee6e4d57c7a6be0ce0b5c699da8e9f444d5f4d1
--! Message: text storage

-- Git-like text storage (docs/text-storage.md has the rule and the reasons).
--
-- The write path is unchanged: mounts and SQL keep writing content-addressed chunks. When a
-- layer is frozen, tarbox.pack_text() (the `git gc` of Tarbox; the CLI, the mount after a
-- checkpoint and psql call it) rewrites the content of every text file that layer changed
-- as a list of line ids, stored as a delta against the file's previous text version, and
-- releases the chunks nobody needs any more. Lines are stored once per tenant, whichever
-- file or layer holds them. Binary files keep their chunks.
--
-- Reads stay on the block path: a packed version shows its blocks as 25-byte references
-- (0x00, layer, ino, block number) instead of 32-byte sha256 chunk hashes, and
-- tarbox.read_chunks turns a reference into the block's bytes by joining the version's line
-- ids with the lines. Those references name immutable bytes (a frozen layer's content), so
-- the shim's chunk cache keeps them like any chunk.

create sequence tarbox_private.line_numbers as bigint;

create table tarbox_private.lines (
  tenant_id bigint not null references tarbox_private.tenants on delete cascade,
  line_id bigint not null default nextval('tarbox_private.line_numbers'),
  hash bytea not null,
  data bytea not null,
  primary key (tenant_id, line_id)
);
-- line_id included: mapping a line to its id is an index-only scan
create unique index lines_by_hash on tarbox_private.lines (tenant_id, hash) include (line_id);
comment on table tarbox_private.lines is 'Lines of text files, once per tenant: sha256(data) -> data. data keeps its terminator (LF or CRLF); the last line of a file may have none.';

create table tarbox_private.text_versions (
  tenant_id bigint not null,
  ino bigint not null,
  layer_id bigint not null,
  -- null: line_ids is the whole file; else a delta against the version in base_layer_id (an
  -- ancestor layer, so it cannot be deleted before this one)
  base_layer_id bigint,
  depth integer not null check (depth >= 0),
  line_count integer not null,
  byte_size bigint not null,
  line_ids bigint[] not null,
  -- delta: triples (lines of the base kept before the hunk, base lines replaced, lines
  -- inserted); the inserted ids of every hunk follow each other in line_ids
  hunks integer[],
  primary key (tenant_id, ino, layer_id),
  foreign key (tenant_id, layer_id) references tarbox_private.layers on delete cascade,
  foreign key (tenant_id, ino, base_layer_id) references tarbox_private.text_versions (tenant_id, ino, layer_id)
);
comment on table tarbox_private.text_versions is 'Packed text content of an inode in a frozen layer: its line ids, whole or as a delta against an earlier version (chains at most 50 deep).';

create table tarbox_private.packed_layers (
  tenant_id bigint not null,
  layer_id bigint not null,
  packed_at timestamptz not null default now(),
  primary key (tenant_id, layer_id),
  foreign key (tenant_id, layer_id) references tarbox_private.layers on delete cascade
);
comment on table tarbox_private.packed_layers is 'Frozen layers whose text files pack_text has already converted.';

create type tarbox.pack_result as (
  layers integer,
  text_files integer,
  binary_files integer,
  lines_stored bigint,
  lines_released bigint
);

create type tarbox.file_version as (
  layer_id bigint,
  parent_layer_id bigint,
  message text,
  created_at timestamptz,
  frozen_at timestamptz,
  is_working boolean,
  size bigint,
  storage text,
  line_count integer
);

-- ---------------------------------------------------------------------------------------
-- Block references to packed text

create function tarbox_private.text_block_ref(p_layer_id bigint, p_ino bigint, p_block_no bigint) returns bytea
language sql immutable strict parallel safe as $$
  select '\x00'::bytea || int8send(p_layer_id) || int8send(p_ino) || int8send(p_block_no)
$$;

create function tarbox_private.ref_part(p_ref bytea, p_part integer) returns bigint
language sql immutable strict parallel safe as $$
  select ('x' || encode(substring(p_ref from 2 + 8 * p_part for 8), 'hex'))::bit(64)::bigint
$$;

-- The newest packed text version of an inode in a view (its layer and size), if any.
create function tarbox_private.visible_text(p_tenant tarbox_private.tenants, p_ino bigint,
  out layer_id bigint, out byte_size bigint)
language plpgsql stable as $$
begin
  select t.layer_id, t.byte_size into layer_id, byte_size
    from tarbox_private.text_versions t
   where t.tenant_id = p_tenant.tenant_id and t.ino = p_ino and t.layer_id = any (p_tenant.layer_chain)
   order by t.layer_id desc
   limit 1;
end
$$;

-- Apply a delta's hunks to its base's line ids. A few hunks: array slices, last hunk first so
-- positions stay valid. Many hunks: re-slicing the whole array per hunk is quadratic (1,000
-- hunks over 100,000 lines took seconds), so the segments (kept base, inserted, ...) are
-- unnested in order and aggregated once.
create function tarbox_private.apply_hunks(p_base bigint[], p_hunks integer[], p_inserted bigint[]) returns bigint[]
language plpgsql immutable as $$
declare
  v_ids bigint[] := p_base;
  v_n integer := cardinality(p_hunks) / 3;
  v_offsets integer[] := array[0];
  v_i integer;
begin
  for v_i in 1 .. v_n loop
    v_offsets := v_offsets || (v_offsets[v_i] + p_hunks[3 * v_i]);
  end loop;
  if v_n <= 8 then
    for v_i in reverse v_n .. 1 loop
      v_ids := v_ids[1 : p_hunks[3 * v_i - 2]]
            || p_inserted[v_offsets[v_i] + 1 : v_offsets[v_i] + p_hunks[3 * v_i]]
            || v_ids[p_hunks[3 * v_i - 2] + p_hunks[3 * v_i - 1] + 1 : cardinality(v_ids)];
    end loop;
    return v_ids;
  end if;
  -- segment 2i-1: the base lines kept before hunk i; 2i: its inserted lines; 2n+1: the rest.
  -- The rows come out of the nested loop in segment order, so array_agg needs no sort.
  select coalesce(array_agg(u.id), '{}') into v_ids
    from generate_series(1, 2 * v_n + 1) as g (seg)
    cross join lateral unnest(case
      when g.seg = 2 * v_n + 1 then p_base[p_hunks[3 * v_n - 2] + p_hunks[3 * v_n - 1] + 1 : cardinality(p_base)]
      when g.seg % 2 = 0 then p_inserted[v_offsets[g.seg / 2] + 1 : v_offsets[g.seg / 2] + p_hunks[3 * (g.seg / 2)]]
      when g.seg = 1 then p_base[1 : p_hunks[1]]
      else p_base[p_hunks[3 * (g.seg / 2) - 2] + p_hunks[3 * (g.seg / 2) - 1] + 1 : p_hunks[3 * (g.seg / 2 + 1) - 2]]
    end) as u (id);
  return v_ids;
end
$$;

-- The line ids of a packed version: its chain of deltas (at most 50) applied to the whole
-- list it starts from. Array slices are C code, so this costs O(lines) per link.
create function tarbox_private.text_line_ids(p_tenant_id bigint, p_ino bigint, p_layer_id bigint) returns bigint[]
language plpgsql stable as $$
declare
  v_link record;
  v_ids bigint[];
begin
  for v_link in
    with recursive links (layer_id, base_layer_id, depth) as (
      select t.layer_id, t.base_layer_id, t.depth from tarbox_private.text_versions t
       where t.tenant_id = p_tenant_id and t.ino = p_ino and t.layer_id = p_layer_id
      union all
      select t.layer_id, t.base_layer_id, t.depth from tarbox_private.text_versions t
        join links l on t.layer_id = l.base_layer_id
       where t.tenant_id = p_tenant_id and t.ino = p_ino)
    select t.base_layer_id, t.line_ids, t.hunks
      from links l
      join tarbox_private.text_versions t on t.tenant_id = p_tenant_id and t.ino = p_ino and t.layer_id = l.layer_id
     order by l.depth
  loop
    if v_link.base_layer_id is null then
      v_ids := v_link.line_ids;
    else
      v_ids := tarbox_private.apply_hunks(v_ids, v_link.hunks, v_link.line_ids);
    end if;
  end loop;
  return v_ids;
end
$$;

create function tarbox_private.dense_lines_content(p_tenant_id bigint, p_ids bigint[], p_min bigint, p_max bigint)
returns bytea
language sql stable
set enable_nestloop = off as $$
  select coalesce(string_agg(l.data, ''::bytea order by u.ord), ''::bytea)
    from unnest(p_ids) with ordinality as u (line_id, ord)
    join (select k.line_id, k.data from tarbox_private.lines k
           where k.tenant_id = p_tenant_id and k.line_id between p_min and p_max) l on l.line_id = u.line_id
$$;

-- A version's bytes: its lines joined in order. Probing the primary key once per line costs
-- ~10 us a line; when the ids are dense (a file's new lines get consecutive ids), one range
-- scan of the lines between the smallest and largest id and a hash join cost ~1 us a line.
create function tarbox_private.lines_content(p_tenant_id bigint, p_ids bigint[]) returns bytea
language plpgsql stable as $$
declare
  v_min bigint;
  v_max bigint;
begin
  select min(x), max(x) into v_min, v_max from unnest(p_ids) as x;
  if v_min is null then
    return ''::bytea;
  end if;
  if v_max - v_min < 4 * cardinality(p_ids) + 1000 then
    return tarbox_private.dense_lines_content(p_tenant_id, p_ids, v_min, v_max);
  end if;
  return (select coalesce(string_agg(l.data, ''::bytea order by u.ord), ''::bytea)
            from unnest(p_ids) with ordinality as u (line_id, ord)
            join tarbox_private.lines l on l.tenant_id = p_tenant_id and l.line_id = u.line_id);
end
$$;

create function tarbox_private.text_content(p_tenant_id bigint, p_ino bigint, p_layer_id bigint) returns bytea
language plpgsql stable as $$
begin
  return tarbox_private.lines_content(p_tenant_id, tarbox_private.text_line_ids(p_tenant_id, p_ino, p_layer_id));
end
$$;

-- The bytes a block hash names: a chunk, or a block of packed text (p_text caches the
-- version's whole content for callers that read several blocks of it).
create function tarbox_private.chunk_data(p_tenant tarbox_private.tenants, p_hash bytea) returns bytea
language plpgsql stable as $$
declare
  v_data bytea;
begin
  if octet_length(p_hash) = 25 then
    return substring(tarbox_private.text_content(p_tenant.tenant_id, tarbox_private.ref_part(p_hash, 1),
                                                 tarbox_private.ref_part(p_hash, 0))
                     from (tarbox_private.ref_part(p_hash, 2) * p_tenant.block_size + 1)::integer
                     for p_tenant.block_size);
  end if;
  select c.data into v_data from tarbox_private.chunks c
   where c.tenant_id = p_tenant.tenant_id and c.hash = p_hash;
  return v_data;
end
$$;

-- ---------------------------------------------------------------------------------------
-- The block path, aware of packed text. Same signatures as in 000001; the only change is
-- that a packed text version supplies every block of the file below any newer block rows.

create or replace function tarbox_private.visible_blocks(p_tenant tarbox_private.tenants, p_ino bigint,
  p_first bigint, p_last bigint)
returns table (block_no bigint, chunk_hash bytea)
language plpgsql stable as $$
declare
  v_text record := tarbox_private.visible_text(p_tenant, p_ino);
begin
  if v_text.layer_id is null then
    return query
      select distinct on (b.block_no) b.block_no, b.chunk_hash
        from tarbox_private.file_blocks b
       where b.tenant_id = p_tenant.tenant_id and b.ino = p_ino
         and b.block_no between p_first and p_last
         and b.layer_id = any (p_tenant.layer_chain)
       order by b.block_no, b.layer_id desc;
    return;
  end if;
  -- the text version is the whole file as of its layer: older block rows do not count
  return query
    select distinct on (v.block_no) v.block_no, v.chunk_hash
      from (select b.block_no, b.layer_id, b.chunk_hash
              from tarbox_private.file_blocks b
             where b.tenant_id = p_tenant.tenant_id and b.ino = p_ino
               and b.block_no between p_first and p_last
               and b.layer_id = any (p_tenant.layer_chain) and b.layer_id > v_text.layer_id
            union all
            select g.n, v_text.layer_id, tarbox_private.text_block_ref(v_text.layer_id, p_ino, g.n)
              from generate_series(greatest(p_first, 0),
                                   least(p_last, (v_text.byte_size - 1) / p_tenant.block_size)) as g (n)) v
     order by v.block_no, v.layer_id desc;
end
$$;

create or replace function tarbox_private.block_data(p_tenant tarbox_private.tenants, p_ino bigint, p_block_no bigint)
returns bytea
language plpgsql stable as $$
declare
  v_hash bytea;
begin
  select v.chunk_hash into v_hash from tarbox_private.visible_blocks(p_tenant, p_ino, p_block_no, p_block_no) v;
  if v_hash is null then
    return null;
  end if;
  return tarbox_private.chunk_data(p_tenant, v_hash);
end
$$;

-- Bytes [p_offset, p_offset + p_length) of an inode, clamped to its size.
create or replace function tarbox_private.read_bytes(p_tenant tarbox_private.tenants, p_inode tarbox_private.inodes,
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
  v_data bytea;
  v_text bytea;                  -- a packed version's content, built once for all its blocks
begin
  perform tarbox_private.require_regular(p_inode);
  if p_offset < 0 or p_length < 0 then
    perform tarbox_private.fail('TBINV', 'negative offset or length');
  end if;
  if p_offset >= v_end then
    return ''::bytea;
  end if;
  for v_block in
    select v.block_no, v.chunk_hash
      from tarbox_private.visible_blocks(p_tenant, p_inode.ino, p_offset / v_bs, (v_end - 1) / v_bs) v
     where v.chunk_hash is not null
     order by v.block_no
  loop
    if octet_length(v_block.chunk_hash) = 25 then
      if v_text is null then
        v_text := tarbox_private.text_content(p_tenant.tenant_id, p_inode.ino, tarbox_private.ref_part(v_block.chunk_hash, 0));
      end if;
      v_data := substring(v_text from (v_block.block_no * v_bs + 1)::integer for v_bs);
    else
      v_data := tarbox_private.chunk_data(p_tenant, v_block.chunk_hash);
    end if;
    v_start := v_block.block_no * v_bs;
    if v_start > v_next then
      v_result := v_result || tarbox_private.zeros((v_start - v_next)::integer);
      v_next := v_start;
    end if;
    v_piece := substring(v_data from (v_next - v_start + 1)::integer
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

-- Cut or extend a locked inode to p_size; the caller saves the inode. As in 000001, except
-- that the blocks to hide past the new end are the visible blocks below the working layer
-- (which include a packed text version's), not just block rows.
create or replace function tarbox_private.truncate_bytes(p_tenant tarbox_private.tenants, p_inode tarbox_private.inodes,
  p_size bigint, p_uid integer)
returns tarbox_private.inodes
language plpgsql volatile as $$
declare
  v_bs integer := p_tenant.block_size;
  v_first_gone bigint := (p_size + v_bs - 1) / v_bs;   -- first block entirely past the end
  v_tail bigint := p_size / v_bs;                      -- block cut in the middle, if any
  v_below tarbox_private.tenants := p_tenant;
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
    v_below.layer_chain := p_tenant.layer_chain[2:];
    insert into tarbox_private.file_blocks (tenant_id, ino, block_no, layer_id, chunk_hash)
    select p_tenant.tenant_id, p_inode.ino, v.block_no, p_tenant.working_layer_id, null::bytea
      from tarbox_private.visible_blocks(v_below, p_inode.ino, v_first_gone, 9223372036854775806) v
     where v.chunk_hash is not null
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

create or replace function tarbox.read_chunks(p_hashes bytea[]) returns table (hash bytea, data bytea)
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_file record;
  v_text bytea;
begin
  return query
    select c.hash, c.data from tarbox_private.chunks c
     where c.tenant_id = v_tenant.tenant_id and c.hash = any (p_hashes);
  -- blocks of packed text: build each version's content once, cut it into blocks
  for v_file in
    select tarbox_private.ref_part(h.ref, 0) as layer_id, tarbox_private.ref_part(h.ref, 1) as ino,
           array_agg(h.ref) as refs
      from unnest(p_hashes) as h (ref)
     where octet_length(h.ref) = 25
     group by 1, 2
  loop
    if not exists (select 1 from tarbox_private.text_versions t
                    where t.tenant_id = v_tenant.tenant_id and t.ino = v_file.ino and t.layer_id = v_file.layer_id) then
      continue;  -- like an unknown chunk hash: no row
    end if;
    v_text := tarbox_private.text_content(v_tenant.tenant_id, v_file.ino, v_file.layer_id);
    return query
      select r.ref, substring(v_text from (tarbox_private.ref_part(r.ref, 2) * v_tenant.block_size + 1)::integer
                                     for v_tenant.block_size)
        from unnest(v_file.refs) as r (ref);
  end loop;
end
$$;
comment on function tarbox.read_chunks is 'Chunk contents by hash (the shim reads them with COPY ... TO STDOUT in binary); 25-byte hashes name blocks of packed text versions.';

-- ---------------------------------------------------------------------------------------
-- Packing

-- The lines of a text, or null when it is not text by the rule of docs/text-storage.md:
-- valid UTF-8 (so no NUL: PostgreSQL rejects it in text) and no line longer than
-- p_max_line_bytes. Each line keeps its terminator, so joining them gives the bytes back.
create function tarbox_private.split_lines(p_content bytea, p_max_line_bytes integer) returns bytea[]
language plpgsql immutable as $$
declare
  v_text text;
  v_lines bytea[];
begin
  if octet_length(p_content) = 0 then
    return '{}';
  end if;
  begin
    v_text := convert_from(p_content, 'UTF8');
  exception when character_not_in_repertoire or untranslatable_character then
    return null;
  end;
  -- "a\nb\n" splits into a, b, '' and "a\nb" into a, b: every piece but the last had a \n
  select array_agg(convert_to(case when u.ord < u.n then u.piece || E'\n' else u.piece end, 'UTF8') order by u.ord)
    into v_lines
    from (select s.piece, s.ord, count(*) over () as n
            from unnest(string_to_array(v_text, E'\n')) with ordinality as s (piece, ord)) u
   where not (u.ord = u.n and u.piece = '');
  if exists (select 1 from unnest(v_lines) as l (data) where octet_length(l.data) > p_max_line_bytes) then
    return null;
  end if;
  return coalesce(v_lines, '{}');
end
$$;

-- Line ids of these lines, storing the ones the tenant lacks (in file order, so a new
-- file's ids run consecutively).
create function tarbox_private.store_lines(p_tenant_id bigint, p_lines bytea[], out line_ids bigint[], out stored bigint)
language plpgsql volatile as $$
declare
  v_hashes bytea[];
begin
  select array_agg(sha256(l.data) order by l.ord) into v_hashes from unnest(p_lines) with ordinality as l (data, ord);
  insert into tarbox_private.lines (tenant_id, hash, data)
  select p_tenant_id, f.hash, f.data
    from (select distinct on (u.hash) u.hash, u.data, u.ord
            from unnest(v_hashes, p_lines) with ordinality as u (hash, data, ord)
           where not exists (select 1 from tarbox_private.lines l where l.tenant_id = p_tenant_id and l.hash = u.hash)
           order by u.hash, u.ord) f
   order by f.ord
  on conflict (tenant_id, hash) do nothing;
  get diagnostics stored = row_count;
  select coalesce(array_agg(l.line_id order by u.ord), '{}') into line_ids
    from unnest(v_hashes) with ordinality as u (hash, ord)
    join tarbox_private.lines l on l.tenant_id = p_tenant_id and l.hash = u.hash;
end
$$;

-- Length of the longest common prefix of two id lists, by binary search over slice
-- comparisons (C code: O(n log n) element compares, no PL/pgSQL loop over lines).
create function tarbox_private.common_prefix(p_a bigint[], p_b bigint[]) returns integer
language plpgsql immutable as $$
declare
  v_lo integer := 0;
  v_hi integer := least(cardinality(p_a), cardinality(p_b));
  v_mid integer;
begin
  while v_lo < v_hi loop
    v_mid := (v_lo + v_hi + 1) / 2;
    if p_a[1 : v_mid] = p_b[1 : v_mid] then v_lo := v_mid; else v_hi := v_mid - 1; end if;
  end loop;
  return v_lo;
end
$$;

-- Common suffix of two id lists that does not overlap a common prefix of p_skip lines.
create function tarbox_private.common_suffix(p_a bigint[], p_b bigint[], p_skip integer) returns integer
language plpgsql immutable as $$
declare
  v_na integer := cardinality(p_a);
  v_nb integer := cardinality(p_b);
  v_lo integer := 0;
  v_hi integer := least(cardinality(p_a), cardinality(p_b)) - p_skip;
  v_mid integer;
begin
  while v_lo < v_hi loop
    v_mid := (v_lo + v_hi + 1) / 2;
    if p_a[v_na - v_mid + 1 : v_na] = p_b[v_nb - v_mid + 1 : v_nb] then v_lo := v_mid; else v_hi := v_mid - 1; end if;
  end loop;
  return v_lo;
end
$$;

-- The changed regions between two id lists, set-based (no loop over lines): lines that occur
-- once in each list and whose pairs cross no other such pair anchor both sides (patience
-- diff's anchors, minus moved lines); every gap between consecutive anchors whose two sides
-- differ is a hunk: a_before lines of a come before it, a_count lines of a are replaced by
-- b_count lines of b, which start after b_before lines of b.
-- unnest() is estimated at 10 rows, which made the planner join the two sides with a nested
-- loop (19 s for 10,000 lines, measured); hash and merge joins take milliseconds.
create function tarbox_private.line_hunks(p_a bigint[], p_b bigint[])
returns table (a_before integer, a_count integer, b_before integer, b_count integer)
language plpgsql immutable
set enable_nestloop = off as $$
begin
  return query
  with ua as (
    select x.id, min(x.i)::integer as i from unnest(p_a) with ordinality as x (id, i) group by x.id having count(*) = 1),
  ub as (
    select y.id, min(y.j)::integer as j from unnest(p_b) with ordinality as y (id, j) group by y.id having count(*) = 1),
  pairs as (
    select ua.i, ub.j,
           max(ub.j) over (order by ua.i rows between unbounded preceding and 1 preceding) as max_before,
           -- both frames start unbounded, so PostgreSQL computes them in one pass (a frame
           -- ending unbounded following is recomputed per row: quadratic)
           min(ub.j) over (order by ua.i desc rows between unbounded preceding and 1 preceding) as min_after
      from ua join ub on ub.id = ua.id),
  anchors as (
    select 0 as i, 0 as j
    union all select p.i, p.j from pairs p
     where (p.max_before is null or p.max_before < p.j) and (p.min_after is null or p.min_after > p.j)
    union all select cardinality(p_a) + 1, cardinality(p_b) + 1),
  gaps as (
    select a.i, a.j, lead(a.i) over (order by a.i) as next_i, lead(a.j) over (order by a.i) as next_j from anchors a)
  select g.i, g.next_i - g.i - 1, g.j, g.next_j - g.j - 1
    from gaps g
   where g.next_i is not null and (g.next_i - g.i > 1 or g.next_j - g.j > 1)
     and p_a[g.i + 1 : g.next_i - 1] is distinct from p_b[g.j + 1 : g.next_j - 1]
   order by g.i;
end
$$;

-- Store the text version of an inode in a frozen layer: a delta against the inode's newest
-- text version in an ancestor layer when the chain is under 50 links (as git bounds pack
-- depth) and the delta holds fewer than half the file's ids, else the whole list.
create function tarbox_private.save_text_version(p_view tarbox_private.tenants, p_ino bigint,
  p_ids bigint[], p_size bigint)
returns void
language plpgsql volatile as $$
declare
  v_base record;
  v_base_ids bigint[];
  v_n integer := cardinality(p_ids);
  v_a_before integer[];
  v_a_count integer[];
  v_b_before integer[];
  v_b_count integer[];
  v_k integer;
  v_hunks integer[] := '{}';
  v_inserted bigint[] := '{}';
begin
  select t.layer_id, t.depth into v_base
    from tarbox_private.text_versions t
   where t.tenant_id = p_view.tenant_id and t.ino = p_ino and t.layer_id = any (p_view.layer_chain[2:])
   order by t.layer_id desc
   limit 1;
  if v_base.layer_id is not null and v_base.depth < 49 then
    v_base_ids := tarbox_private.text_line_ids(p_view.tenant_id, p_ino, v_base.layer_id);
    select array_agg(h.a_before order by h.a_before), array_agg(h.a_count order by h.a_before),
           array_agg(h.b_before order by h.a_before), array_agg(h.b_count order by h.a_before)
      into v_a_before, v_a_count, v_b_before, v_b_count
      from tarbox_private.line_hunks(v_base_ids, p_ids) h;
    for v_k in 1 .. coalesce(cardinality(v_a_before), 0) loop
      v_hunks := v_hunks || array[v_a_before[v_k], v_a_count[v_k], v_b_count[v_k]];
      v_inserted := v_inserted || p_ids[v_b_before[v_k] + 1 : v_b_before[v_k] + v_b_count[v_k]];
    end loop;
    if cardinality(v_inserted) + cardinality(v_hunks) <= v_n / 2 then
      insert into tarbox_private.text_versions
        (tenant_id, ino, layer_id, base_layer_id, depth, line_count, byte_size, line_ids, hunks)
      values (p_view.tenant_id, p_ino, p_view.working_layer_id, v_base.layer_id, v_base.depth + 1, v_n, p_size,
              v_inserted, v_hunks);
      return;
    end if;
  end if;
  insert into tarbox_private.text_versions
    (tenant_id, ino, layer_id, base_layer_id, depth, line_count, byte_size, line_ids, hunks)
  values (p_view.tenant_id, p_ino, p_view.working_layer_id, null, 0, v_n, p_size, p_ids, null);
end
$$;

-- Convert the text files a frozen layer changed. Returns (text files, binary files, lines stored).
create function tarbox_private.pack_layer(p_tenant tarbox_private.tenants, p_layer_id bigint,
  p_max_file_bytes bigint, p_max_line_bytes integer,
  out text_files integer, out binary_files integer, out lines_stored bigint)
language plpgsql volatile as $$
declare
  v_view tarbox_private.tenants := tarbox_private.view_of(p_tenant, p_layer_id);
  v_ino bigint;
  v_inode tarbox_private.inodes;
  v_lines bytea[];
  v_stored record;
  v_hashes bytea[];
begin
  text_files := 0;
  binary_files := 0;
  lines_stored := 0;
  for v_ino in
    select distinct b.ino from tarbox_private.file_blocks b
     where b.tenant_id = p_tenant.tenant_id and b.layer_id + 0 = p_layer_id
     order by b.ino
  loop
    v_inode := tarbox_private.find_inode(v_view, v_ino);
    v_lines := null;
    if v_inode.ino is not null and tarbox_private.is_reg(v_inode.mode) and v_inode.size <= p_max_file_bytes then
      v_lines := tarbox_private.split_lines(tarbox_private.read_bytes(v_view, v_inode, 0, v_inode.size::integer),
                                            p_max_line_bytes);
    end if;
    if v_lines is null then
      binary_files := binary_files + 1;
      continue;
    end if;
    v_stored := tarbox_private.store_lines(p_tenant.tenant_id, v_lines);
    perform tarbox_private.save_text_version(v_view, v_ino, v_stored.line_ids, v_inode.size);
    -- the text version replaces the layer's blocks of this file
    with gone as (
      delete from tarbox_private.file_blocks
       where tenant_id = p_tenant.tenant_id and ino = v_ino and layer_id = p_layer_id
      returning chunk_hash)
    select array_agg(distinct chunk_hash) filter (where chunk_hash is not null) into v_hashes from gone;
    if v_hashes is not null then
      perform tarbox_private.release_chunks(p_tenant.tenant_id, v_hashes);
    end if;
    text_files := text_files + 1;
    lines_stored := lines_stored + v_stored.stored;
  end loop;
end
$$;

-- Tenants whose text versions were deleted (with their layers) since their lines were last
-- collected. A statement-level trigger (no per-row trigger on a hot table) notes them, so a
-- pack scans the versions for unused lines only when some may exist. No foreign key: the
-- row of a tenant being deleted is noted in the same statement that deletes the tenant.
create table tarbox_private.line_collections (
  tenant_id bigint primary key
);
comment on table tarbox_private.line_collections is 'Tenants that may have lines no text version uses (collected by the next pack_text).';

create function tarbox_private.tg_text_versions__note_line_collection() returns trigger
language plpgsql volatile as $$
begin
  insert into tarbox_private.line_collections (tenant_id)
  select distinct o.tenant_id from old_rows o
  on conflict do nothing;
  return null;
end
$$;

create trigger _100_note_line_collection
  after delete on tarbox_private.text_versions
  referencing old table as old_rows
  for each statement execute function tarbox_private.tg_text_versions__note_line_collection();

-- Lines no version refers to any more (their layers were deleted) go: one pass over the
-- tenant's version ids (a hash anti-join), only when versions were deleted since the last.
create function tarbox_private.collect_lines(p_tenant_id bigint) returns bigint
language plpgsql volatile as $$
declare
  v_count bigint;
begin
  delete from tarbox_private.line_collections where tenant_id = p_tenant_id;
  if not found then
    return 0;
  end if;
  with used as materialized (
    select distinct u.line_id from tarbox_private.text_versions t cross join unnest(t.line_ids) as u (line_id)
     where t.tenant_id = p_tenant_id)
  delete from tarbox_private.lines l
   where l.tenant_id = p_tenant_id
     and not exists (select 1 from used where used.line_id = l.line_id);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

create function tarbox.pack_text(p_max_file_bytes bigint default 67108864, p_max_line_bytes integer default 65536)
returns tarbox.pack_result
language plpgsql volatile as $$
declare
  -- exclusive, as for checkpoints: no write or switch of this tenant runs while layers pack
  v_tenant tarbox_private.tenants := tarbox_private.lock_tenant();
  v_layer bigint;
  v_packed record;
  v_result tarbox.pack_result := row(0, 0, 0, 0, 0);
begin
  if p_max_file_bytes is null or p_max_file_bytes < 0 or p_max_file_bytes > 1073741823
     or p_max_line_bytes is null or p_max_line_bytes < 1 then
    perform tarbox_private.fail('TBINV', 'text limits: max file bytes must be 0..1073741823 and max line bytes at least 1');
  end if;
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
  v_result.lines_released := tarbox_private.collect_lines(v_tenant.tenant_id);
  if v_result.text_files > 0 then
    -- mounts drop cached block maps, which may name chunks released here
    perform pg_notify('tarbox_layers', v_tenant.tenant_id::text);
  end if;
  return v_result;
end
$$;
comment on function tarbox.pack_text is 'Store the text files of every frozen layer not packed yet as line deltas, lines shared per tenant, and release their chunks (docs/text-storage.md). Content never changes; only its storage does.';

-- ---------------------------------------------------------------------------------------
-- History and diffs

-- A file's inode in a layer's view (symlinks followed), or null.
create function tarbox_private.file_in(p_tenant tarbox_private.tenants, p_layer_id bigint, p_path text)
returns tarbox_private.inodes
language plpgsql stable as $$
declare
  v_view tarbox_private.tenants := tarbox_private.view_of(p_tenant, p_layer_id);
  v_walk record;
begin
  select * into v_walk from tarbox_private.walk(v_view, convert_to(p_path, 'UTF8'), true);
  if v_walk.ino is null then
    return null;
  end if;
  return tarbox_private.find_inode(v_view, v_walk.ino);
end
$$;

-- The line ids of an inode's content in a view, or null if it is not text. Packed versions
-- give their stored ids; content still in chunks is split here, its lines mapped to the
-- tenant's line ids and lines not stored yet given a negative id made from their hash, so
-- ids compare equal exactly when lines do.
create function tarbox_private.view_line_ids(p_view tarbox_private.tenants, p_inode tarbox_private.inodes,
  p_max_line_bytes integer default 65536)
returns bigint[]
language plpgsql stable as $$
declare
  v_text record;
  v_lines bytea[];
  v_ids bigint[];
begin
  if p_inode.ino is null or not tarbox_private.is_reg(p_inode.mode) then
    return null;
  end if;
  v_text := tarbox_private.visible_text(p_view, p_inode.ino);
  if v_text.layer_id is not null and v_text.byte_size = p_inode.size
     and not exists (select 1 from tarbox_private.file_blocks b
                      where b.tenant_id = p_view.tenant_id and b.ino = p_inode.ino
                        and b.layer_id = any (p_view.layer_chain) and b.layer_id > v_text.layer_id) then
    return tarbox_private.text_line_ids(p_view.tenant_id, p_inode.ino, v_text.layer_id);
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

create function tarbox.file_versions(p_path text) returns setof tarbox.file_version
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, convert_to(p_path, 'UTF8'), true);
begin
  perform tarbox_private.require_regular(v_inode);
  -- versions: the layers of the current view that changed the content, and the one that created the file
  return query
    select l.layer_id, l.parent_layer_id, l.message, l.created_at, l.frozen_at,
           l.layer_id = v_tenant.working_layer_id,
           (tarbox_private.find_inode(tarbox_private.view_of(v_tenant, l.layer_id), v_inode.ino)).size,
           case when t.layer_id is not null then 'text' else 'blocks' end,
           t.line_count
      from tarbox_private.layers l
      left join tarbox_private.text_versions t
        on t.tenant_id = v_tenant.tenant_id and t.ino = v_inode.ino and t.layer_id = l.layer_id
     where l.tenant_id = v_tenant.tenant_id and l.layer_id = any (v_tenant.layer_chain)
       and (t.layer_id is not null
            or exists (select 1 from tarbox_private.file_blocks b
                        where b.tenant_id = v_tenant.tenant_id and b.ino = v_inode.ino and b.layer_id = l.layer_id)
            or l.layer_id = (select min(i.layer_id) from tarbox_private.inodes i
                              where i.tenant_id = v_tenant.tenant_id and i.ino = v_inode.ino
                                and i.layer_id = any (v_tenant.layer_chain)))
     order by l.layer_id;
end
$$;
comment on function tarbox.file_versions is 'History of a file in the current view: each layer that changed its content (or created it), with its size and how it is stored (text: packed lines; blocks: chunks).';

create function tarbox.file_line_ids(p_path text, p_layer_id bigint) returns bigint[]
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.file_in(v_tenant, p_layer_id, p_path);
begin
  if v_inode.ino is null then
    return '{}';  -- no file there: diffs show it as added or deleted
  end if;
  return tarbox_private.view_line_ids(tarbox_private.view_of(v_tenant, p_layer_id), v_inode);
end
$$;
comment on function tarbox.file_line_ids is 'The file at a path as seen in a layer, as line ids: equal ids are equal lines (negative ids: lines not stored yet). Empty array for an empty file or a missing path, null for binary content. Diff two of these to diff versions.';

create function tarbox.file_lines(p_path text, p_layer_id bigint, p_line_nos integer[] default null)
returns table (line_no integer, data bytea)
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_view tarbox_private.tenants := tarbox_private.view_of(v_tenant, p_layer_id);
  v_inode tarbox_private.inodes := tarbox_private.file_in(v_tenant, p_layer_id, p_path);
  v_ids bigint[] := tarbox_private.view_line_ids(v_view, v_inode);
begin
  if v_ids is null or cardinality(v_ids) = 0 then
    return;
  end if;
  if p_line_nos is null and v_ids[1] >= 0 and (select bool_and(x >= 0) from unnest(v_ids) x) then
    return query
      select u.ord::integer, l.data
        from unnest(v_ids) with ordinality as u (line_id, ord)
        join tarbox_private.lines l on l.tenant_id = v_tenant.tenant_id and l.line_id = u.line_id
       where p_line_nos is null
       order by u.ord;
  elsif v_ids[1] >= 0 and (select bool_and(x >= 0) from unnest(v_ids) x) then
    -- only the lines asked for: positions first (a join, not "= any" per line), then the lines
    return query
      select n.line_no, l.data
        from (select distinct w.line_no::integer as line_no from unnest(p_line_nos) as w (line_no)
               where w.line_no between 1 and cardinality(v_ids)) n
        join tarbox_private.lines l on l.tenant_id = v_tenant.tenant_id and l.line_id = v_ids[n.line_no]
       order by n.line_no;
  else
    return query
      select u.ord::integer, u.data
        from unnest(tarbox_private.split_lines(tarbox_private.read_bytes(v_view, v_inode, 0, v_inode.size::integer), 2147483647))
             with ordinality as u (data, ord)
       where p_line_nos is null or u.ord in (select unnest(p_line_nos))
       order by u.ord;
  end if;
end
$$;
comment on function tarbox.file_lines is 'Lines of a text file as seen in a layer, numbered from 1, each with its line terminator; only the numbers in p_line_nos when given.';

-- "l,s" of a hunk header for s lines after the first l lines (git omits ",1"; an empty side names the line before it).
create function tarbox_private.hunk_range(p_before integer, p_count integer) returns text
language sql immutable strict parallel safe as $$
  select case when p_count = 1 then (p_before + 1)::text
              when p_count = 0 then format('%s,0', p_before)
              else format('%s,%s', p_before + 1, p_count) end
$$;

-- One line of a unified diff: its sign and text without the terminator, then git's marker
-- when the line had none.
create function tarbox_private.diff_line(p_sign text, p_data bytea) returns setof text
language sql immutable strict parallel safe as $$
  select p_sign || convert_from(case when substring(p_data from octet_length(p_data)) = '\x0a'::bytea
                                     then substring(p_data from 1 for octet_length(p_data) - 1) else p_data end, 'UTF8')
  union all
  select '\ No newline at end of file' where substring(p_data from octet_length(p_data)) <> '\x0a'::bytea
$$;

-- A unified diff computed in SQL from the two versions' line ids: the lines between their
-- common prefix and common suffix form one hunk. That is a correct patch, and the smallest
-- for a single change; `tarbox diff` computes minimal hunks for scattered changes.
create function tarbox.file_diff(p_path text, p_from bigint, p_to bigint, p_context integer default 3)
returns setof text
language plpgsql stable as $$
declare
  v_a bigint[] := tarbox.file_line_ids(p_path, p_from);
  v_b bigint[] := tarbox.file_line_ids(p_path, p_to);
  v_na integer;
  v_nb integer;
  v_prefix integer;
  v_suffix integer;
  v_start integer;
  v_a_end integer;
  v_a_lines bytea[];
  v_b_lines bytea[];
  v_i integer;
begin
  if v_a is null or v_b is null then
    return next format('Binary files a%s and b%s differ', p_path, p_path);
    return;
  end if;
  v_na := cardinality(v_a);
  v_nb := cardinality(v_b);
  v_prefix := tarbox_private.common_prefix(v_a, v_b);
  v_suffix := tarbox_private.common_suffix(v_a, v_b, v_prefix);
  if v_prefix = v_na and v_prefix = v_nb then
    return;
  end if;
  v_start := greatest(v_prefix - p_context, 0);              -- lines before the hunk
  v_a_end := least(v_na - v_suffix + p_context, v_na);       -- last line of a in the hunk
  v_a_lines := array(select f.data from tarbox.file_lines(p_path, p_from, array(select generate_series(v_start + 1, v_a_end))) f
                      order by f.line_no);
  v_b_lines := array(select f.data from tarbox.file_lines(p_path, p_to, array(select generate_series(v_prefix + 1, v_nb - v_suffix))) f
                      order by f.line_no);
  return next format('--- a%s', p_path);
  return next format('+++ b%s', p_path);
  return next format('@@ -%s +%s @@', tarbox_private.hunk_range(v_start, v_a_end - v_start),
                     tarbox_private.hunk_range(v_start, v_a_end - v_start + (v_nb - v_na)));
  for v_i in 1 .. v_prefix - v_start loop
    return query select tarbox_private.diff_line(' ', v_a_lines[v_i]);
  end loop;
  for v_i in v_prefix - v_start + 1 .. v_na - v_suffix - v_start loop
    return query select tarbox_private.diff_line('-', v_a_lines[v_i]);
  end loop;
  for v_i in 1 .. v_nb - v_suffix - v_prefix loop
    return query select tarbox_private.diff_line('+', v_b_lines[v_i]);
  end loop;
  for v_i in v_na - v_suffix - v_start + 1 .. v_a_end - v_start loop
    return query select tarbox_private.diff_line(' ', v_a_lines[v_i]);
  end loop;
end
$$;
comment on function tarbox.file_diff is 'Unified diff (git style, one hunk spanning every change) of the file at a path between its versions in two layers.';
