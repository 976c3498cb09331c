#!/usr/bin/env bash
#
# scripts/demo.sh -- see builtin_pool serve 1000 pgbench clients (run as root).
#
# Installs the packages, builds and installs the extension, creates the
# unprivileged user, and as that user runs a throwaway cluster in a temp dir
# (loopback only):
#   main port 127.0.0.1:55432   dedicated backends, used for the setup
#   pool port 127.0.0.1:6543    builtin_pool, session_pool_size = 4
# It creates role and database "app", loads pgbench data (scale 10), then,
# through the pool port, runs pgbench select-only and TPC-B with 1000 clients
# (-j 2, 15 s each, simple protocol), shows pool_status(), stops the cluster
# and removes the temp dir.  Exits non-zero if any step fails.
#
# Environment (defaults in brackets):
#   BP_DEMO_PG_PORT [55432]  BP_DEMO_POOL_PORT [6543]  BP_DEMO_CLIENTS [1000]
#   BP_DEMO_THREADS [2]      BP_DEMO_DURATION [15]     BP_DEMO_SCALE [10]
#   BP_DEMO_POOL_SIZE [4]    BP_DEMO_KEEP=1 keeps the temp dir (logs)
#   BP_SKIP_APT=1, BP_USER: see scripts/common.sh

set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_PORT=${BP_DEMO_PG_PORT:-55432}
POOL_PORT=${BP_DEMO_POOL_PORT:-6543}
CLIENTS=${BP_DEMO_CLIENTS:-1000}
THREADS=${BP_DEMO_THREADS:-2}
DURATION=${BP_DEMO_DURATION:-15}
SCALE=${BP_DEMO_SCALE:-10}
POOL_SIZE=${BP_DEMO_POOL_SIZE:-4}
# The demo shows the pool: warnings are test.sh's business.
export BP_ALLOW_WARNINGS=${BP_ALLOW_WARNINGS:-1}

bp_require_root
bp_install_packages
bp_create_user
bp_raise_fd_limit
# pgbench holds one socket per client; so do the executors, between them.
bp_check_user_fd_limit $((CLIENTS + 1024))

for p in "$PG_PORT" "$POOL_PORT"; do
	if bp_port_in_use "$p"; then
		bp_die "port $p on 127.0.0.1 is already in use (set BP_DEMO_PG_PORT / BP_DEMO_POOL_PORT)"
	fi
done

BUILD=${BP_BUILD_DIR:-$BP_HOME/builtin_pool-demo}
bp_copy_tree "$BUILD"
bp_build "$BUILD" "$BUILD/build.log"
bp_install "$BUILD"

TMP=$(mktemp -d /tmp/builtin_pool-demo.XXXXXX)
chown "$BP_USER:$BP_USER" "$TMP"
chmod 0700 "$TMP"
DATA=$TMP/data
SOCK=$TMP/sock
LOG=$TMP/server.log

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -f "$DATA/postmaster.pid" ]; then
		bp_log "stopping the cluster"
		bp_run "$TMP" pg_ctl stop -D "$DATA" -m fast -t 60 >/dev/null 2>&1 ||
			bp_run "$TMP" pg_ctl stop -D "$DATA" -m immediate -t 30 >/dev/null 2>&1 || true
	fi
	if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
		printf '\n----- server log (last 100 lines) -----\n' >&2
		tail -n 100 "$LOG" >&2
	fi
	if [ "${BP_DEMO_KEEP:-0}" = 1 ]; then
		bp_log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	if [ "$rc" -eq 0 ]; then
		bp_log "demo finished OK"
	else
		bp_log "demo FAILED (exit $rc)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# as_bp CMD...: run as the user, in the temp dir, libpq bounded and pointed
# at loopback.
as_bp() {
	bp_run "$TMP" env PGCONNECT_TIMEOUT=10 PGHOST=127.0.0.1 "$@"
}

step() {
	printf '\n==== %s ====\n' "$1"
}

step "initdb in $TMP (as $BP_USER)"
as_bp mkdir -m 0700 "$SOCK"
as_bp timeout 120 initdb -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 ||
	{ cat "$TMP/initdb.log"; bp_die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# ---- builtin_pool demo ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK'
max_connections = 100
shared_buffers = 256MB
max_worker_processes = 40
shared_preload_libraries = 'builtin_pool'
builtin_pool.port = $POOL_PORT
builtin_pool.session_pool_size = $POOL_SIZE
log_line_prefix = '%m [%p] %q%u@%d '
EOF

step "start the server"
as_bp timeout 90 pg_ctl start -D "$DATA" -l "$LOG" -w -t 60 || bp_die "the server did not start"
PM_PID=$(head -n 1 "$DATA/postmaster.pid")
bp_log "postmaster pid $PM_PID, $(grep 'Max open files' "/proc/$PM_PID/limits" | tr -s ' ')"
ok=0
for _ in $(seq 1 60); do
	if bp_port_in_use "$POOL_PORT"; then ok=1; break; fi
	sleep 0.5
done
[ "$ok" = 1 ] || bp_die "the pool port 127.0.0.1:$POOL_PORT did not open within 30 s"
bp_log "main port 127.0.0.1:$PG_PORT and pool port 127.0.0.1:$POOL_PORT are up"

step "create role and database app (main port)"
as_bp timeout 60 psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -U postgres -d postgres \
	-c 'CREATE ROLE app LOGIN' \
	-c 'GRANT pg_read_all_stats TO app' \
	-c 'CREATE DATABASE app OWNER app'

step "pgbench -i -s $SCALE (main port)"
as_bp timeout 900 pgbench -i -q -s "$SCALE" -p "$PG_PORT" -U app app

step "CREATE EXTENSION builtin_pool (main port)"
as_bp timeout 60 psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -U postgres -d app \
	-c 'CREATE EXTENSION builtin_pool'

# pgbench -n: no vacuum/truncate before the run (done by -i already), so the
# pool only sees the benchmark's own transactions.
PGB=(pgbench -n -M simple -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -P 5
	-p "$POOL_PORT" -U app app)
PGB_TIMEOUT=$((DURATION + 240))

step "pool port: pgbench -S (select only), $CLIENTS clients, ${DURATION}s"
as_bp timeout --kill-after=10 "$PGB_TIMEOUT" "${PGB[@]}" -S

step "pool port: pgbench TPC-B, $CLIENTS clients, ${DURATION}s"
as_bp timeout --kill-after=10 "$PGB_TIMEOUT" "${PGB[@]}"

step "pool_status() through the pool port"
as_bp timeout 60 psql -X -v ON_ERROR_STOP=1 -p "$POOL_PORT" -U app -d app \
	-c 'SELECT * FROM pool_status()'

step "server health"
if grep -E 'PANIC|terminated by signal|terminating any other active server processes' "$LOG"; then
	bp_die "the server log reports a crashed process (see above)"
fi
bp_log "no crash in the server log"
