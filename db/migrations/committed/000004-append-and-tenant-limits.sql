--! Previous: sha1:410c33a91676889a9498112a08be44a8027392f7
--! Hash: sha1:cc4d555ea5f9754e9e52df917250885d6776f95f
--! Message: append and tenant limits

--! split: 1-current.sql
-- O_APPEND that holds across processes and mounts: append_ino writes at the inode's size
-- while holding its row lock, so two appenders can never pick the same offset (a shim that
-- computed the offset itself lost lines when another process's commit raced its open).
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

-- Tenants take their file size limit from the configuration too.
drop function tarbox.create_tenant(text, text, integer);
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
