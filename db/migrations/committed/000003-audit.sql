--! Previous: sha1:369a2cd8a0a6d8de6981f9b65670146b90e57d8d
--! Hash: sha1:946bba91cd65ff596f7abd046d4549ecc7d7c5f1
--! Message: audit

--! split: 001-audit-table.sql
-- Audit: every change is logged by the function that makes it, in the same transaction
-- (no change without its row, no row for a change that rolled back). Failures, which roll
-- back, and per-handle read/open summaries are logged by the caller through
-- tarbox.log_operation in a short transaction of their own (docs/audit.md).
--
-- The table is partitioned by range on event_time (daily, weekly or monthly, in UTC);
-- tarbox.maintain_audit creates partitions ahead and drops those past the retention. A
-- default partition catches rows that arrive before their partition exists, so logging can
-- never make a filesystem call fail; maintenance moves such rows into their partition.
-- tenant_id leads every index; no foreign key to tenants, so a deleted tenant's history stays.

create sequence tarbox_private.audit_event_numbers as bigint;

create table tarbox_private.audit_events (
  tenant_id bigint not null,
  event_time timestamptz not null default clock_timestamp(),
  event_id bigint not null default nextval('tarbox_private.audit_event_numbers'),
  layer_id bigint,
  operation text not null,
  -- paths as text (valid UTF-8 as is, other bytes escaped), in the C collation so that a
  -- prefix (LIKE '/src/%') is an index range
  path text collate "C",
  new_path text collate "C",
  ino bigint,
  bytes_read bigint,
  bytes_written bigint,
  errno integer,                 -- null: success
  uid integer,
  gid integer,
  pid integer,
  node text,
  interface text not null,
  detail text
) partition by range (event_time);
comment on table tarbox_private.audit_events is 'Append-only log of filesystem operations, one row per change (and per open handle at level all), partitioned by time.';

create table tarbox_private.audit_events_default partition of tarbox_private.audit_events default;

create index audit_events_by_time on tarbox_private.audit_events (tenant_id, event_time);
create index audit_events_by_path on tarbox_private.audit_events (tenant_id, path, event_time);
-- only renames, links and symlinks have a second path: a small partial index
create index audit_events_by_new_path on tarbox_private.audit_events (tenant_id, new_path, event_time)
  where new_path is not null;

-- Off, changes only, or changes plus reads/opens: per tenant, read by every function with
-- the tenant row it already has (no extra query on the hot path).
alter table tarbox_private.tenants add column audit_level text not null default 'writes'
  constraint tenants_audit_level check (audit_level in ('off', 'writes', 'all'));

-- One row of global settings for partition maintenance (set from [audit] by init and mount).
create table tarbox_private.audit_settings (
  singleton boolean primary key default true constraint audit_settings_singleton check (singleton),
  partition_interval text not null default 'daily'
    constraint audit_settings_interval check (partition_interval in ('daily', 'weekly', 'monthly')),
  retention_days integer not null default 30
    constraint audit_settings_retention check (retention_days between 1 and 3650)
);
insert into tarbox_private.audit_settings default values;

-- Append-only: updates and deletes are refused except inside tarbox.maintain_audit, which
-- sets tarbox.audit_maintenance for its own transaction. This guards against accidents
-- and API misuse; privileges (no UPDATE/DELETE for tenant roles) are the real fence.
create function tarbox_private.tg_audit_events__append_only() returns trigger
language plpgsql volatile as $$
begin
  if current_setting('tarbox.audit_maintenance', true) is distinct from 'on' then
    raise exception using errcode = '42501', message = 'audit events are append-only';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end
$$;
create trigger _100_append_only before update or delete on tarbox_private.audit_events
  for each row execute function tarbox_private.tg_audit_events__append_only();
create trigger _100_append_only_truncate before truncate on tarbox_private.audit_events
  for each statement execute function tarbox_private.tg_audit_events__append_only();

--! split: 002-audit-logging.sql
-- Writing audit rows.

create function tarbox_private.is_change(p_operation text) returns boolean
language sql immutable parallel safe as $$
  select p_operation in ('create', 'mkdir', 'mknod', 'symlink', 'link', 'unlink', 'rmdir', 'rename',
    'chmod', 'chown', 'utimens', 'truncate', 'write', 'setxattr', 'removexattr', 'fsync',
    'layer_create', 'layer_switch', 'layer_delete', 'tenant_create', 'tenant_delete')
$$;

-- The small SQL helpers below are inlinable (one expression, not strict, no FROM), so calls
-- from PL/pgSQL cost nothing; a non-inlined SQL function is planned on every call (measured
-- at 76-250 us under load before they were written this way).
create function tarbox_private.audit_operation_of(p_mode integer) returns text
language sql immutable parallel safe as $$
  select case p_mode & 61440 when 16384 then 'mkdir' when 40960 then 'symlink' when 32768 then 'create'
              else 'mknod' end
$$;

create function tarbox_private.octal(p_value integer) returns text
language sql immutable parallel safe as $$
  select ((p_value >> 9) & 7)::text || ((p_value >> 6) & 7)::text || ((p_value >> 3) & 7)::text || (p_value & 7)::text
$$;

-- Bytes a commit_blocks call wrote: the committed blocks, the last one cut at the file end.
create function tarbox_private.block_bytes(p_block_nos bigint[], p_block_size integer, p_end bigint)
returns bigint
language plpgsql immutable parallel safe as $$
declare
  v_block bigint;
  v_bytes bigint := 0;
begin
  foreach v_block in array coalesce(p_block_nos, '{}') loop
    v_bytes := v_bytes + greatest(0, least(p_end, (v_block + 1) * p_block_size) - v_block * p_block_size);
  end loop;
  return v_bytes;
end
$$;

-- Paths for display: ASCII paths (the common case) without the cost of name_text's
-- exception block; escape-encoding leaves them unchanged and has no backslash then.
create function tarbox_private.audit_path(p_path bytea) returns text
language plpgsql immutable strict parallel safe as $$
declare
  v_text text := encode(p_path, 'escape');
begin
  if strpos(v_text, '\') = 0 then
    return v_text;
  end if;
  return tarbox_private.name_text(p_path);
end
$$;

-- Context that does not travel as arguments: set once per connection by the shim and the
-- CLI (tarbox.interface, tarbox.node; the CLI also tarbox.uid/gid/pid), absent for SQL
-- callers, who are logged as interface 'sql' with their application_name as node.
create function tarbox_private.setting_int(p_name text) returns integer
language sql stable parallel safe as $$
  select nullif(current_setting(p_name, true), '')::integer
$$;

-- The one insert. Callers pass what they know; the rest comes from the session.
create function tarbox_private.audit(p_tenant tarbox_private.tenants, p_operation text, p_path bytea,
  p_ino bigint, p_new_path bytea default null, p_bytes_read bigint default null,
  p_bytes_written bigint default null, p_errno integer default null, p_uid integer default null,
  p_gid integer default null, p_pid integer default null, p_detail text default null)
returns void
language plpgsql volatile as $$
begin
  if p_tenant.audit_level = 'off'
     or (p_tenant.audit_level = 'writes' and not tarbox_private.is_change(p_operation)) then
    return;
  end if;
  insert into tarbox_private.audit_events (tenant_id, layer_id, operation, path, new_path, ino,
    bytes_read, bytes_written, errno, uid, gid, pid, node, interface, detail)
  values (p_tenant.tenant_id, p_tenant.working_layer_id, p_operation,
    tarbox_private.audit_path(coalesce(p_path, case when p_ino is not null then tarbox_private.path_of(p_tenant, p_ino) end)),
    tarbox_private.audit_path(p_new_path), p_ino, p_bytes_read, p_bytes_written, p_errno,
    coalesce(tarbox_private.setting_int('tarbox.uid'), p_uid),
    coalesce(tarbox_private.setting_int('tarbox.gid'), p_gid),
    coalesce(tarbox_private.setting_int('tarbox.pid'), p_pid),
    coalesce(nullif(current_setting('tarbox.node', true), ''), nullif(current_setting('application_name'), '')),
    coalesce(nullif(current_setting('tarbox.interface', true), ''), 'sql'),
    p_detail);
end
$$;
comment on function tarbox_private.audit is 'Log one operation of a tenant if its audit level asks for it (off, writes = changes only, all).';

create function tarbox.log_operation(p_operation text, p_path bytea default null, p_errno integer default null,
  p_new_path bytea default null, p_ino bigint default null, p_bytes_read bigint default null,
  p_bytes_written bigint default null, p_uid integer default null, p_gid integer default null,
  p_pid integer default null, p_detail text default null)
returns void
language plpgsql volatile as $$
begin
  if p_operation is null or p_operation !~ '^[a-z][a-z_]{0,31}$' then
    perform tarbox_private.fail('TBINV', format('invalid operation name %L', p_operation));
  end if;
  if p_errno is not null and p_errno <= 0 then
    perform tarbox_private.fail('TBINV', format('errno must be positive, got %s', p_errno));
  end if;
  perform tarbox_private.audit(tarbox_private.current_tenant(), p_operation, p_path, p_ino, p_new_path,
            p_bytes_read, p_bytes_written, p_errno, p_uid, p_gid, p_pid, p_detail);
end
$$;
comment on function tarbox.log_operation is 'Log an operation that did not go through a Tarbox change function: a failure (with its errno; the failing transaction rolled back), a per-handle open..close summary (level all), or an operation on storage outside Tarbox. Changes are logged at level writes, everything at level all.';

-- Many rows in one call: the shim sends its per-handle rows (level all) in batches, since
-- they summarize reads and belong to no change's transaction. Paths travel as base64.
create function tarbox.log_operations(p_events jsonb) returns integer
language plpgsql volatile as $$
declare
  v_event record;
  v_count integer := 0;
begin
  for v_event in
    select * from jsonb_to_recordset(p_events) as e (operation text, path text, errno integer, new_path text,
      ino bigint, bytes_read bigint, bytes_written bigint, uid integer, gid integer, pid integer, detail text)
  loop
    -- one row, checked and logged exactly as log_operation does
    perform tarbox.log_operation(v_event.operation, decode(v_event.path, 'base64'), v_event.errno,
              decode(v_event.new_path, 'base64'), v_event.ino, v_event.bytes_read, v_event.bytes_written,
              v_event.uid, v_event.gid, v_event.pid, v_event.detail);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
comment on function tarbox.log_operations is 'tarbox.log_operation for many rows: a JSON array of objects with the same fields (path and new_path base64-encoded bytes). Returns how many were given.';

create function tarbox.set_audit_level(p_level text) returns text
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  if p_level is null or p_level not in ('off', 'writes', 'all') then
    perform tarbox_private.fail('TBINV', format('audit level must be off, writes or all, got %L', p_level));
  end if;
  update tarbox_private.tenants set audit_level = p_level where tenant_id = v_tenant.tenant_id;
  return p_level;
end
$$;
comment on function tarbox.set_audit_level is 'Audit level of the session''s tenant: off, writes (every change, the default) or all (also opens and reads, one row per open handle).';

create function tarbox.audit_level() returns text
language sql stable as $$
  select (tarbox_private.current_tenant()).audit_level
$$;
comment on function tarbox.audit_level is 'The audit level of the session''s tenant.';

--! split: 003-audit-partitions.sql
-- Partition maintenance: run by `tarbox audit maintain`, hourly by every mount, or by cron /
-- pg_cron (docs/audit.md). The current time is a parameter so tests can use a fake clock.

create function tarbox.audit_partitions()
returns table (partition_name text, range_from timestamptz, range_to timestamptz, is_default boolean)
language sql stable as $$
  select c.relname::text,
         (regexp_match(b.bound, 'FROM \(''([^'']*)''\)'))[1]::timestamptz,
         (regexp_match(b.bound, 'TO \(''([^'']*)''\)'))[1]::timestamptz,
         b.bound = 'DEFAULT'
    from pg_catalog.pg_inherits i
    join pg_catalog.pg_class c on c.oid = i.inhrelid
   cross join lateral (select pg_catalog.pg_get_expr(c.relpartbound, c.oid) as bound) b
   where i.inhparent = 'tarbox_private.audit_events'::regclass
   order by 2 nulls first
$$;
comment on function tarbox.audit_partitions is 'The partitions of the audit log with their time ranges (the default partition has none).';

create function tarbox.configure_audit(p_partition text, p_retention_days integer) returns void
language plpgsql volatile as $$
begin
  if p_partition is null or p_partition not in ('daily', 'weekly', 'monthly') then
    perform tarbox_private.fail('TBINV', format('audit partition must be daily, weekly or monthly, got %L', p_partition));
  end if;
  if p_retention_days is null or p_retention_days not between 1 and 3650 then
    perform tarbox_private.fail('TBINV', format('audit retention must be 1 to 3650 days, got %s', p_retention_days));
  end if;
  update tarbox_private.audit_settings set partition_interval = p_partition, retention_days = p_retention_days;
end
$$;
comment on function tarbox.configure_audit is 'Partition size (daily, weekly, monthly) and retention in days for tarbox.maintain_audit (global, from [audit]).';

-- One partition for [p_from, p_to). Rows that landed in the default partition for that
-- range (no partition existed yet) move into it, so the range can be attached.
create function tarbox_private.create_audit_partition(p_from timestamptz, p_to timestamptz) returns text
language plpgsql volatile as $$
declare
  v_from_utc timestamp := p_from at time zone 'UTC';
  v_name text := 'audit_events_' || to_char(v_from_utc, 'YYYYMMDD')
                 || case when v_from_utc::time <> '00:00' then to_char(v_from_utc, '_HH24MISS') else '' end;
begin
  if exists (select 1 from tarbox_private.audit_events_default where event_time >= p_from and event_time < p_to) then
    execute format('create table tarbox_private.%I (like tarbox_private.audit_events including defaults)', v_name);
    perform set_config('tarbox.audit_maintenance', 'on', true);
    execute format('with moved as (delete from tarbox_private.audit_events_default
                                    where event_time >= $1 and event_time < $2 returning *)
                    insert into tarbox_private.%I select * from moved', v_name) using p_from, p_to;
    perform set_config('tarbox.audit_maintenance', 'off', true);
    execute format('alter table tarbox_private.audit_events attach partition tarbox_private.%I for values from (%L) to (%L)',
                   v_name, p_from, p_to);
  else
    execute format('create table tarbox_private.%I partition of tarbox_private.audit_events for values from (%L) to (%L)',
                   v_name, p_from, p_to);
  end if;
  return v_name;
end
$$;

create function tarbox.maintain_audit(p_now timestamptz default now())
returns table (action text, partition_name text, range_from timestamptz, range_to timestamptz)
language plpgsql volatile as $$
declare
  v_settings tarbox_private.audit_settings;
  v_unit text;
  v_step interval;
  v_from timestamptz;
  v_to timestamptz;
  v_horizon timestamptz;
  v_covered timestamptz;
  v_next timestamptz;
  v_part record;
begin
  -- one maintainer at a time (every mount runs this); key: ('tarb' + 1, 0)
  perform pg_advisory_xact_lock(2003792483, 0);
  select * into v_settings from tarbox_private.audit_settings;
  v_unit := case v_settings.partition_interval when 'daily' then 'day' when 'weekly' then 'week' else 'month' end;
  v_step := ('1 ' || v_unit)::interval;
  -- ahead: at least a week and two partitions, so a mount that stops maintaining still logs for days
  v_horizon := p_now + greatest(interval '7 days', 2 * v_step);
  v_from := date_trunc(v_unit, p_now, 'UTC');
  while v_from < v_horizon loop
    -- skip what existing partitions (perhaps of another size) already cover
    loop
      select max(p.range_to) into v_covered from tarbox.audit_partitions() p
       where p.range_from <= v_from and p.range_to > v_from;
      exit when v_covered is null;
      v_from := v_covered;
    end loop;
    exit when v_from >= v_horizon;
    -- up to the end of v_from's period, or to the next existing partition
    v_to := ((date_trunc(v_unit, v_from, 'UTC') at time zone 'UTC') + v_step) at time zone 'UTC';
    select min(p.range_from) into v_next from tarbox.audit_partitions() p
     where p.range_from > v_from and p.range_from < v_to;
    v_to := least(v_to, v_next);
    action := 'created';
    partition_name := tarbox_private.create_audit_partition(v_from, v_to);
    range_from := v_from;
    range_to := v_to;
    return next;
    v_from := v_to;
  end loop;
  -- retention: whole partitions whose every row is older than retention_days go; nothing else is deleted
  for v_part in
    select p.* from tarbox.audit_partitions() p
     where not p.is_default and p.range_to <= p_now - v_settings.retention_days * interval '1 day'
  loop
    execute format('drop table tarbox_private.%I', v_part.partition_name);
    action := 'dropped';
    partition_name := v_part.partition_name;
    range_from := v_part.range_from;
    range_to := v_part.range_to;
    return next;
  end loop;
end
$$;
comment on function tarbox.maintain_audit is 'Create audit partitions ahead of p_now (at least 7 days) and drop those entirely older than the retention. Returns what it did. Run it daily or more often (mounts run it hourly).';

-- The partitions for now, so logging starts in a real partition.
select tarbox.maintain_audit();

--! split: 004-audit-queries.sql
-- Reading the log: the session's tenant only.

create function tarbox_private.errno_name(p_errno integer) returns text
language sql immutable parallel safe as $$
  select case p_errno when 1 then 'EPERM' when 2 then 'ENOENT' when 5 then 'EIO' when 7 then 'E2BIG'
    when 9 then 'EBADF' when 11 then 'EAGAIN' when 12 then 'ENOMEM' when 13 then 'EACCES'
    when 16 then 'EBUSY' when 17 then 'EEXIST' when 18 then 'EXDEV' when 20 then 'ENOTDIR'
    when 21 then 'EISDIR' when 22 then 'EINVAL' when 27 then 'EFBIG' when 28 then 'ENOSPC'
    when 30 then 'EROFS' when 31 then 'EMLINK' when 34 then 'ERANGE' when 36 then 'ENAMETOOLONG'
    when 38 then 'ENOSYS' when 39 then 'ENOTEMPTY' when 40 then 'ELOOP' when 61 then 'ENODATA'
    when 95 then 'EOPNOTSUPP' when 110 then 'ETIMEDOUT' when 122 then 'EDQUOT'
    else case when p_errno is null then null else 'errno ' || p_errno end end
$$;

create type tarbox.audit_event as (
  event_time timestamptz,
  event_id bigint,
  layer_id bigint,
  operation text,
  path text,
  new_path text,
  ino bigint,
  bytes_read bigint,
  bytes_written bigint,
  result text,             -- 'success' or the errno's name ('ENOENT', ...)
  errno integer,
  uid integer,
  gid integer,
  pid integer,
  node text,
  interface text,
  detail text
);

-- Built as dynamic SQL with only the filters given, so each query is planned with its
-- values: partition pruning by time, and the (tenant_id, path) index for a path prefix.
create function tarbox.audit_log(p_since timestamptz default null, p_until timestamptz default null,
  p_path text default null, p_operations text[] default null, p_result text default null,
  p_limit integer default 100)
returns setof tarbox.audit_event
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_path text := case when p_path is null or p_path = '/' then null else rtrim(p_path, '/') end;
  v_prefix text := replace(replace(replace(v_path, '\', '\\'), '%', '\%'), '_', '\_') || '/%';
  v_where text := 'e.tenant_id = $1';
begin
  if p_result is not null and p_result not in ('success', 'error') then
    perform tarbox_private.fail('TBINV', format('result must be success or error, got %L', p_result));
  end if;
  if p_limit is not null and p_limit < 1 then
    perform tarbox_private.fail('TBINV', format('limit must be positive, got %s', p_limit));
  end if;
  if p_since is not null then v_where := v_where || ' and e.event_time >= $2'; end if;
  if p_until is not null then v_where := v_where || ' and e.event_time < $3'; end if;
  if v_path is not null then
    v_where := v_where || ' and (e.path = $4 or e.path like $5 or e.new_path = $4 or e.new_path like $5)';
  end if;
  if p_operations is not null then v_where := v_where || ' and e.operation = any ($6)'; end if;
  if p_result = 'success' then v_where := v_where || ' and e.errno is null'; end if;
  if p_result = 'error' then v_where := v_where || ' and e.errno is not null'; end if;
  return query execute
    'select e.event_time, e.event_id, e.layer_id, e.operation, e.path::text, e.new_path::text, e.ino,
            e.bytes_read, e.bytes_written, coalesce(tarbox_private.errno_name(e.errno), ''success''), e.errno,
            e.uid, e.gid, e.pid, e.node, e.interface, e.detail
       from tarbox_private.audit_events e
      where ' || v_where || '
      order by e.event_time desc, e.event_id desc
      limit $7'
    using v_tenant.tenant_id, p_since, p_until, v_path, v_prefix, p_operations, p_limit;
end
$$;
comment on function tarbox.audit_log is 'The session tenant''s audit events, newest first: since/until (times), path (a path and everything under it, also as a rename or link target), operations, result (success or error), limit (default 100, null for all).';

create function tarbox.audit_stats(p_since timestamptz default now() - interval '1 day', p_until timestamptz default null)
returns table (hour timestamptz, operation text, events bigint, errors bigint)
language plpgsql stable as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
begin
  return query
    select date_trunc('hour', e.event_time, 'UTC'), e.operation, count(*), count(e.errno)
      from tarbox_private.audit_events e
     where e.tenant_id = v_tenant.tenant_id
       and e.event_time >= coalesce(p_since, '-infinity') and e.event_time < coalesce(p_until, 'infinity')
     group by 1, 2
     order by 1 desc, 2;
end
$$;
comment on function tarbox.audit_stats is 'Operations of the session''s tenant per hour (UTC) and kind, with how many failed.';

--! split: 005-audit-calls.sql
-- The change functions of 000001/000002, each with one added line: its audit call, just
-- before it returns (rename: before its checks; a failing check rolls the row back).
-- Bodies otherwise unchanged.

create or replace function tarbox_private.make_node(p_path bytea, p_mode integer, p_uid integer, p_gid integer,
  p_rdev integer, p_target bytea)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_new record;
  v_parent tarbox_private.inodes;
  v_inode tarbox_private.inodes;
begin
  select * into v_new from tarbox_private.resolve_new(v_tenant, p_path);
  v_parent := tarbox_private.touch_dir(v_tenant, v_new.parent_ino,
                case when tarbox_private.is_dir(p_mode) then 1 else 0 end);
  v_inode := tarbox_private.new_inode(v_tenant, v_parent, p_mode, p_uid, p_gid, p_rdev, p_target);
  perform tarbox_private.add_entry(v_tenant, v_new.parent_ino, v_new.name, v_inode.ino,
            tarbox_private.kind_of(p_mode), p_path);
  perform tarbox_private.audit(v_tenant, tarbox_private.audit_operation_of(p_mode), p_path, v_inode.ino,
            p_uid => p_uid, p_gid => p_gid, p_detail => tarbox_private.name_text(p_target));
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.link(p_existing bytea, p_new bytea) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_source tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_existing, false);
  v_new record;
begin
  if tarbox_private.is_dir(v_source.mode) then
    perform tarbox_private.fail('TBPRM', format('hard links to directories are not allowed: %s', tarbox_private.path_text(p_existing)));
  end if;
  select * into v_new from tarbox_private.resolve_new(v_tenant, p_new);
  perform tarbox_private.touch_dir(v_tenant, v_new.parent_ino, 0);
  v_source := tarbox_private.lock_inode(v_tenant, v_source.ino);
  v_source.nlink := v_source.nlink + 1;
  v_source.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_source);
  perform tarbox_private.add_entry(v_tenant, v_new.parent_ino, v_new.name, v_source.ino,
            tarbox_private.kind_of(v_source.mode), p_new);
  perform tarbox_private.audit(v_tenant, 'link', p_existing, v_source.ino, p_new_path => p_new);
  return tarbox_private.to_attr(v_source, v_tenant.block_size);
end
$$;

create or replace function tarbox.unlink(p_path bytea, p_uid integer default 0, p_keep_open boolean default false) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_walk record;
  v_inode tarbox_private.inodes;
begin
  select * into v_walk from tarbox_private.walk(v_tenant, p_path, false);
  if v_walk.name is null then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  v_inode := tarbox_private.resolve(v_tenant, p_path, false);
  if tarbox_private.is_dir(v_inode.mode) then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.check_sticky(v_tenant, v_walk.parent_ino, v_inode, p_uid, p_path);
  perform tarbox_private.touch_dir(v_tenant, v_walk.parent_ino, 0);
  perform tarbox_private.remove_entry(v_tenant, v_walk.parent_ino, v_walk.name);
  perform tarbox_private.drop_link(v_tenant, v_inode.ino, p_keep_open);
  perform tarbox_private.audit(v_tenant, 'unlink', p_path, v_inode.ino, p_uid => p_uid);
end
$$;

create or replace function tarbox.rmdir(p_path bytea, p_uid integer default 0) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_walk record;
  v_inode tarbox_private.inodes;
begin
  select * into v_walk from tarbox_private.walk(v_tenant, p_path, false);
  if v_walk.ino = v_tenant.root_ino then
    perform tarbox_private.fail('TBBSY', 'cannot remove the root directory');
  end if;
  if v_walk.name is null then
    perform tarbox_private.fail('TBINV', format('cannot remove . or ..: %s', tarbox_private.path_text(p_path)));
  end if;
  v_inode := tarbox_private.resolve(v_tenant, p_path, false);
  if not tarbox_private.is_dir(v_inode.mode) then
    perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.check_sticky(v_tenant, v_walk.parent_ino, v_inode, p_uid, p_path);
  perform tarbox_private.touch_dir(v_tenant, v_walk.parent_ino, -1);
  -- lock the directory before checking it is empty, so no entry can be added meanwhile
  perform tarbox_private.lock_inode(v_tenant, v_inode.ino);
  if not tarbox_private.dir_is_empty(v_tenant, v_inode.ino) then
    perform tarbox_private.fail('TBNEM', format('directory not empty: %s', tarbox_private.path_text(p_path)));
  end if;
  perform tarbox_private.remove_entry(v_tenant, v_walk.parent_ino, v_walk.name);
  perform tarbox_private.drop_inode(v_tenant, v_inode.ino);
  perform tarbox_private.audit(v_tenant, 'rmdir', p_path, v_inode.ino, p_uid => p_uid);
end
$$;

create or replace function tarbox.rename(p_from bytea, p_to bytea, p_flags integer default 0, p_uid integer default 0,
  p_keep_open boolean default false)
returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_src record;
  v_dst record;
  v_source tarbox_private.inodes;
  v_target tarbox_private.inodes;
  v_source_is_dir boolean;
begin
  if p_flags not in (0, 1) then
    perform tarbox_private.fail('TBINV', 'rename: only RENAME_NOREPLACE (1) is supported');
  end if;
  select * into v_src from tarbox_private.walk(v_tenant, p_from, false);
  select * into v_dst from tarbox_private.walk(v_tenant, p_to, false);
  if v_src.name is null or v_dst.name is null then
    perform tarbox_private.fail(case when v_src.ino = v_tenant.root_ino or v_dst.ino = v_tenant.root_ino
                                     then 'TBBSY' else 'TBINV' end,
      format('rename: cannot rename %s to %s', tarbox_private.path_text(p_from), tarbox_private.path_text(p_to)));
  end if;
  v_source := tarbox_private.resolve(v_tenant, p_from, false);
  v_source_is_dir := tarbox_private.is_dir(v_source.mode);
  -- logged before the checks below: any of them failing rolls this row back with the rest
  perform tarbox_private.audit(v_tenant, 'rename', p_from, v_source.ino, p_new_path => p_to, p_uid => p_uid);
  if v_dst.ino is not null and p_flags = 1 then
    perform tarbox_private.fail('TBEXI', format('file exists: %s', tarbox_private.path_text(p_to)));
  end if;
  if v_dst.ino = v_source.ino then
    return;  -- both names refer to the same inode: POSIX says do nothing
  end if;
  -- a directory cannot move into its own subtree
  if v_source_is_dir and v_source.ino = any (v_dst.ancestors) then
    perform tarbox_private.fail('TBINV', format('rename: cannot move %s into itself (%s)',
      tarbox_private.path_text(p_from), tarbox_private.path_text(p_to)));
  end if;
  if v_dst.ino is not null then
    v_target := tarbox_private.require_inode(v_tenant, v_dst.ino);
    if v_source_is_dir and not tarbox_private.is_dir(v_target.mode) then
      perform tarbox_private.fail('TBNDR', format('not a directory: %s', tarbox_private.path_text(p_to)));
    elsif not v_source_is_dir and tarbox_private.is_dir(v_target.mode) then
      perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_to)));
    end if;
    perform tarbox_private.check_sticky(v_tenant, v_dst.parent_ino, v_target, p_uid, p_to);
  end if;
  perform tarbox_private.check_sticky(v_tenant, v_src.parent_ino, v_source, p_uid, p_from);
  -- lock both parents in inode order so concurrent renames cannot deadlock
  if v_src.parent_ino = v_dst.parent_ino then
    perform tarbox_private.touch_dir(v_tenant, v_src.parent_ino, 0);
  elsif v_src.parent_ino < v_dst.parent_ino then
    perform tarbox_private.touch_dir(v_tenant, v_src.parent_ino, case when v_source_is_dir then -1 else 0 end);
    perform tarbox_private.touch_dir(v_tenant, v_dst.parent_ino, case when v_source_is_dir then 1 else 0 end);
  else
    perform tarbox_private.touch_dir(v_tenant, v_dst.parent_ino, case when v_source_is_dir then 1 else 0 end);
    perform tarbox_private.touch_dir(v_tenant, v_src.parent_ino, case when v_source_is_dir then -1 else 0 end);
  end if;
  if v_target.ino is not null then
    if v_source_is_dir then
      perform tarbox_private.lock_inode(v_tenant, v_target.ino);
      if not tarbox_private.dir_is_empty(v_tenant, v_target.ino) then
        perform tarbox_private.fail('TBNEM', format('directory not empty: %s', tarbox_private.path_text(p_to)));
      end if;
      -- the replaced directory's '..' no longer counts in the destination parent
      perform tarbox_private.touch_dir(v_tenant, v_dst.parent_ino, -1);
      perform tarbox_private.drop_inode(v_tenant, v_target.ino);
    else
      perform tarbox_private.drop_link(v_tenant, v_target.ino, p_keep_open);
    end if;
  end if;
  perform tarbox_private.remove_entry(v_tenant, v_src.parent_ino, v_src.name);
  perform tarbox_private.put_entry(v_tenant, v_dst.parent_ino, v_dst.name, v_source.ino,
            tarbox_private.kind_of(v_source.mode));
  v_source := tarbox_private.lock_inode(v_tenant, v_source.ino);
  v_source.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_source);
end
$$;

create or replace function tarbox.chmod(p_path bytea, p_mode integer) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode.mode := (v_inode.mode & 61440) | (p_mode & 4095);
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'chmod', p_path, v_inode.ino, p_detail => format('mode=%s', tarbox_private.octal(p_mode & 4095)));
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.chown(p_path bytea, p_uid integer, p_gid integer) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  if p_uid <> -1 then v_inode.uid := p_uid; end if;
  if p_gid <> -1 then v_inode.gid := p_gid; end if;
  if (p_uid <> -1 or p_gid <> -1) and not tarbox_private.is_dir(v_inode.mode) then
    v_inode.mode := tarbox_private.kill_priv(v_inode.mode);
  end if;
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'chown', p_path, v_inode.ino, p_detail => format('uid=%s gid=%s', p_uid, p_gid));
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.utimens(p_path bytea, p_atime_sec bigint, p_atime_nsec integer,
  p_mtime_sec bigint, p_mtime_nsec integer)
returns tarbox.attr
language plpgsql volatile as $$
declare
  -- UTIME_NOW and UTIME_OMIT from <sys/stat.h>
  c_now constant integer := 1073741823;
  c_omit constant integer := 1073741822;
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
  v_now bigint := tarbox_private.now_ns();
begin
  if (p_atime_nsec not in (c_now, c_omit) and (p_atime_nsec < 0 or p_atime_nsec > 999999999))
     or (p_mtime_nsec not in (c_now, c_omit) and (p_mtime_nsec < 0 or p_mtime_nsec > 999999999)) then
    perform tarbox_private.fail('TBINV', 'utimens: nanoseconds out of range');
  end if;
  perform tarbox_private.audit(v_tenant, 'utimens', p_path, v_inode.ino);
  if p_atime_nsec = c_omit and p_mtime_nsec = c_omit then
    return tarbox_private.to_attr(v_inode, v_tenant.block_size);
  end if;
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode.atime_ns := case p_atime_nsec when c_omit then v_inode.atime_ns when c_now then v_now
                      else p_atime_sec * 1000000000 + p_atime_nsec end;
  v_inode.mtime_ns := case p_mtime_nsec when c_omit then v_inode.mtime_ns when c_now then v_now
                      else p_mtime_sec * 1000000000 + p_mtime_nsec end;
  v_inode.ctime_ns := v_now;
  perform tarbox_private.save_inode(v_inode);
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.open(p_path bytea, p_flags integer default 0, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
begin
  if tarbox_private.is_dir(v_inode.mode) and (p_flags & 3) <> 0 then
    perform tarbox_private.fail('TBISD', format('is a directory: %s', tarbox_private.path_text(p_path)));
  end if;
  -- O_TRUNC (01000) with write access
  if (p_flags & 512) <> 0 and (p_flags & 3) <> 0 and tarbox_private.is_reg(v_inode.mode) then
    v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
    v_inode := tarbox_private.truncate_bytes(v_tenant, v_inode, 0, p_uid);
    perform tarbox_private.audit(v_tenant, 'truncate', p_path, v_inode.ino, p_uid => p_uid, p_detail => 'size=0 (open with O_TRUNC)');
    perform tarbox_private.save_inode(v_inode);
  end if;
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.write(p_path bytea, p_offset bigint, p_data bytea, p_uid integer default 0) returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode := tarbox_private.write_bytes(v_tenant, v_inode, p_offset, p_data, p_uid);
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'write', p_path, v_inode.ino, p_bytes_written => octet_length(p_data), p_uid => p_uid);
  return octet_length(p_data);
end
$$;

create or replace function tarbox.write_ino(p_ino bigint, p_offset bigint, p_data bytea, p_uid integer default 0) returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
begin
  v_inode := tarbox_private.write_bytes(v_tenant, v_inode, p_offset, p_data, p_uid);
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'write', null, p_ino, p_bytes_written => octet_length(p_data), p_uid => p_uid);
  return octet_length(p_data);
end
$$;

create or replace function tarbox.append_ino(p_ino bigint, p_data bytea, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
begin
  v_inode := tarbox_private.write_bytes(v_tenant, v_inode, v_inode.size, p_data, p_uid);
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'write', null, p_ino, p_bytes_written => octet_length(p_data), p_uid => p_uid, p_detail => 'append');
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.truncate(p_path bytea, p_size bigint, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  v_inode := tarbox_private.truncate_bytes(v_tenant, v_inode, p_size, p_uid);
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'truncate', p_path, v_inode.ino, p_uid => p_uid, p_detail => format('size=%s', p_size));
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.truncate_ino(p_ino bigint, p_size bigint, p_uid integer default 0) returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
begin
  v_inode := tarbox_private.truncate_bytes(v_tenant, v_inode, p_size, p_uid);
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'truncate', null, p_ino, p_uid => p_uid, p_detail => format('size=%s', p_size));
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.commit_blocks(p_ino bigint, p_block_nos bigint[], p_hashes bytea[],
  p_end bigint, p_uid integer default 0)
returns tarbox.attr
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(v_tenant, p_ino);
  v_now bigint := tarbox_private.now_ns();
begin
  perform tarbox_private.require_regular(v_inode);
  if p_end > v_tenant.max_file_size then
    perform tarbox_private.fail('TBFBG', format('file too large: %s bytes is over the limit of %s', p_end, v_tenant.max_file_size));
  end if;
  perform tarbox_private.put_blocks(v_tenant, p_ino, p_block_nos, p_hashes);
  v_inode.size := greatest(v_inode.size, p_end);
  v_inode.mtime_ns := v_now;
  v_inode.ctime_ns := v_now;
  if p_uid <> 0 then
    v_inode.mode := tarbox_private.kill_priv(v_inode.mode);
  end if;
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'write', null, p_ino, p_uid => p_uid,
            p_bytes_written => tarbox_private.block_bytes(p_block_nos, v_tenant.block_size, p_end));
  return tarbox_private.to_attr(v_inode, v_tenant.block_size);
end
$$;

create or replace function tarbox.setxattr(p_path bytea, p_name text, p_value bytea, p_flags integer default 0)
returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
  v_exists boolean;
begin
  perform tarbox_private.check_xattr_name(p_name);
  if octet_length(p_value) > 65536 then
    perform tarbox_private.fail('TBBIG', 'xattr value larger than 64 KiB');
  end if;
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);   -- serializes xattr changes per inode
  v_exists := tarbox_private.find_xattr(v_tenant, v_inode.ino, p_name) is not null;
  if (p_flags & 1) <> 0 and v_exists then          -- XATTR_CREATE
    perform tarbox_private.fail('TBEXI', format('xattr exists: %s', p_name));
  elsif (p_flags & 2) <> 0 and not v_exists then   -- XATTR_REPLACE
    perform tarbox_private.fail('TBNOD', format('no such xattr: %s', p_name));
  end if;
  insert into tarbox_private.xattrs (tenant_id, ino, name, layer_id, value)
  values (v_tenant.tenant_id, v_inode.ino, p_name, v_tenant.working_layer_id, coalesce(p_value, ''::bytea))
  on conflict (tenant_id, ino, name, layer_id) do update set value = excluded.value;
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'setxattr', p_path, v_inode.ino, p_detail => p_name);
end
$$;

create or replace function tarbox.removexattr(p_path bytea, p_name text) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, false);
begin
  v_inode := tarbox_private.lock_inode(v_tenant, v_inode.ino);
  if tarbox_private.find_xattr(v_tenant, v_inode.ino, p_name) is null then
    perform tarbox_private.fail('TBNOD', format('no such xattr: %s', p_name));
  end if;
  if exists (select 1 from tarbox_private.xattrs
              where tenant_id = v_tenant.tenant_id and ino = v_inode.ino and name = p_name
                and layer_id = any (v_tenant.layer_chain[2:])) then
    update tarbox_private.xattrs set value = null
     where tenant_id = v_tenant.tenant_id and ino = v_inode.ino and name = p_name
       and layer_id = v_tenant.working_layer_id;
    if not found then
      insert into tarbox_private.xattrs (tenant_id, ino, name, layer_id, value)
      values (v_tenant.tenant_id, v_inode.ino, p_name, v_tenant.working_layer_id, null);
    end if;
  else
    delete from tarbox_private.xattrs
     where tenant_id = v_tenant.tenant_id and ino = v_inode.ino and name = p_name
       and layer_id = v_tenant.working_layer_id;
  end if;
  v_inode.ctime_ns := tarbox_private.now_ns();
  perform tarbox_private.save_inode(v_inode);
  perform tarbox_private.audit(v_tenant, 'removexattr', p_path, v_inode.ino, p_detail => p_name);
end
$$;

create or replace function tarbox.create_tenant(p_name text, p_display_name text default null,
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
  perform tarbox_private.audit(t, 'tenant_create', '\x2f'::bytea, v_root, p_detail => p_name)
     from tarbox_private.tenants t where t.tenant_id = v_tenant_id;
  return (select t from tarbox.list_tenants() t where t.tenant_id = v_tenant_id);
end
$$;

create or replace function tarbox.delete_tenant(p_name text) returns void
language plpgsql volatile as $$
declare
  v_id bigint := tarbox.tenant_id(p_name);
begin
  -- the tenant's audit rows stay (they are what an operator asks for after a deletion)
  perform tarbox_private.audit(t, 'tenant_delete', '\x2f'::bytea, t.root_ino, p_detail => p_name)
     from tarbox_private.tenants t where t.tenant_id = v_id;
  delete from tarbox_private.xattrs where tenant_id = v_id;
  delete from tarbox_private.file_blocks where tenant_id = v_id;
  delete from tarbox_private.chunks where tenant_id = v_id;
  delete from tarbox_private.dentries where tenant_id = v_id;
  delete from tarbox_private.inodes where tenant_id = v_id;
  delete from tarbox_private.tenants where tenant_id = v_id;  -- layers cascade
end
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
  perform tarbox_private.audit(v_tenant, 'layer_create', null, null,
            p_detail => format('layer %s%s', v_frozen.layer_id, ': ' || p_message));
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
  perform tarbox_private.audit(v_tenant, 'layer_switch', null, null, p_detail => format('to layer %s', p_layer_id));
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

create or replace function tarbox.delete_layer(p_layer_id bigint) returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.lock_tenant();
  v_layer tarbox_private.layers := tarbox_private.require_layer(v_tenant, p_layer_id);
  v_child bigint;
  v_hashes bytea[];
begin
  if p_layer_id = any (v_tenant.layer_chain) then
    perform tarbox_private.fail('TBBSY', format('layer %s is part of the current view; switch away from it first', p_layer_id));
  end if;
  select layer_id into v_child from tarbox_private.layers
   where tenant_id = v_tenant.tenant_id and parent_layer_id = p_layer_id limit 1;
  if v_child is not null then
    perform tarbox_private.fail('TBBSY', format('layer %s is the parent of layer %s; delete that one first', p_layer_id, v_child));
  end if;
  perform tarbox_private.audit(v_tenant, 'layer_delete', null, null, p_detail => format('layer %s', p_layer_id));
  delete from tarbox_private.dentries where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id;
  delete from tarbox_private.inodes where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id;
  delete from tarbox_private.xattrs where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id;
  with gone as (
    delete from tarbox_private.file_blocks where tenant_id = v_tenant.tenant_id and layer_id + 0 = p_layer_id
    returning chunk_hash)
  select array_agg(distinct chunk_hash) filter (where chunk_hash is not null) into v_hashes from gone;
  delete from tarbox_private.layers where tenant_id = v_tenant.tenant_id and layer_id = p_layer_id;
  if v_hashes is not null then
    perform tarbox_private.release_chunks(v_tenant.tenant_id, v_hashes);
  end if;
end
$$;

-- Reads through SQL have no open handle to aggregate over: at level "all" each call is one
-- row, the SQL counterpart of the mount's per-handle row (operation "read", bytes_read).
-- They become volatile because they may write that row; the mount never calls them (it reads
-- block maps and chunks), so its read path is unchanged.
create or replace function tarbox.read(p_path bytea, p_offset bigint default 0, p_length integer default 1073741823)
returns bytea
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes := tarbox_private.resolve(v_tenant, p_path, true);
  v_data bytea := tarbox_private.read_bytes(v_tenant, v_inode, p_offset, p_length);
begin
  perform tarbox_private.audit(v_tenant, 'read', p_path, v_inode.ino, p_bytes_read => octet_length(v_data));
  return v_data;
end
$$;

create or replace function tarbox.read_ino(p_ino bigint, p_offset bigint, p_length integer) returns bytea
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_data bytea := tarbox_private.read_bytes(v_tenant, tarbox_private.require_inode(v_tenant, p_ino), p_offset, p_length);
begin
  perform tarbox_private.audit(v_tenant, 'read', null, p_ino, p_bytes_read => octet_length(v_data));
  return v_data;
end
$$;

create or replace function tarbox.read_file(p_path text) returns bytea
language sql volatile as $$
  select tarbox.read(convert_to(p_path, 'UTF8'), 0, 1073741823)
$$;
