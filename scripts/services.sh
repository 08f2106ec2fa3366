#!/usr/bin/env bash
# Install what the production-shaped end-to-end tests run besides Airflow: PostgreSQL and
# Redis, from Debian packages. Called by scripts/test.sh; idempotent, quiet, and a no-op
# (no apt at all) when both are installed already. The tests start their own servers on
# 127.0.0.1 with throw-away data directories; the packages' own services are never started.
set -euo pipefail

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; }
have_redis() { command -v redis-server >/dev/null 2>&1; }

if have_postgres && have_redis; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "services.sh: PostgreSQL / Redis missing and apt-get unusable here (not root?):" \
        "the PostgreSQL + Celery deployment tests will be skipped" >&2
    if [ -n "${CI:-}" ]; then exit 1; fi  # CI must install them: fail, do not skip
    exit 0
fi
echo "services.sh: installing postgresql and redis-server from Debian packages" >&2
# Keep the packages' init scripts from starting system-wide servers (ports 5432 / 6379).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql redis-server; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
rm -f "$log"
have_postgres && have_redis
