--! Previous: sha1:e83ee2c2fa48313c122e720b618f566eeea8bfb7
--! Hash: sha1:844ce2e0109b5b538569438e79f25504e9747c4a
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

create function tarbox.commit_blocks_inline(p_ino bigint, p_block_nos bigint[], p_data bytea[],
  p_end bigint, p_uid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_hashes bytea[];
begin
  if cardinality(p_block_nos) is distinct from cardinality(p_data) then
    perform tarbox_private.fail('TBINV', format('commit_blocks_inline: %s block numbers for %s blocks of data',
      cardinality(p_block_nos), cardinality(p_data)));
  end if;
  if exists (select 1 from unnest(p_data) d where octet_length(d) > v_tenant.block_size) then
    perform tarbox_private.fail('TBINV', format('commit_blocks_inline: a block holds at most %s bytes', v_tenant.block_size));
  end if;
  -- null data is a hole, and keeps a null hash
  select array_agg(sha256(u.data) order by u.n) into v_hashes
    from unnest(p_data) with ordinality as u (data, n);
  insert into tarbox_private.chunks (tenant_id, hash, data)
  select distinct on (h.hash) v_tenant.tenant_id, h.hash, h.data
    from unnest(v_hashes, p_data) as h (hash, data)
   where h.data is not null
  on conflict do nothing;
  return tarbox.commit_blocks(p_ino, p_block_nos, v_hashes, p_end, p_uid);
end
$$;
comment on function tarbox.commit_blocks_inline is 'commit_blocks with the bytes passed in (for small commits): blocks p_block_nos[i] hold p_data[i] (null: hole); chunks are hashed (sha256) and stored when new.';

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
