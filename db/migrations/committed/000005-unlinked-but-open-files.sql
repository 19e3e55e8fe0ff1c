--! Previous: sha1:cc4d555ea5f9754e9e52df917250885d6776f95f
--! Hash: sha1:d2ef464c9b3bf6c5ab33c103c935731b6df89b87
--! Message: unlinked but open files

--! split: 1-current.sql
-- Unlinked but open: POSIX lets a process keep reading and writing a file after its last
-- name is gone. The mount (with hard_remove) says when it holds the file open; the inode then
-- stays as an orphan (nlink 0, no name, data intact) until that mount's last close calls
-- tarbox.release(ino, was_read, p_orphan => true). Orphans left by a crashed mount are
-- collected by tarbox.collect_orphans() when no mount of the tenant runs.

drop function tarbox.unlink(bytea, integer);
drop function tarbox.rename(bytea, bytea, integer, integer);
drop function tarbox.release(bigint, boolean);
drop function tarbox_private.drop_link(tarbox_private.tenants, bigint);

create function tarbox_private.drop_link(p_tenant tarbox_private.tenants, p_ino bigint, p_keep_open boolean default false)
returns void
language plpgsql volatile as $$
declare
  v_inode tarbox_private.inodes := tarbox_private.lock_inode(p_tenant, p_ino);
begin
  v_inode.nlink := case when tarbox_private.is_dir(v_inode.mode) then 0 else v_inode.nlink - 1 end;
  v_inode.ctime_ns := tarbox_private.now_ns();
  if v_inode.nlink <= 0 and not (p_keep_open and not tarbox_private.is_dir(v_inode.mode)) then
    perform tarbox_private.drop_inode(p_tenant, p_ino);
  else
    perform tarbox_private.save_inode(v_inode);  -- still linked, or an open orphan
  end if;
end
$$;

create function tarbox.unlink(p_path bytea, p_uid integer default 0, p_keep_open boolean default false) returns void
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
end
$$;
comment on function tarbox.unlink is 'unlink(2). EISDIR for directories, EPERM in a sticky directory for non-owners. With p_keep_open the caller holds the file open: its inode stays, nameless, until tarbox.release(ino, ..., true).';

create function tarbox.rename(p_from bytea, p_to bytea, p_flags integer default 0, p_uid integer default 0,
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
comment on function tarbox.rename is 'rename(2) (p_flags 1 = RENAME_NOREPLACE): replaces a file or an empty directory; EINVAL for a move into its own subtree. p_keep_open: the replaced file is held open by the caller (see unlink).';

create function tarbox.release(p_ino bigint, p_was_read boolean default false, p_orphan boolean default false)
returns void
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_inode tarbox_private.inodes;
  v_now bigint := tarbox_private.now_ns();
begin
  v_inode := tarbox_private.find_inode(v_tenant, p_ino);
  if v_inode.ino is null then
    return;  -- removed meanwhile: nothing to do
  end if;
  if p_orphan and v_inode.nlink = 0 then
    perform tarbox_private.lock_inode(v_tenant, p_ino);
    perform tarbox_private.drop_inode(v_tenant, p_ino);
    return;
  end if;
  -- relatime, Linux's default: atime moves on a read only when it is not newer than mtime
  -- or ctime, or is more than a day old. Cheap to ask, rare to write.
  if p_was_read and (v_inode.atime_ns <= v_inode.mtime_ns or v_inode.atime_ns <= v_inode.ctime_ns
                     or v_inode.atime_ns < v_now - 86400000000000) then
    v_inode := tarbox_private.lock_inode(v_tenant, p_ino);
    v_inode.atime_ns := v_now;
    perform tarbox_private.save_inode(v_inode);
  end if;
end
$$;
comment on function tarbox.release(bigint, boolean, boolean) is 'Last close of an open inode: with p_was_read, atime moves by relatime rules; with p_orphan, an unlinked file kept open (see unlink) goes now.';

create function tarbox.collect_orphans() returns integer
language plpgsql volatile as $$
declare
  v_tenant tarbox_private.tenants := tarbox_private.current_tenant();
  v_ino bigint;
  v_count integer := 0;
begin
  -- only safe while no mount of the tenant holds unlinked files open
  for v_ino in
    select i.ino from tarbox_private.inodes i
     where i.tenant_id = v_tenant.tenant_id and i.layer_id = v_tenant.working_layer_id
       and i.nlink = 0 and not i.deleted and not tarbox_private.is_dir(i.mode)
  loop
    perform tarbox_private.drop_inode(v_tenant, v_ino);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
comment on function tarbox.collect_orphans is 'Remove unlinked files that a crashed mount held open (nlink 0). Run while the tenant is not mounted. Returns how many.';
