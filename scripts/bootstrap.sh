#!/usr/bin/env bash
# Makes a checkout ready to run: FUSE 2 system packages, node_modules, the patched fuse-native
# addon, and dist/. Idempotent and quiet on success; prints what failed otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

have_libfuse2() {
  /sbin/ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2' ||
    ls /usr/lib/*/libfuse.so.2 /lib/*/libfuse.so.2 /usr/lib/libfuse.so.2 >/dev/null 2>&1
}

if ! have_libfuse2 || ! command -v fusermount >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! { apt-get update -q && apt-get install -y -q libfuse2 fuse; } >"$log" 2>&1; then
      cat "$log" >&2
      echo "bootstrap: installing libfuse2 and fuse failed" >&2
      exit 1
    fi
    rm -f "$log"
  else
    echo "bootstrap: libfuse2 or fusermount is missing; install them (e.g. sudo apt-get install libfuse2 fuse)" >&2
  fi
fi

# npm ci when node_modules is missing or older than the lock file it was installed from.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  if ! out=$(npm ci --no-audit --no-fund --loglevel=error 2>&1); then
    echo "$out" >&2
    echo "bootstrap: npm ci failed" >&2
    exit 1
  fi
fi

# npm ci runs it as postinstall; run it again (it is a no-op when current) for checkouts whose
# patch changed after node_modules was installed.
if [ -f scripts/build-fuse.sh ]; then
  if ! out=$(bash scripts/build-fuse.sh 2>&1); then
    echo "$out" >&2
    exit 1
  fi
fi

# The native mounts' host calls (shim/native/host-ops.c): a no-op when current.
if ! out=$(bash scripts/build-host-ops.sh 2>&1); then
  echo "$out" >&2
  exit 1
fi

# tsc directly rather than through npx: same compiler, without npm's start-up chatter.
node_modules/.bin/tsc -p .
