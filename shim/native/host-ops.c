// host-ops: the host calls that native mounts need and Node does not offer (docs/native-mounts.md).
//
// Every function takes directory descriptors and single names (never a path the host resolves
// on its own), acts without following a final symlink, and returns a number: >= 0 on success,
// -errno on failure (no exceptions: a failed lookup is ordinary and must stay cheap).
// Strings arrive as latin1 JS strings (one char per byte, as FUSE paths are in the shim).
//
//   openBeneath(rootFd, rel, flags)         openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
//   statAt(dirFd, name, out Float64Array)   fstatat(AT_SYMLINK_NOFOLLOW); name "" = dirFd itself
//   openAt(dirFd, name, flags, mode)        openat(O_NOFOLLOW | O_CLOEXEC added)
//   mkdirAt / mknodAt / symlinkAt / readlinkAt / unlinkAt / renameAt / linkAt
//   chownAt(dirFd, name, uid, gid)          fchownat(AT_SYMLINK_NOFOLLOW), -1 keeps
//   chmodAt(dirFd, name, mode)              fchmodat2(AT_SYMLINK_NOFOLLOW): a symlink is EOPNOTSUPP
//   utimensAt(dirFd, name, aSec, aNsec, mSec, mNsec)   utimensat(AT_SYMLINK_NOFOLLOW), nanoseconds
//   getXattrAt / listXattrAt / setXattrAt / removeXattrAt   l*xattr on /proc/self/fd/<dirFd>/<name>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <node_api.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

#define MAX_ARGS 6
#define STAT_FIELDS 16
// "/proc/self/fd/" + an int + "/" + a name of up to PATH_MAX bytes
#define PROC_PATH_MAX (PATH_MAX + 32)

typedef struct {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int failed; // a JS exception is pending
} call_t;

static int get_args(napi_env env, napi_callback_info info, call_t *c, size_t want) {
  c->env = env;
  c->argc = MAX_ARGS;
  c->failed = 0;
  if (napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL) != napi_ok || c->argc < want) {
    napi_throw_type_error(env, NULL, "host-ops: missing arguments");
    c->failed = 1;
  }
  return !c->failed;
}

static int64_t int_arg(call_t *c, size_t i) {
  int64_t v = 0;
  if (!c->failed && napi_get_value_int64(c->env, c->argv[i], &v) != napi_ok) {
    napi_throw_type_error(c->env, NULL, "host-ops: expected a number");
    c->failed = 1;
  }
  return v;
}

// A latin1 string into buf (NUL-terminated). Returns 0, or -ENAMETOOLONG when it does not fit.
static int str_arg(call_t *c, size_t i, char *buf, size_t size) {
  size_t len = 0;
  if (c->failed) return 0;
  if (napi_get_value_string_latin1(c->env, c->argv[i], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(c->env, NULL, "host-ops: expected a string");
    c->failed = 1;
    return 0;
  }
  if (len >= size) return -ENAMETOOLONG;
  napi_get_value_string_latin1(c->env, c->argv[i], buf, size, &len);
  if (strlen(buf) != len) return -EINVAL; // a NUL byte inside the name
  return 0;
}

static void *buffer_arg(call_t *c, size_t i, size_t *len) {
  void *data = NULL;
  *len = 0;
  if (c->failed) return NULL;
  bool is_buffer = false;
  napi_is_buffer(c->env, c->argv[i], &is_buffer);
  if (!is_buffer) {
    napi_throw_type_error(c->env, NULL, "host-ops: expected a Buffer");
    c->failed = 1;
    return NULL;
  }
  napi_get_buffer_info(c->env, c->argv[i], &data, len);
  return data;
}

static napi_value number(call_t *c, double v) {
  napi_value out;
  if (c->failed) return NULL;
  napi_create_double(c->env, v, &out);
  return out;
}

// The result of a call that returns -1 with errno set.
static napi_value result(call_t *c, long r) {
  return number(c, r < 0 ? -errno : r);
}

#define NAME_ARG(var, i)                           \
  char var[PATH_MAX + 1];                          \
  int var##_bad = str_arg(&c, i, var, sizeof var); \
  if (c.failed) return NULL;                       \
  if (var##_bad) return number(&c, var##_bad);

// The start of every call whose arguments 0 and 1 are a directory descriptor and a name.
#define ENTRY_ARGS(argc)                            \
  call_t c;                                         \
  if (!get_args(env, info, &c, argc)) return NULL;  \
  int dir = (int)int_arg(&c, 0);                    \
  NAME_ARG(name, 1);

// fstatat and friends accept "" only with AT_EMPTY_PATH: it means the descriptor itself.
static int empty_flag(const char *name) { return name[0] == '\0' ? AT_EMPTY_PATH : 0; }

static napi_value open_beneath(napi_env env, napi_callback_info info) {
  call_t c;
  if (!get_args(env, info, &c, 3)) return NULL;
  int root = (int)int_arg(&c, 0);
  NAME_ARG(rel, 1);
  int flags = (int)int_arg(&c, 2);
  if (c.failed) return NULL;
  struct open_how how = {
    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  return result(&c, syscall(SYS_openat2, root, rel, &how, sizeof how));
}

static napi_value stat_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(3);
  bool is_typed = false;
  napi_is_typedarray(env, c.argv[2], &is_typed);
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (is_typed) napi_get_typedarray_info(env, c.argv[2], &type, &length, &data, NULL, NULL);
  if (!is_typed || type != napi_float64_array || length < STAT_FIELDS) {
    napi_throw_type_error(env, NULL, "host-ops: statAt needs a Float64Array of 16");
    return NULL;
  }
  struct stat st;
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW | empty_flag(name)) < 0) return number(&c, -errno);
  double *f = data;
  uint64_t ino = st.st_ino;
  f[0] = (double)(ino >> 32); f[1] = (double)(ino & 0xffffffffu);
  f[2] = st.st_mode; f[3] = st.st_nlink; f[4] = st.st_uid; f[5] = st.st_gid; f[6] = st.st_rdev;
  f[7] = st.st_size; f[8] = st.st_blocks; f[9] = st.st_blksize;
  f[10] = st.st_atim.tv_sec; f[11] = st.st_atim.tv_nsec;
  f[12] = st.st_mtim.tv_sec; f[13] = st.st_mtim.tv_nsec;
  f[14] = st.st_ctim.tv_sec; f[15] = st.st_ctim.tv_nsec;
  return number(&c, 0);
}

static napi_value open_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(4);
  int flags = (int)int_arg(&c, 2);
  mode_t mode = (mode_t)int_arg(&c, 3);
  if (c.failed) return NULL;
  return result(&c, openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode));
}

static napi_value mkdir_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(3);
  mode_t mode = (mode_t)int_arg(&c, 2);
  if (c.failed) return NULL;
  return result(&c, mkdirat(dir, name, mode));
}

static napi_value mknod_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(4);
  mode_t mode = (mode_t)int_arg(&c, 2);
  dev_t dev = (dev_t)int_arg(&c, 3);
  if (c.failed) return NULL;
  return result(&c, mknodat(dir, name, mode, dev));
}

static napi_value symlink_at(napi_env env, napi_callback_info info) {
  call_t c;
  if (!get_args(env, info, &c, 3)) return NULL;
  NAME_ARG(target, 0);
  int dir = (int)int_arg(&c, 1);
  NAME_ARG(name, 2);
  if (c.failed) return NULL;
  return result(&c, symlinkat(target, dir, name));
}

// The link's text as a latin1 string, or -errno.
static napi_value readlink_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(2);
  if (c.failed) return NULL;
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat(dir, name, target, sizeof target);
  if (n < 0) return number(&c, -errno);
  if ((size_t)n >= sizeof target) return number(&c, -ENAMETOOLONG);
  napi_value out;
  napi_create_string_latin1(env, target, (size_t)n, &out);
  return out;
}

static napi_value unlink_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(3);
  int flags = (int)int_arg(&c, 2);
  if (c.failed) return NULL;
  return result(&c, unlinkat(dir, name, flags));
}

typedef int (*two_entries_fn)(int, const char *, int, const char *);

// (fromDir, from, toDir, to) -> fn
static napi_value two_entries(napi_env env, napi_callback_info info, two_entries_fn fn) {
  call_t c;
  if (!get_args(env, info, &c, 4)) return NULL;
  int from_dir = (int)int_arg(&c, 0);
  NAME_ARG(from, 1);
  int to_dir = (int)int_arg(&c, 2);
  NAME_ARG(to, 3);
  if (c.failed) return NULL;
  return result(&c, fn(from_dir, from, to_dir, to));
}

static napi_value rename_at(napi_env env, napi_callback_info info) { return two_entries(env, info, renameat); }

// Without AT_SYMLINK_FOLLOW: a symlink given as the existing name is linked itself.
static int link_nofollow(int from_dir, const char *from, int to_dir, const char *to) {
  return linkat(from_dir, from, to_dir, to, 0);
}

static napi_value link_at(napi_env env, napi_callback_info info) { return two_entries(env, info, link_nofollow); }

static napi_value chown_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(4);
  uid_t uid = (uid_t)int_arg(&c, 2);
  gid_t gid = (gid_t)int_arg(&c, 3);
  if (c.failed) return NULL;
  return result(&c, fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW | empty_flag(name)));
}

// fchmodat2 (Linux 6.6) is the only chmod that refuses to follow a final symlink. Before it:
// an O_PATH descriptor of the entry itself, refused when it is a symlink, chmod'ed through /proc.
static napi_value chmod_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(3);
  mode_t mode = (mode_t)int_arg(&c, 2);
  if (c.failed) return NULL;
  if (syscall(SYS_fchmodat2, dir, name, mode, AT_SYMLINK_NOFOLLOW | empty_flag(name)) == 0) return number(&c, 0);
  if (errno != ENOSYS) return number(&c, -errno);
  int fd = openat(dir, name[0] ? name : ".", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return number(&c, -errno);
  struct stat st;
  int r = fstat(fd, &st);
  if (r == 0 && S_ISLNK(st.st_mode)) {
    errno = EOPNOTSUPP;
    r = -1;
  }
  if (r == 0) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    r = chmod(proc, mode);
  }
  int saved = errno;
  close(fd);
  return number(&c, r < 0 ? -saved : 0);
}

// Seconds as JS numbers (exact to 2^53), nanoseconds as given: UTIME_NOW and UTIME_OMIT work.
static napi_value utimens_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(6);
  struct timespec times[2] = {
    { .tv_sec = (time_t)int_arg(&c, 2), .tv_nsec = (long)int_arg(&c, 3) },
    { .tv_sec = (time_t)int_arg(&c, 4), .tv_nsec = (long)int_arg(&c, 5) },
  };
  if (c.failed) return NULL;
  return result(&c, utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW | empty_flag(name)));
}

// The path the l*xattr calls take: the directory through its descriptor, then the name, whose
// final component they do not follow. Name "" is the directory itself.
static int proc_path(char *out, size_t size, int dir, const char *name) {
  int n = name[0] ? snprintf(out, size, "/proc/self/fd/%d/%s", dir, name) : snprintf(out, size, "/proc/self/fd/%d/.", dir);
  return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

#define PROC_ARG(var, dir, name)                            \
  char var[PROC_PATH_MAX];                                  \
  int var##_bad = proc_path(var, sizeof var, dir, name);    \
  if (var##_bad) return number(&c, var##_bad);

// getXattrAt(dir, name, attr, buf): the value's size (buf.length 0 asks for the size only).
static napi_value get_xattr_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(4);
  NAME_ARG(attr, 2);
  size_t len;
  void *buf = buffer_arg(&c, 3, &len);
  if (c.failed) return NULL;
  PROC_ARG(path, dir, name);
  return result(&c, lgetxattr(path, attr, len ? buf : NULL, len));
}

// listXattrAt(dir, name, buf): the list's size in bytes (NUL-separated names).
static napi_value list_xattr_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(3);
  size_t len;
  void *buf = buffer_arg(&c, 2, &len);
  if (c.failed) return NULL;
  PROC_ARG(path, dir, name);
  return result(&c, llistxattr(path, len ? buf : NULL, len));
}

static napi_value set_xattr_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(5);
  NAME_ARG(attr, 2);
  size_t len;
  void *value = buffer_arg(&c, 3, &len);
  int flags = (int)int_arg(&c, 4);
  if (c.failed) return NULL;
  PROC_ARG(path, dir, name);
  return result(&c, lsetxattr(path, attr, value, len, flags));
}

static napi_value remove_xattr_at(napi_env env, napi_callback_info info) {
  ENTRY_ARGS(3);
  NAME_ARG(attr, 2);
  if (c.failed) return NULL;
  PROC_ARG(path, dir, name);
  return result(&c, lremovexattr(path, attr));
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    { "openBeneath", open_beneath }, { "statAt", stat_at }, { "openAt", open_at },
    { "mkdirAt", mkdir_at }, { "mknodAt", mknod_at }, { "symlinkAt", symlink_at },
    { "readlinkAt", readlink_at }, { "unlinkAt", unlink_at }, { "renameAt", rename_at },
    { "linkAt", link_at }, { "chownAt", chown_at }, { "chmodAt", chmod_at },
    { "utimensAt", utimens_at }, { "getXattrAt", get_xattr_at }, { "listXattrAt", list_xattr_at },
    { "setXattrAt", set_xattr_at }, { "removeXattrAt", remove_xattr_at },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  napi_value version;
  napi_create_uint32(env, 1, &version);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
