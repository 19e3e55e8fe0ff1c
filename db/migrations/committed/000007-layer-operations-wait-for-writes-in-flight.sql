--! Previous: sha1:1e61ff37c2ae50e0ccbd9b23aa063fbca0edac9d
--! Hash: sha1:cf659601f0528c151467fdfd8ba716a0e631efa6
--! Message: layer operations wait for writes in flight

--! split: 1-current.sql
-- Checkpoints and switches must not race writes in flight. A write that read the tenant's
-- working layer before a checkpoint committed would put its rows into the layer just frozen
-- (or, after a switch, into a working layer the switch deleted). Every call now holds a
-- shared transaction-level advisory lock on its tenant; create_layer, switch_layer and
-- delete_layer take it exclusively, so they wait for calls in flight and calls after them
-- wait for them (a switch takes about a millisecond). The tenant row is read after the lock
-- is granted, so it is always the current one.
--
-- Advisory lock key: (2003792482, tenant_id), the first half being 'tarb' as an int4.

create or replace function tarbox_private.current_tenant() returns tarbox_private.tenants
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

create or replace function tarbox_private.lock_tenant() returns tarbox_private.tenants
language plpgsql volatile as $$
declare
  v_tenant_id bigint := nullif(current_setting('tarbox.tenant_id', true), '')::bigint;
  v_tenant tarbox_private.tenants;
begin
  if v_tenant_id is not null then
    perform pg_advisory_xact_lock(2003792482, v_tenant_id::integer);
    select * into v_tenant from tarbox_private.tenants where tenant_id = v_tenant_id for update;
  end if;
  if v_tenant.tenant_id is null then
    perform tarbox_private.fail('TBNTS', 'no tenant bound to this session: call tarbox.use_tenant(name) first');
  end if;
  return v_tenant;
end
$$;
