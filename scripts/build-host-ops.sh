#!/usr/bin/env bash
# Compile shim/native/host-ops.c, the native mounts' host calls that Node lacks (openat2,
# utimensat with nanoseconds, mknodat, l*xattr, fchmodat2), into
# node_modules/.tarbox/host-ops.node (loaded by shim/native-host.ts).
#
# A plain N-API addon in C: no node-gyp, no Python, no download; it needs a C compiler and
# Node's headers (node_api.h), which ship with Node (<prefix>/include/node) or sit in
# node-gyp's cache after fuse-native's build. Idempotent: rebuilt only when the source
# changed (FORCE_HOST_OPS_BUILD=1 forces it). Run by scripts/bootstrap.sh and postinstall.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/shim/native/host-ops.c"
OUT_DIR="$ROOT/node_modules/.tarbox"
ADDON="$OUT_DIR/host-ops.node"
STAMP="$OUT_DIR/host-ops.sha256"

log() { echo "build-host-ops: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -f "$SRC" ] || die "$SRC not found"
want="$(sha256sum "$SRC" | cut -d' ' -f1)"
if [ "${FORCE_HOST_OPS_BUILD:-0}" != "1" ] && [ -f "$ADDON" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  log "addon up to date ($ADDON)"
  exit 0
fi

# node_api.h: npm's nodedir, the running node's prefix, or node-gyp's header cache.
node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
version="$(node -p 'process.versions.node')"
include=""
for dir in ${npm_config_nodedir:+"$npm_config_nodedir/include/node"} "$node_prefix/include/node" \
           "$HOME/.cache/node-gyp/$version/include/node" "$HOME/.node-gyp/$version/include/node"; do
  if [ -f "$dir/node_api.h" ]; then include="$dir"; break; fi
done
[ -n "$include" ] || die "node_api.h not found (looked in $node_prefix/include/node and node-gyp's cache)"

CC="${CC:-cc}"
command -v "$CC" >/dev/null 2>&1 || die "no C compiler ($CC)"
mkdir -p "$OUT_DIR"
tmp="$OUT_DIR/host-ops.$$.node"
"$CC" -shared -fPIC -O2 -Wall -std=gnu11 -DNODE_GYP_MODULE_NAME=host_ops \
  -I"$include" -o "$tmp" "$SRC" || { rm -f "$tmp"; die "compiling $SRC failed"; }
node -e "if (require('$tmp').version !== 1) process.exit(1)" || { rm -f "$tmp"; die "$tmp does not load"; }
mv "$tmp" "$ADDON"
echo "$want" > "$STAMP"
log "built $ADDON"
