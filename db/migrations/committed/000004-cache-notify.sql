--! Previous: sha1:946bba91cd65ff596f7abd046d4549ecc7d7c5f1
--! Hash: sha1:71b19799d06778a25f3947606fac9072e536c4af
--! Message: cache invalidation notices

-- Cache invalidation across mounts: every committed change to an inode or a directory entry
-- publishes a tiny notice on the channel tarbox_cache, which each mount LISTENs to and
-- answers by dropping the matching cache entries (it never patches them: a notice is a nudge,
-- not a data channel). Payloads, space separated:
--
--   <tenant_id> <origin> i <ino>                   the inode's attributes changed
--   <tenant_id> <origin> d <parent_ino> <name hex> the entry name in that directory changed
--
-- <origin> is the session setting tarbox.origin ('-' when unset): a mount sets it on its
-- connections so it can skip the notices of its own changes, which it has already applied
-- to its caches. NOTIFY is delivered at commit (so never for a rolled-back change), and
-- identical payloads of one transaction are merged, so a create that touches its directory's
-- inode twice still sends one 'i' notice for it.
--
-- The triggers sit on inodes and dentries only. file_blocks changes always update the
-- inode (size, mtime) in the same transaction, and mounts re-read block maps on every first
-- open (close-to-open), so they need no notice of their own; xattrs are not cached, and
-- setxattr moves the inode's ctime; chunks are immutable. Row triggers are cheap here
-- because the rows of one operation are few (a create touches three rows); the cost was
-- measured and is in docs/performance.md.

create function tarbox_private.notice_origin() returns text
language sql stable as $$
  select coalesce(nullif(current_setting('tarbox.origin', true), ''), '-')
$$;
comment on function tarbox_private.notice_origin is 'The mount (or other client) a cache notice comes from: the session setting tarbox.origin, or "-".';

create function tarbox_private.tg_inodes__notify_change() returns trigger
language plpgsql volatile as $$
declare
  v_row tarbox_private.inodes := case when tg_op = 'DELETE' then old else new end;
begin
  perform pg_notify('tarbox_cache',
    v_row.tenant_id || ' ' || tarbox_private.notice_origin() || ' i ' || v_row.ino);
  return null;
end
$$;
comment on function tarbox_private.tg_inodes__notify_change is 'Tells mounts (NOTIFY tarbox_cache) that an inode''s attributes changed.';

create function tarbox_private.tg_dentries__notify_change() returns trigger
language plpgsql volatile as $$
declare
  v_row tarbox_private.dentries := case when tg_op = 'DELETE' then old else new end;
begin
  perform pg_notify('tarbox_cache',
    v_row.tenant_id || ' ' || tarbox_private.notice_origin() || ' d ' || v_row.parent_ino || ' ' || encode(v_row.name, 'hex'));
  return null;
end
$$;
comment on function tarbox_private.tg_dentries__notify_change is 'Tells mounts (NOTIFY tarbox_cache) that a directory entry appeared, changed or went.';

create trigger _900_notify_change after insert or update or delete on tarbox_private.inodes
  for each row execute function tarbox_private.tg_inodes__notify_change();
create trigger _900_notify_change after insert or update or delete on tarbox_private.dentries
  for each row execute function tarbox_private.tg_dentries__notify_change();

-- A mount caches a directory's attributes too, and a create or unlink changes them (mtime,
-- ctime). Asking for them with a second call costs a round trip per create (the kernel
-- asks for the directory's attributes before every create in it); these wrappers return
-- them in the same call. They call the public functions, so those stay the one definition.
create function tarbox_private.dir_of(p_path bytea) returns bytea
language sql immutable strict parallel safe as $$
  -- the 'escape' encoding keeps '/' as itself and round-trips every other byte
  select coalesce(nullif(decode(substring(encode(p_path, 'escape') from '^(.*)/'), 'escape'), ''::bytea), '\x2f'::bytea)
$$;
comment on function tarbox_private.dir_of is 'The directory part of a path: /a/b -> /a, /a -> /.';

create function tarbox.create_and_stat_dir(p_path bytea, p_mode integer default 420, p_uid integer default 0,
  p_gid integer default 0)
returns setof tarbox.attr
language plpgsql volatile as $$
begin
  return next tarbox.create(p_path, p_mode, p_uid, p_gid);
  return next tarbox.getattr(tarbox_private.dir_of(p_path));
end
$$;
comment on function tarbox.create_and_stat_dir is 'tarbox.create, then the attributes of the directory it created in: two rows (file, directory).';

create function tarbox.unlink_and_stat_dir(p_path bytea, p_uid integer default 0, p_keep_open boolean default false)
returns tarbox.attr
language plpgsql volatile as $$
begin
  perform tarbox.unlink(p_path, p_uid, p_keep_open);
  return tarbox.getattr(tarbox_private.dir_of(p_path));
end
$$;
comment on function tarbox.unlink_and_stat_dir is 'tarbox.unlink, then the attributes of the directory the name was in.';
