--! Previous: sha1:cf659601f0528c151467fdfd8ba716a0e631efa6
--! Hash: sha1:d5f8c5e8d50fd76eb85d4033c0093fd0c9f7ddc8
--! Message: data path functions resolve the tenant first

--! split: 1-current.sql
-- The two SQL-language data-path functions referred to the session's tenant inside a
-- subquery. Since current_tenant() became volatile (it takes the tenant lock), the planner
-- no longer evaluates it up front, so with an empty chunks table a call without a bound
-- tenant returned rows instead of TBNTS. They now resolve the tenant first, in PL/pgSQL.

create or replace function tarbox.missing_chunks(p_hashes bytea[]) returns setof bytea
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select h.hash from unnest(p_hashes) as h (hash)
     where not exists (select 1 from tarbox_private.chunks c
                        where c.tenant_id = v_tenant.tenant_id and c.hash = h.hash);
end
$$;

create or replace function tarbox.read_chunks(p_hashes bytea[]) returns table (hash bytea, data bytea)
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select c.hash, c.data from tarbox_private.chunks c
     where c.tenant_id = v_tenant.tenant_id and c.hash = any (p_hashes);
end
$$;
