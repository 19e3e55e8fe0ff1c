# Tarbox developer entry points. Everything goes through scripts/bootstrap.sh, which is idempotent
# (system packages, npm ci, tsc) and quiet when there is nothing to do.
TARBOX := node bin/tarbox.js

.PHONY: build run test bench clean

build:
	@bash scripts/bootstrap.sh

# Initialise the database (embedded unless database.url / DATABASE_URL is set), then serve the
# default tenant at filesystem.mountpoint in the foreground until Ctrl-C.
run: build
	@$(TARBOX) init
	@GLIBC_TUNABLES=$${GLIBC_TUNABLES:+$$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1 $(TARBOX) mount --foreground  # cli/proc.ts mountProcessEnv

# One PostgreSQL for the whole run; prints "N passed, N failed" last. ARGS=... goes to ava.
test: build
	@node scripts/run-tests.mjs $(ARGS)

bench: build
	@npm run --silent bench

clean:
	rm -rf dist
