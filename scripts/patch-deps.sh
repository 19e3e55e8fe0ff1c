#!/usr/bin/env bash
# Apply patches/<package>-<version>-<what>.patch to node_modules/<package>, once.
# Each patch fixes a bug we hit in a pinned dependency; the file name says which and why.
# Idempotent: a patch that is already applied is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
for patch in patches/*.patch; do
  [ -e "$patch" ] || continue
  name=$(basename "$patch" .patch)
  package=${name%%-[0-9]*}
  dir=node_modules/$package
  [ -d "$dir" ] || { echo "patch-deps: $dir missing for $patch" >&2; exit 1; }
  if patch -d "$dir" -p1 --dry-run -R -s -f < "$patch" >/dev/null 2>&1; then
    continue   # already applied
  fi
  patch -d "$dir" -p1 -s -f < "$patch"
done
