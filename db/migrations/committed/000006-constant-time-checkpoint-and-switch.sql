--! Previous: sha1:d2ef464c9b3bf6c5ab33c103c935731b6df89b87
--! Hash: sha1:1e61ff37c2ae50e0ccbd9b23aa063fbca0edac9d
--! Message: constant-time checkpoint and switch

--! split: 1-current.sql
-- Checkpoint and switch in constant time: they returned the layer's size of changes, which
-- counts the layer's rows (10,000 new files: 10,000 rows to count on every checkpoint).
-- They now return the layer without sizes (changed_entries and changed_bytes null);
-- list_layers still reports them.

create function tarbox_private.layer_summary(p_tenant tarbox_private.tenants, p_layer tarbox_private.layers)
returns tarbox.layer_info
language sql stable as $$
  select row(p_layer.layer_id, p_layer.parent_layer_id, p_layer.message, p_layer.created_at, p_layer.frozen_at,
             p_layer.layer_id = p_tenant.working_layer_id, p_layer.layer_id = any (p_tenant.layer_chain),
             null::bigint, null::bigint)::tarbox.layer_info
$$;

create or replace function tarbox.create_layer(p_message text default null) returns tarbox.layer_info
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

create or replace function tarbox.switch_layer(p_layer_id bigint) returns tarbox.layer_info
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

create or replace function tarbox.current_layer() returns tarbox.layer_info
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return tarbox_private.layer_summary(v_tenant, tarbox_private.require_layer(v_tenant, v_tenant.working_layer_id));
end
$$;
