--! Previous: sha1:e83ee2c2fa48313c122e720b618f566eeea8bfb7
--! Hash: sha1:f4e3dfa21fbea1eb756bcdbbb7c63173a46959af
--! Message: inline small commits

-- Small commits in one statement (docs/architecture.md, "Writing data").
--
-- The mount committed every batch of buffered blocks the same way: BEGIN, missing_chunks,
-- check_space, a binary COPY of the chunks the tenant lacks, commit_blocks, COMMIT: seven
-- round trips however small the file. Extracting a tar of 3,000 files of 0-20 KiB spent
-- them on every file (commit_blocks alone 1.7 ms of server time a file, --pg-stats). COPY
-- pays for itself on megabytes, not on kilobytes; the read side already fetches small
-- files with a plain select for the same reason.
--
-- commit_blocks_inline takes the bytes themselves, hashes them where they now are (sha256
-- of a few KiB costs microseconds), stores the chunks the tenant lacks and commits the
-- block map through commit_blocks: one statement, one round trip, the same rows, the same
-- audit row. The chunks quota is checked by the chunks table's statement trigger (000007),
-- since no COPY can swallow the error here.

-- The bytes come as one bytea and a length per block, not as a bytea[]: an array of bytea
-- travels as text that array_in parses character by character (a 64 KiB block took 5-6 ms
-- that way, against ~1 ms for a plain bytea parameter of the same size).
create function tarbox.commit_blocks_inline(p_ino bigint, p_block_nos bigint[], p_lengths integer[], p_data bytea,
  p_end bigint, p_uid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_hashes bytea[];
  v_blocks bytea[];
  v_total bigint;
begin
  if cardinality(p_block_nos) is distinct from cardinality(p_lengths) then
    perform tarbox_private.fail('TBINV', format('commit_blocks_inline: %s block numbers for %s block lengths',
      cardinality(p_block_nos), cardinality(p_lengths)));
  end if;
  if exists (select 1 from unnest(p_lengths) l where l < 0 or l > v_tenant.block_size) then
    perform tarbox_private.fail('TBINV', format('commit_blocks_inline: a block holds 0 to %s bytes', v_tenant.block_size));
  end if;
  select coalesce(sum(l), 0) into v_total from unnest(p_lengths) l;
  if v_total <> coalesce(octet_length(p_data), 0) then
    perform tarbox_private.fail('TBINV', format('commit_blocks_inline: the lengths add up to %s bytes, the data has %s',
      v_total, coalesce(octet_length(p_data), 0)));
  end if;
  -- block i is the p_lengths[i] bytes after those of the blocks before it; a null length is a
  -- hole and keeps a null hash
  select array_agg(b.data order by b.n), array_agg(sha256(b.data) order by b.n) into v_blocks, v_hashes
    from (select u.n, case when u.len is not null then
                   substring(p_data from 1 + coalesce(sum(u.len) over (order by u.n rows between unbounded preceding and 1 preceding), 0)::integer
                             for u.len) end as data
            from unnest(p_lengths) with ordinality as u (len, n)) b;
  insert into tarbox_private.chunks (tenant_id, hash, data)
  select distinct on (h.hash) v_tenant.tenant_id, h.hash, h.data
    from unnest(v_hashes, v_blocks) as h (hash, data)
   where h.data is not null
  on conflict do nothing;
  return tarbox.commit_blocks(p_ino, p_block_nos, v_hashes, p_end, p_uid);
end
$$;
comment on function tarbox.commit_blocks_inline is 'commit_blocks with the bytes passed in (for small commits): block p_block_nos[i] holds the next p_lengths[i] bytes of p_data (a null length: a hole); chunks are hashed (sha256) and stored when new.';

-- 000008's names of failing API functions, with the new one
create or replace function tarbox_private.operation_of_function(p_function text) returns text
language sql immutable parallel safe as $$
  select case p_function
    when 'create_and_stat_dir' then 'create' when 'unlink_and_stat_dir' then 'unlink'
    when 'write_ino' then 'write' when 'append_ino' then 'write' when 'commit_blocks' then 'write'
    when 'commit_blocks_inline' then 'write'
    when 'truncate_ino' then 'truncate' when 'read_ino' then 'read' when 'getattr_ino' then 'getattr'
    when 'lookup' then 'getattr' when 'stat' then 'getattr' when 'ls' then 'readdir'
    when 'create_layer' then 'layer_create' when 'switch_layer' then 'layer_switch'
    when 'delete_layer' then 'layer_delete' when 'write_file' then 'write' when 'make_directory' then 'mkdir'
    when 'remove' then 'unlink'
    else p_function end
$$;
