#!/usr/bin/env bash
# Patch fuse-native 2.2.6 with shim/native/fuse-native.patch and compile its addon with
# node-gyp (build/Release/fuse.node, loaded by shim/fuse/binding.ts).
#
# Idempotent: the patch is applied only when the marker is missing from fuse-native.c or
# the patch file changed since it was applied (a pristine copy is kept as
# fuse-native.c.tarbox-orig to re-apply from), and the addon is rebuilt only when the
# patch or the addon changed.
# Run from package.json "postinstall"; FORCE_FUSE_BUILD=1 forces a rebuild.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/node_modules/fuse-native"
PATCH_FILE="$ROOT/shim/native/fuse-native.patch"
MARKER="TARBOX_PATCH_V1"
EXPECTED_VERSION="2.2.6"
SRC="$PKG/fuse-native.c"
ORIG="$SRC.tarbox-orig"
ADDON="$PKG/build/Release/fuse.node"
STAMP="$PKG/build/tarbox-patch.sha256"

log() { echo "build-fuse: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -d "$PKG" ] || die "$PKG not found (run npm ci first)"
[ -f "$PATCH_FILE" ] || die "$PATCH_FILE not found"

version="$(node -p "require('$PKG/package.json').version")"
[ "$version" = "$EXPECTED_VERSION" ] ||
  die "fuse-native is $version, the patch is for $EXPECTED_VERSION"
grep -q "$MARKER" "$PATCH_FILE" || die "marker $MARKER missing from $PATCH_FILE"

apply_patch() {
  # `patch` skips the explanatory header of the patch file. Fallback: git apply with
  # discovery of the enclosing repository disabled (node_modules is not tracked).
  if command -v patch >/dev/null 2>&1; then
    (cd "$PKG" && patch -p1 --forward --batch --silent "$@" < "$PATCH_FILE")
  else
    (cd "$PKG" && GIT_CEILING_DIRECTORIES="$(dirname "$PKG")" git apply -p1 "$@" "$PATCH_FILE")
  fi
}

want="$(sha256sum "$PATCH_FILE" | cut -d' ' -f1)"
APPLIED="$PKG/.tarbox-patch-applied"   # sha256 of the patch file that was applied

if grep -q "$MARKER" "$SRC" && [ "$(cat "$APPLIED" 2>/dev/null)" = "$want" ]; then
  log "patch already applied"
else
  if grep -q "TARBOX_PATCH_V" "$SRC"; then
    # Patched by another version of our patch: start again from the pristine copy.
    [ -f "$ORIG" ] || die "$SRC carries another Tarbox patch and $ORIG is missing; reinstall fuse-native"
    cp "$ORIG" "$SRC"
  fi
  [ -f "$ORIG" ] || cp "$SRC" "$ORIG"
  if command -v patch >/dev/null 2>&1; then
    apply_patch --dry-run >/dev/null || die "patch does not apply cleanly to $SRC"
  else
    apply_patch --check || die "patch does not apply cleanly to $SRC"
  fi
  apply_patch
  grep -q "$MARKER" "$SRC" || die "marker missing after patching"
  echo "$want" > "$APPLIED"
  log "patch applied"
fi

if [ "${FORCE_FUSE_BUILD:-0}" != "1" ] && [ -f "$ADDON" ] && [ -f "$STAMP" ] &&
   [ "$(cat "$STAMP")" = "$want" ] && [ "$ADDON" -nt "$SRC" ]; then
  log "addon up to date ($ADDON)"
  exit 0
fi

# node-gyp: the one npm passes to lifecycle scripts, else npm's bundled copy, else PATH.
GYP=()
if [ -n "${npm_config_node_gyp:-}" ] && [ -f "${npm_config_node_gyp}" ]; then
  GYP=(node "$npm_config_node_gyp")
else
  npm_cli="$(readlink -f "$(command -v npm)" 2>/dev/null || true)"
  bundled="$(dirname "$(dirname "$npm_cli")")/node_modules/node-gyp/bin/node-gyp.js"
  if [ -n "$npm_cli" ] && [ -f "$bundled" ]; then
    GYP=(node "$bundled")
  elif command -v node-gyp >/dev/null 2>&1; then
    GYP=(node-gyp)
  else
    die "node-gyp not found"
  fi
fi

# Use the local Node headers when they exist (no download): the prefix of the running
# node binary, or npm's configured nodedir.
GYP_ARGS=(rebuild)
node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
nodedir="${npm_config_nodedir:-}"
if [ -z "$nodedir" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then
  nodedir="$node_prefix"
fi
[ -n "$nodedir" ] && GYP_ARGS+=("--nodedir=$nodedir")

log "building with ${GYP[*]} ${GYP_ARGS[*]}"
(cd "$PKG" && "${GYP[@]}" "${GYP_ARGS[@]}" --loglevel=warn >&2) || die "node-gyp rebuild failed"

[ -f "$ADDON" ] || die "$ADDON was not produced"
node -e "
  const b = require('$ADDON');
  if (b.tarbox_patch !== 1 || b.offsetof_fuse_thread_locals_t_caller_uid !== 0) process.exit(1);
" || die "$ADDON does not carry the Tarbox patch"
echo "$want" > "$STAMP"
log "built $ADDON"
