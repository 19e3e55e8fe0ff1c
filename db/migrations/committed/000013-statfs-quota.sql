--! Previous: sha1:f4e3dfa21fbea1eb756bcdbbb7c63173a46959af
--! Hash: sha1:7bd3a46e137941ea857a91b852e24910d50eda28
--! Message: statfs quota

-- statfs(2) from the tenant's quotas and usage (000001 reported a nominal 1 PiB and 2^32
-- inodes, all free). With a byte quota, the capacity is the quota; without one it stays
-- nominal. Free space and free inodes are what the quota checks would still allow: stored
-- chunk bytes (after dedup) as tarbox.check_space counts them, and live inodes in any layer
-- as the inode quota counts them. So `df` on a mount shows what a write may still use, and
-- a program that checks free space first (an installer, a database) sees the quota coming.
-- Both counts scan the tenant's rows (a few ms per 10,000 chunks or inodes): statfs is asked
-- for by df and the like, not per file.

create or replace function tarbox.statfs() returns tarbox.statfs_info
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_quota tarbox_private.tenant_quotas;
  v_bs bigint := v_tenant.block_size;
  v_bytes bigint;
  v_inodes bigint;
  v_free_bytes bigint;
  v_free_inodes bigint;
begin
  select q.* into v_quota from tarbox_private.tenant_quotas q where q.tenant_id = v_tenant.tenant_id;
  v_bytes := coalesce(v_quota.max_bytes, 1::bigint << 50);
  v_inodes := coalesce(v_quota.max_inodes, 1::bigint << 32);
  v_free_bytes := greatest(v_bytes - tarbox_private.used_bytes(v_tenant.tenant_id), 0);
  v_free_inodes := greatest(v_inodes - tarbox_private.used_inodes(v_tenant.tenant_id), 0);
  return row(v_bs, v_bs, v_bytes / v_bs, v_free_bytes / v_bs, v_free_bytes / v_bs,
             v_inodes, v_free_inodes, v_free_inodes, 255)::tarbox.statfs_info;
end
$$;
comment on function tarbox.statfs is 'statfs(2): capacity and inodes from the tenant''s quotas (nominal 1 PiB and 2^32 without), free space and inodes from its usage.';
