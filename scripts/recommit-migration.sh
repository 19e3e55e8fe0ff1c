#!/usr/bin/env bash
# Developer helper: (re)commit db/migrations/current/ as a numbered migration with
# graphile-migrate, using a scratch PostgreSQL given by DEV_PG (a server URL without db).
# Only for migrations that have not landed yet: landed migrations are never edited.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${DEV_PG:-postgres://postgres@127.0.0.1:54329}
psql "$base/postgres" -qc 'drop database if exists gm_main' -c 'create database gm_main' >/dev/null
export DATABASE_URL=$base/gm_main SHADOW_DATABASE_URL=$base/gm_shadow ROOT_DATABASE_URL=$base/postgres
npx graphile-migrate commit --message "${1:?message}" 2>&1 | grep -v nodedir
