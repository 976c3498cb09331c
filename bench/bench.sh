#!/usr/bin/env bash
# bench/bench.sh — compare, in one run, direct PostgreSQL connections, the
# builtin_pool pool port, PgBouncer (transaction mode) and, as target
# "mainpool", a second server whose main port is pooled
# (builtin_pool.session_pool_ports = 0) with pgbench at growing client
# counts.  See bench/README.md.
#
# The script builds a throwaway cluster in a temp dir (loopback only), starts
# PgBouncer in front of it, and for every (protocol, mode, clients) point runs
# direct, pool and pgbouncer back to back, so that drift hits all three alike.

set -u -o pipefail

# ---------------------------------------------------------------- defaults --
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SCRIPT_DIR/.." && pwd)}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBOUNCER=${PGBOUNCER:-}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-"8 64 256 1000"}
MODES=${MODES:-"select tpcb"}
PROTOCOLS=${PROTOCOLS:-"simple"}
TARGETS=${TARGETS:-"direct pool pgbouncer"}
SCALE=${SCALE:-10}
THREADS=${THREADS:-2}
POOL_SIZE=${POOL_SIZE:-4}
MAX_SESSIONS=${MAX_SESSIONS:-1000}
PG_PORT=${PG_PORT:-55440}
POOL_PORT=${POOL_PORT:-6560}
BOUNCER_PORT=${BOUNCER_PORT:-6561}
MAINPOOL_PORT=${MAINPOOL_PORT:-55442}
MAINPOOL_MAX_CONNECTIONS=${MAINPOOL_MAX_CONNECTIONS:-200}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-1100}
OS_USER=${OS_USER:-bp}
RESULTS_DIR=${RESULTS_DIR:-$SCRIPT_DIR/results}
TIMEOUT_MARGIN=${TIMEOUT_MARGIN:-60}
WARMUP=${WARMUP:-3}
SETTLE_MAX=${SETTLE_MAX:-20}
STALL=0
STALL_CLIENTS=${STALL_CLIENTS:-1000}
STALL_IDLERS=${STALL_IDLERS:-4}
BUILD=0
KEEP=0
TLS=0
EXTRA_PGCONF=()

usage() {
    cat <<EOF
Usage: bench/bench.sh [options]

Compares direct connections, the builtin_pool pool port and PgBouncer
(pool_mode=transaction) with pgbench, for every (protocol, mode, clients).

  -T SEC             duration of every pgbench run (default $DURATION)
  -c "N N ..."       client counts (default "$CLIENTS"; env CLIENTS)
  -s SCALE           pgbench scale factor (default $SCALE)
  -j THREADS         pgbench threads (default $THREADS)
  -P SIZE            server connections per pool: builtin_pool.session_pool_size
                     and PgBouncer default_pool_size (default $POOL_SIZE)
  -M "P P ..."       pgbench protocols: simple, extended, prepared
                     (default "$PROTOCOLS"; env PROTOCOLS)
  --all-protocols    same as -M "simple extended prepared"
  --modes "M M"      select (pgbench -S), tpcb and/or connect (pgbench -C -S:
                     a new connection per transaction) (default "$MODES")
  --targets "T T"    any of direct pool pgbouncer mainpool (default "$TARGETS");
                     mainpool: a copy of the cluster on --mainpool-port whose
                     main port is pooled (builtin_pool.session_pool_ports = 0,
                     max_connections $MAINPOOL_MAX_CONNECTIONS)
  --warmup SEC       unrecorded select-only warm-up per target before the
                     grid, 8 clients (default $WARMUP; 0 = none)
  --stall            after the grid, the "stall" scenario: pgbench with
                     STALL_CLIENTS clients (default $STALL_CLIENTS), select-only
                     and TPC-B (--modes), without and with STALL_IDLERS
                     sessions (default $STALL_IDLERS) idle in a transaction
                     for the whole run, per target: TPS and p99 latency
  --stall-only       the stall scenario without the grid
  --stall-clients N  clients of the stall scenario
  --max-sessions N   builtin_pool.max_sessions (default $MAX_SESSIONS)
  --pg-port N        main PostgreSQL port (default $PG_PORT)
  --pool-port N      builtin_pool.port (default $POOL_PORT)
  --bouncer-port N   PgBouncer port (default $BOUNCER_PORT)
  --mainpool-port N  main port of the mainpool server (default $MAINPOOL_PORT)
  --pgconf 'k = v'   extra postgresql.conf line (repeatable)
  --tls              every client connects with sslmode=require (server
                     ssl = on with a throwaway self-signed certificate,
                     PgBouncer client_tls_sslmode = require)
  --os-user NAME     unprivileged OS user running the server when started
                     as root (default $OS_USER; created if missing)
  --pool-so PATH     preload this builtin_pool.so instead of the installed
                     one (default \$libdir/builtin_pool.so)
  --build            run 'make' and 'make install' in the repo first
  --repo DIR         repository to build (default $REPO)
  --results-dir DIR  where <timestamp>.md goes (default bench/results)
  --keep             keep the temp dir (cluster, logs) at exit
  -h, --help         this text
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        -T) DURATION=$2; shift 2 ;;
        -c) CLIENTS=$2; shift 2 ;;
        -s) SCALE=$2; shift 2 ;;
        -j) THREADS=$2; shift 2 ;;
        -P) POOL_SIZE=$2; shift 2 ;;
        -M) PROTOCOLS=$2; shift 2 ;;
        --all-protocols) PROTOCOLS="simple extended prepared"; shift ;;
        --modes) MODES=$2; shift 2 ;;
        --targets) TARGETS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --force-prepared-tpcb) shift ;;  # accepted, no longer needed
        --stall) STALL=1; shift ;;
        --stall-only) STALL=2; shift ;;
        --stall-clients) STALL_CLIENTS=$2; shift 2 ;;
        --max-sessions) MAX_SESSIONS=$2; shift 2 ;;
        --pg-port) PG_PORT=$2; shift 2 ;;
        --pool-port) POOL_PORT=$2; shift 2 ;;
        --bouncer-port) BOUNCER_PORT=$2; shift 2 ;;
        --mainpool-port) MAINPOOL_PORT=$2; shift 2 ;;
        --pgconf) EXTRA_PGCONF+=("$2"); shift 2 ;;
        --tls) TLS=1; shift ;;
        --os-user) OS_USER=$2; shift 2 ;;
        --pool-so) POOL_SO=$2; shift 2 ;;
        --build) BUILD=1; shift ;;
        --repo) REPO=$2; shift 2 ;;
        --results-dir) RESULTS_DIR=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

# accept commas as separators too
CLIENTS=${CLIENTS//,/ }; MODES=${MODES//,/ }; PROTOCOLS=${PROTOCOLS//,/ }; TARGETS=${TARGETS//,/ }

log()  { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }

for p in $PROTOCOLS; do case $p in simple|extended|prepared) ;; *) die "bad protocol '$p'";; esac; done
for m in $MODES; do case $m in select|tpcb|connect) ;; *) die "bad mode '$m' (select|tpcb|connect)";; esac; done
for t in $TARGETS; do case $t in direct|pool|pgbouncer|mainpool) ;; *) die "bad target '$t'";; esac; done
for n in $STALL_CLIENTS $STALL_IDLERS $CLIENTS $DURATION $WARMUP $SCALE $THREADS $POOL_SIZE $MAX_SESSIONS $PG_PORT $POOL_PORT $BOUNCER_PORT $MAINPOOL_PORT; do
    [[ $n =~ ^[0-9]+$ ]] || die "not a number: '$n'"
done

has_target() { [[ " $TARGETS " == *" $1 "* ]]; }

# ------------------------------------------------------------ environment --
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

install_packages() {
    # Only as root, only what is missing.  Keep Debian from creating and
    # starting a "main" cluster on 5432 / a pgbouncer on 6432.
    local need=()
    [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] || need+=(postgresql-15 postgresql-client-15)
    [ -n "$PGBOUNCER" ] || command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
    if [ "$BUILD" = 1 ] && { [ ! -x "$PGBIN/pg_config" ] || [ ! -e /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk ]; }; then
        need+=(postgresql-server-dev-15 build-essential)
    fi
    command -v timeout >/dev/null || need+=(coreutils)
    command -v setpriv >/dev/null || need+=(util-linux)
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$IS_ROOT" = 1 ] || die "missing packages (${need[*]}); run as root or install them"
    log "installing: ${need[*]}"
    mkdir -p /etc/postgresql-common/createcluster.d
    [ -e /etc/postgresql-common/createcluster.d/99-builtin-pool-bench.conf ] ||
        echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/99-builtin-pool-bench.conf
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    local rc=$?
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc -eq 0 ] || die "apt-get install failed"
}
install_packages

[ -n "$PGBOUNCER" ] || PGBOUNCER=$(command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer)
for b in postgres initdb pg_ctl psql pgbench pg_isready; do
    [ -x "$PGBIN/$b" ] || die "$PGBIN/$b not found"
done
if has_target pgbouncer; then [ -x "$PGBOUNCER" ] || die "pgbouncer not found"; fi

if [ "$BUILD" = 1 ]; then
    log "building builtin_pool in $REPO"
    make -C "$REPO" PG_CONFIG="$PGBIN/pg_config" >/dev/null || die "make failed"
    make -C "$REPO" PG_CONFIG="$PGBIN/pg_config" install >/dev/null || die "make install failed"
fi
PKGLIBDIR=$("$PGBIN/pg_config" --pkglibdir)
POOL_SO=${POOL_SO:-$PKGLIBDIR/builtin_pool.so}
# preload by name when it is the installed one, by path otherwise (--pool-so)
if [ "$POOL_SO" = "$PKGLIBDIR/builtin_pool.so" ]; then POOL_PRELOAD=builtin_pool; else POOL_PRELOAD=$POOL_SO; fi

# File descriptors: pgbench with 1000 clients, the postmaster's children and
# pgbouncer with 1000+ clients all need more than the usual 1024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
maxc=0; for c in $CLIENTS; do [ "$c" -gt "$maxc" ] && maxc=$c; done
[ "$FD_LIMIT" != unlimited ] && [ "$FD_LIMIT" -lt $((maxc + 100)) ] &&
    log "WARNING: fd limit $FD_LIMIT is low for $maxc clients"
[ "$MAX_CONNECTIONS" -lt $((maxc + POOL_SIZE + 20)) ] && MAX_CONNECTIONS=$((maxc + POOL_SIZE + 20))

# Everything server-side (and pgbench) runs as an unprivileged user.
if [ "$IS_ROOT" = 1 ]; then
    if ! id -u "$OS_USER" >/dev/null 2>&1; then
        log "creating OS user $OS_USER"
        useradd --system --user-group --no-create-home --shell /bin/bash "$OS_USER" ||
            die "useradd $OS_USER failed"
    fi
else
    OS_USER=$(id -un)
fi

export PGSSLMODE=disable PGGSSENCMODE=disable PGCONNECT_TIMEOUT=30
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGAPPNAME PGPASSWORD 2>/dev/null

# ------------------------------------------------------------ temp cluster --
WORK=$(mktemp -d /tmp/bpbench.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
AS_USER=()
if [ "$IS_ROOT" = 1 ]; then
    chown "$OS_USER:" "$WORK"
    # setpriv keeps the raised rlimits (no PAM session as with su/runuser)
    AS_USER=(setpriv "--reuid=$(id -u "$OS_USER")" "--regid=$(id -g "$OS_USER")" --init-groups
             env "HOME=$WORK" "USER=$OS_USER" "LOGNAME=$OS_USER")
fi
as_user() { "${AS_USER[@]}" "$@"; }
PGDATA_DIR=$WORK/data
PGLOG=$WORK/postgres.log
PGDATA2=$WORK/data-mainpool
PGLOG2=$WORK/postgres-mainpool.log
LOGDIR=$WORK/runs
as_user mkdir -p "$LOGDIR"
cd "$WORK" || die "cd $WORK"

CLIENT_SSLMODE=disable
if [ "$TLS" = 1 ]; then
    CLIENT_SSLMODE=require
    as_user openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -keyout "$WORK/server.key" -out "$WORK/server.crt" >/dev/null 2>&1 ||
        die "openssl could not make the TLS certificate"
    as_user chmod 600 "$WORK/server.key"
fi

CHILD=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${CHILD:-}" ]; then kill "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; fi
    local ip
    for ip in ${IDLER_PIDS[@]:-}; do kill "$ip" 2>/dev/null; done
    if [ -f "$WORK/pgbouncer.pid" ]; then
        local bpid; bpid=$(cat "$WORK/pgbouncer.pid" 2>/dev/null)
        [ -n "$bpid" ] && kill "$bpid" 2>/dev/null
    fi
    [ -f "$PGDATA_DIR/postmaster.pid" ] && pg_stop
    [ -f "$PGDATA2/postmaster.pid" ] && pg_stop "$PGDATA2"
    if [ "$KEEP" = 1 ]; then
        log "kept $WORK (cluster in $PGDATA_DIR; start with: pg_ctl -D $PGDATA_DIR start)"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

log "work dir $WORK, OS user $OS_USER, fd limit $FD_LIMIT"
as_user "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 ||
    as_user "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; die "initdb failed"; }

write_conf() {   # $1 = 1 to preload builtin_pool
    {
        echo "# written by bench/bench.sh"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PG_PORT"
        echo "unix_socket_directories = '$WORK'"
        echo "max_connections = $MAX_CONNECTIONS"
        echo "superuser_reserved_connections = 3"
        echo "max_worker_processes = 40"
        echo "shared_buffers = 256MB"
        echo "work_mem = 4MB"
        echo "maintenance_work_mem = 256MB"
        echo "wal_level = minimal"
        echo "max_wal_senders = 0"
        echo "synchronous_commit = off"
        echo "wal_buffers = 16MB"
        echo "max_wal_size = 8GB"
        echo "min_wal_size = 1GB"
        echo "checkpoint_timeout = 1h"
        echo "checkpoint_completion_target = 0.9"
        echo "log_min_messages = warning"
        echo "log_line_prefix = '%m [%p] %b '"
        echo "log_checkpoints = off"
        echo "restart_after_crash = on"
        if [ "$1" = 1 ]; then
            echo "shared_preload_libraries = '$POOL_PRELOAD'"
            echo "builtin_pool.port = $POOL_PORT"
            echo "builtin_pool.session_pool_size = $POOL_SIZE"
            echo "builtin_pool.max_sessions = $MAX_SESSIONS"
        fi
        if [ "$TLS" = 1 ]; then
            echo "ssl = on"
            echo "ssl_cert_file = '$WORK/server.crt'"
            echo "ssl_key_file = '$WORK/server.key'"
        fi
        local l
        for l in "${EXTRA_PGCONF[@]+"${EXTRA_PGCONF[@]}"}"; do echo "$l"; done
    } | as_user tee "$PGDATA_DIR/postgresql.auto.conf" >/dev/null
    # postgresql.auto.conf wins over postgresql.conf; initdb left it empty.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' |
        as_user tee "$PGDATA_DIR/pg_hba.conf" >/dev/null
}

pg_start() {  # [datadir log]
    as_user "$PGBIN/pg_ctl" -D "${1:-$PGDATA_DIR}" -l "${2:-$PGLOG}" -w -t 120 start >/dev/null 2>&1
}
pg_stop() {  # [datadir]
    as_user "$PGBIN/pg_ctl" -D "${1:-$PGDATA_DIR}" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        as_user "$PGBIN/pg_ctl" -D "${1:-$PGDATA_DIR}" -m immediate -w -t 60 stop >/dev/null 2>&1
}
psql_su() {  # superuser over the unix socket
    as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PG_PORT" -d postgres -At "$@"
}

POOL_STATE=ok          # ok | reason why the pool target cannot run
if ! has_target pool; then
    POOL_STATE="not selected"
elif [ ! -e "$POOL_SO" ]; then
    POOL_STATE="builtin_pool not installed ($POOL_SO missing)"
fi

if [ "$POOL_STATE" = ok ]; then
    write_conf 1
    if ! pg_start; then
        log "server failed to start with shared_preload_libraries=builtin_pool; log tail:"
        tail -n 20 "$PGLOG" >&2
        POOL_STATE="server does not start with builtin_pool preloaded: $(grep -m1 -E 'FATAL|PANIC' "$PGLOG" | sed 's/^.*\(FATAL\|PANIC\): *//' | cut -c1-200)"
        as_user "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1
        write_conf 0
        pg_start || { tail -n 30 "$PGLOG" >&2; die "server failed to start"; }
    fi
else
    [ "$POOL_STATE" = "not selected" ] || log "pool target disabled: $POOL_STATE"
    write_conf 0
    pg_start || { tail -n 30 "$PGLOG" >&2; die "server failed to start"; }
fi
log "PostgreSQL up on 127.0.0.1:$PG_PORT ($("$PGBIN/postgres" --version))"

psql_su -c "CREATE ROLE bench LOGIN" -c "CREATE DATABASE bench OWNER bench" ||
    die "cannot create role/database bench"
if [ "$POOL_STATE" = ok ]; then
    # SQL surface is optional for the benchmark; used only to show pool_status().
    as_user "$PGBIN/psql" -X -q -h "$WORK" -p "$PG_PORT" -d bench \
        -c "CREATE EXTENSION IF NOT EXISTS builtin_pool" >/dev/null 2>&1 || true
fi

log "pgbench -i -s $SCALE"
as_user "$PGBIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U bench bench \
    >"$WORK/pgbench-init.log" 2>&1 || { tail "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
as_user "$PGBIN/psql" -X -q -h "$WORK" -p "$PG_PORT" -d bench -c "VACUUM ANALYZE" ||
    die "VACUUM ANALYZE failed"
psql_su -c "CHECKPOINT" >/dev/null

# ---------------------------------------------------------------- mainpool --
# The same data, copied while the first server is stopped, served by a second
# server whose main port is pooled; the database postgres stays dedicated
# (the script's superuser work), bench is pooled.
MAINPOOL_STATE="not selected"
if has_target mainpool; then
    if [ ! -e "$POOL_SO" ]; then
        MAINPOOL_STATE="builtin_pool not installed ($POOL_SO missing)"
    else
        pg_stop
        as_user cp -a "$PGDATA_DIR" "$PGDATA2"
        {
            echo "# mainpool server"
            echo "port = $MAINPOOL_PORT"
            echo "max_connections = $MAINPOOL_MAX_CONNECTIONS"
            echo "shared_preload_libraries = '$POOL_PRELOAD'"
            echo "builtin_pool.session_pool_ports = 0"
            echo "builtin_pool.session_pool_size = $POOL_SIZE"
            echo "builtin_pool.max_sessions = $MAX_SESSIONS"
            echo "builtin_pool.dedicated_databases = 'postgres'"
            [ "$TLS" = 1 ] && echo "# TLS clients keep their own backend on a pooled main port"
        } | as_user tee -a "$PGDATA2/postgresql.auto.conf" >/dev/null
        pg_start || { tail -n 30 "$PGLOG" >&2; die "server failed to restart"; }
        if pg_start "$PGDATA2" "$PGLOG2"; then
            MAINPOOL_STATE=ok
            log "mainpool server up on 127.0.0.1:$MAINPOOL_PORT (main port pooled)"
        else
            MAINPOOL_STATE="mainpool server does not start: $(grep -m1 -E 'FATAL|PANIC|ERROR' "$PGLOG2" | cut -c1-200)"
            log "WARNING: $MAINPOOL_STATE"
        fi
    fi
fi
psql_mp() {  # superuser on the mainpool server (database postgres: dedicated)
    as_user "$PGBIN/psql" -X -q -h "$WORK" -p "$MAINPOOL_PORT" -d postgres -At "$@"
}

# --------------------------------------------------------------- pgbouncer --
BOUNCER_STATE="not selected"
BOUNCER_VER=$("$PGBOUNCER" --version 2>/dev/null | head -1 | awk '{print $2}')
start_pgbouncer() {
    as_user tee "$WORK/pgbouncer.ini" >/dev/null <<EOF
[databases]
bench = host=$WORK port=$PG_PORT dbname=bench user=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $(( maxc > 1000 ? 2 * maxc : 2000 ))
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
server_reset_query =
listen_backlog = 4096
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 600
$( [ "$TLS" = 1 ] && printf 'client_tls_sslmode = require\nclient_tls_key_file = %s\nclient_tls_cert_file = %s\n' "$WORK/server.key" "$WORK/server.crt")
EOF
    echo '"bench" ""' | as_user tee "$WORK/userlist.txt" >/dev/null
    as_user "$PGBOUNCER" -d "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.stdout" 2>&1 || return 1
    local i
    probe_until 127.0.0.1 "$BOUNCER_PORT" 15
}

probe() {  # host port : can the bench role run a query there? (124 = hung)
    timeout -k 5 10 env PGCONNECT_TIMEOUT=10 PGSSLMODE="$CLIENT_SSLMODE" \
        "$PGBIN/psql" -X -q -At -h "$1" -p "$2" -U bench -d bench -c "SELECT 1" >/dev/null 2>&1
}
probe_until() {  # host port seconds : retry quick failures, give up on a hang
    local deadline=$((SECONDS + $3)) rc
    while :; do
        probe "$1" "$2"; rc=$?
        [ $rc -eq 0 ] && return 0
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && return 124
        [ $SECONDS -ge "$deadline" ] && return $rc
        sleep 0.5
    done
}

if has_target pgbouncer; then
    if start_pgbouncer; then
        BOUNCER_STATE=ok
        log "PgBouncer up on 127.0.0.1:$BOUNCER_PORT ($("$PGBOUNCER" --version 2>/dev/null | head -1))"
    else
        BOUNCER_STATE="pgbouncer failed to start"
        log "WARNING: $BOUNCER_STATE"; tail -n 10 "$WORK/pgbouncer.log" "$WORK/pgbouncer.stdout" >&2 2>/dev/null
    fi
fi

if [ "$POOL_STATE" = ok ]; then
    probe_until 127.0.0.1 "$POOL_PORT" 20; rc=$?
    if [ $rc = 0 ]; then
        log "builtin_pool answers on 127.0.0.1:$POOL_PORT"
    else
        if [ $rc = 124 ]; then
            POOL_STATE="SELECT 1 through the pool port $POOL_PORT hangs (no answer in 10 s)"
        else
            POOL_STATE="SELECT 1 through the pool port $POOL_PORT fails: $(timeout 10 "$PGBIN/psql" -X -At -h 127.0.0.1 \
                -p "$POOL_PORT" -U bench -d bench -c 'SELECT 1' 2>&1 | head -1 | cut -c1-200)"
        fi
        log "WARNING: $POOL_STATE"
    fi
fi

# ----------------------------------------------------------------- helpers --
wait_server() {  # main port answering (after a crash the postmaster reinitialises)
    local i
    for i in $(seq 1 60); do
        as_user "$PGBIN/pg_isready" -q -h "$WORK" -p "$PG_PORT" -d postgres && return 0
        sleep 1
    done
    if [ ! -f "$PGDATA_DIR/postmaster.pid" ] || ! as_user "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
        log "postmaster gone; restarting it"
        pg_start && return 0
    fi
    return 1
}

settle() {  # let the previous run's backends go away
    local i n
    for i in $(seq 1 $((SETTLE_MAX * 2))); do
        n=$(psql_su -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null || echo 0)
        [ "${n:-0}" -le $((POOL_SIZE + 5)) ] && break
        sleep 0.5
    done
    psql_su -c "CHECKPOINT" >/dev/null 2>&1
    sleep 1
}

declare -A TPS LAT FAILED NOTE
declare -A GENERAL_NOTES=()   # reasons that apply to every point of a target
RUN_NO=0
N_RUNS=0
for _p in $PROTOCOLS; do for _m in $MODES; do for _c in $CLIENTS; do for _t in $TARGETS; do
    N_RUNS=$((N_RUNS + 1)); done; done; done; done

num_re='^[0-9]+([.][0-9]+)?$'

run_point() {  # proto mode clients target
    local proto=$1 mode=$2 c=$3 target=$4 key="$1|$2|$3|$4" port j rc
    local out="$LOGDIR/${proto}_${mode}_${c}_${target}.log"
    RUN_NO=$((RUN_NO + 1))
    TPS[$key]=FAIL; LAT[$key]=-; FAILED[$key]=-; NOTE[$key]=""

    case $target in
        direct) port=$PG_PORT ;;
        pool)   port=$POOL_PORT
                if [ "$POOL_STATE" != ok ]; then
                    GENERAL_NOTES["pool: FAIL everywhere — $POOL_STATE"]=1
                    log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: FAIL ($POOL_STATE)"; return
                fi ;;
        mainpool) port=$MAINPOOL_PORT
                if [ "$MAINPOOL_STATE" != ok ]; then
                    GENERAL_NOTES["mainpool: FAIL everywhere — $MAINPOOL_STATE"]=1
                    log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: FAIL ($MAINPOOL_STATE)"; return
                fi ;;
        pgbouncer) port=$BOUNCER_PORT
                if [ "$BOUNCER_STATE" != ok ]; then
                    GENERAL_NOTES["pgbouncer: FAIL everywhere — $BOUNCER_STATE"]=1
                    log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: FAIL ($BOUNCER_STATE)"; return
                fi
                if [ "$proto" = prepared ]; then
                    TPS[$key]=n/a; LAT[$key]=n/a
                    GENERAL_NOTES["pgbouncer: n/a with -M prepared — PgBouncer $BOUNCER_VER in transaction mode does not support protocol-level prepared statements"]=1
                    log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: n/a"; return
                fi ;;
    esac

    if ! wait_server; then NOTE[$key]="server not answering"; return; fi
    settle
    [ "$target" = mainpool ] && psql_mp -c "CHECKPOINT" >/dev/null 2>&1
    local srvlog=$PGLOG; [ "$target" = mainpool ] && srvlog=$PGLOG2
    if ! probe 127.0.0.1 "$port"; then
        NOTE[$key]="SELECT 1 on port $port failed or hung before the run"
        log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: FAIL (${NOTE[$key]})"
        return
    fi

    j=$THREADS; [ "$c" -lt "$j" ] && j=$c
    local args=(-h 127.0.0.1 -p "$port" -U bench -n -T "$DURATION" -c "$c" -j "$j" -M "$proto")
    [ "$mode" = select ] && args+=(-S)
    [ "$mode" = connect ] && args+=(-S -C)
    local limit=$((DURATION + TIMEOUT_MARGIN + c / 10))
    local logpos; logpos=$(stat -c %s "$srvlog" 2>/dev/null || echo 0)

    echo "# pgbench ${args[*]} bench   (timeout ${limit}s)" >"$out"
    # in the background + wait, so that a signal to this script acts at once
    timeout -k 10 "$limit" "${AS_USER[@]}" env PGSSLMODE="$CLIENT_SSLMODE" \
        "$PGBIN/pgbench" "${args[@]}" bench >>"$out" 2>&1 </dev/null &
    CHILD=$!
    wait "$CHILD"; rc=$?
    CHILD=

    local tps lat failed conn_err aborted
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | tail -1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | tail -1)
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | tail -1)
    conn_err=$(grep -cE 'connection to server .*failed|could not connect to' "$out")
    aborted=$(grep -cE '^pgbench: error: client [0-9]+ aborted|client [0-9]+ aborted' "$out")
    FAILED[$key]=${failed:--}
    [ "${conn_err:-0}" -gt 0 ] && NOTE[$key]+="${conn_err} connection errors; "
    [ "${aborted:-0}" -gt 0 ] && NOTE[$key]+="${aborted} clients aborted; "

    local crash
    crash=$(tail -c +"$((logpos + 1))" "$srvlog" 2>/dev/null |
        grep -E 'PANIC|terminated by signal|was terminated by|exited with exit code ([2-9]|[1-9][0-9])|terminating any other active server processes' | head -3)

    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        NOTE[$key]+="timed out after ${limit}s (tps so far: ${tps:-none}); "
    elif [ $rc -ne 0 ]; then
        NOTE[$key]+="pgbench exit code $rc$( [ -n "$tps" ] && echo " (partial tps $tps)"); $(grep -m1 -E 'error|FATAL' "$out" | cut -c1-160); "
    elif ! [[ ${tps:-x} =~ $num_re ]]; then
        # pgbench prints no tps when no transaction completed at all
        local done_tx; done_tx=$(sed -n 's/^number of transactions actually processed: //p' "$out" | head -1)
        if [ "${done_tx:-}" = 0 ]; then
            NOTE[$key]+="no transaction completed within ${DURATION}s (latency exceeds the run at this load; try a longer -T); "
        else
            NOTE[$key]+="no tps in pgbench output; "
        fi
    elif [ -n "$crash" ]; then
        NOTE[$key]+="server log: $(echo "$crash" | head -1 | cut -c1-200); "
    else
        TPS[$key]=$tps; LAT[$key]=${lat:-?}
    fi
    [ -n "$crash" ] && [ "${TPS[$key]}" = FAIL ] && [[ ${NOTE[$key]} != *"server log"* ]] &&
        NOTE[$key]+="server log: $(echo "$crash" | head -1 | cut -c1-200); "

    if [ "${TPS[$key]}" = FAIL ]; then
        log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: FAIL (${NOTE[$key]})"
    else
        log "[$RUN_NO/$N_RUNS] $proto $mode c=$c $target: tps=${TPS[$key]} lat=${LAT[$key]}ms failed=${FAILED[$key]}"
    fi
}

# formatting helpers (the stall scenario uses them too)
cell() { local v=${1:-}; [ -z "$v" ] && v="-"; printf '%s' "$v"; }
ratio() {
    if [[ ${1:-} =~ $num_re ]] && [[ ${2:-} =~ $num_re ]] && [ "$(awk -v b="$2" 'BEGIN{print (b>0)}')" = 1 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'
    else
        printf -- '-'
    fi
}
fmt_tps() { if [[ ${1:-} =~ $num_re ]]; then awk -v a="$1" 'BEGIN{printf "%.0f", a}'; else cell "${1:-}"; fi; }
fmt_lat() { if [[ ${1:-} =~ $num_re ]]; then awk -v a="$1" 'BEGIN{printf "%.2f", a}'; else cell "${1:-}"; fi; }

# ----------------------------------------------------------------- the run --
START_TS=$(date +%Y%m%d-%H%M%S)
log "grid: protocols [$PROTOCOLS] modes [$MODES] clients [$CLIENTS] targets [$TARGETS], ${DURATION}s each, $N_RUNS runs"
if [ "$WARMUP" -gt 0 ]; then
    for target in direct pool pgbouncer mainpool; do
        case $target in
            direct) port=$PG_PORT; st=ok ;; pool) port=$POOL_PORT; st=$POOL_STATE ;;
            mainpool) port=$MAINPOOL_PORT; st=$MAINPOOL_STATE ;;
            pgbouncer) port=$BOUNCER_PORT; st=$BOUNCER_STATE ;;
        esac
        has_target "$target" && [ "$st" = ok ] || continue
        log "warm-up $target (${WARMUP}s)"
        timeout -k 10 $((WARMUP + TIMEOUT_MARGIN)) "${AS_USER[@]}" env PGSSLMODE="$CLIENT_SSLMODE" \
            "$PGBIN/pgbench" -h 127.0.0.1 -p "$port" \
            -U bench -n -S -T "$WARMUP" -c 8 -j "$THREADS" bench >"$LOGDIR/warmup_$target.log" 2>&1 </dev/null &
        CHILD=$!
        wait "$CHILD" || log "warm-up $target failed (see $LOGDIR/warmup_$target.log)"
        CHILD=
    done
fi

[ "$STALL" = 2 ] && N_RUNS=0
[ "$STALL" = 2 ] || for proto in $PROTOCOLS; do
    for mode in $MODES; do
        for c in $CLIENTS; do
            for target in direct pool pgbouncer mainpool; do
                has_target "$target" && run_point "$proto" "$mode" "$c" "$target"
            done
        done
    done
done

# ------------------------------------------------------- stall scenario --
# STALL_IDLERS sessions open a transaction through the target and sit idle in
# it for the whole pgbench run (psql reading a pipe that stays open).  p99
# comes from pgbench's per-transaction log (--log: latency in column 3, us).
declare -A S_TPS S_P99 S_FAILED S_NOTE
IDLER_PIDS=()
start_idlers() {  # port n: each a psql reading a fifo that a sleep keeps open
    local i fifo
    IDLER_PIDS=()
    for i in $(seq 1 "$2"); do
        fifo=$LOGDIR/idler_$i
        rm -f "$fifo"; as_user mkfifo "$fifo"
        "${AS_USER[@]}" env PGSSLMODE="$CLIENT_SSLMODE" "$PGBIN/psql" -X -q \
            -h 127.0.0.1 -p "$1" -U bench -d bench <"$fifo" >/dev/null 2>&1 &
        IDLER_PIDS+=($!)
        { echo "BEGIN; SELECT 1;"; exec sleep $((DURATION + TIMEOUT_MARGIN + STALL_CLIENTS / 10)); } >"$fifo" &
        IDLER_PIDS+=($!)
    done
    sleep 1
}
stop_idlers() {
    local p
    for p in "${IDLER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${IDLER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    IDLER_PIDS=()
    rm -f "$LOGDIR"/idler_*
}
run_stall_point() {  # mode idlers target
    local mode=$1 idlers=$2 target=$3 key="$1|$2|$3" port rc j
    local out="$LOGDIR/stall_${mode}_${idlers}_${target}.log" prefix="$LOGDIR/stall_${mode}_${idlers}_${target}_tx"
    S_TPS[$key]=FAIL; S_P99[$key]=-; S_FAILED[$key]=-; S_NOTE[$key]=""
    case $target in
        direct) port=$PG_PORT ;;
        pool) port=$POOL_PORT; [ "$POOL_STATE" = ok ] || { S_NOTE[$key]=$POOL_STATE; return; } ;;
        pgbouncer) port=$BOUNCER_PORT; [ "$BOUNCER_STATE" = ok ] || { S_NOTE[$key]=$BOUNCER_STATE; return; } ;;
    esac
    wait_server || { S_NOTE[$key]="server not answering"; return; }
    settle
    [ "$idlers" -gt 0 ] && start_idlers "$port" "$idlers"
    j=$THREADS; [ "$STALL_CLIENTS" -lt "$j" ] && j=$STALL_CLIENTS
    local args=(-h 127.0.0.1 -p "$port" -U bench -n -T "$DURATION" -c "$STALL_CLIENTS" -j "$j" -M simple
                --log --log-prefix="$prefix")
    [ "$mode" = select ] && args+=(-S)
    rm -f "$prefix".*
    echo "# pgbench ${args[*]} bench   ($idlers idle in transaction)" >"$out"
    (timeout -k 10 $((DURATION + TIMEOUT_MARGIN + STALL_CLIENTS / 10)) "${AS_USER[@]}" \
        env PGSSLMODE="$CLIENT_SSLMODE" "$PGBIN/pgbench" "${args[@]}" bench) >>"$out" 2>&1 </dev/null &
    CHILD=$!
    wait "$CHILD"; rc=$?
    CHILD=
    stop_idlers
    local tps failed
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | tail -1)
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | tail -1)
    S_FAILED[$key]=${failed:--}
    if [ $rc -ne 0 ]; then
        S_NOTE[$key]="pgbench exit code $rc$( [ $rc -eq 124 ] && echo ' (timed out)')"
    elif [[ ${tps:-x} =~ $num_re ]]; then
        S_TPS[$key]=$tps
        S_P99[$key]=$(cat "$prefix".* 2>/dev/null | awk '{print $3}' | sort -n |
            awk '{v[NR]=$1} END{if (NR) {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", v[i]/1000} else print "-"}')
    else
        S_NOTE[$key]="no tps in pgbench output"
    fi
    rm -f "$prefix".*
    log "stall $mode idlers=$idlers $target: tps=${S_TPS[$key]} p99=${S_P99[$key]}ms failed=${S_FAILED[$key]} ${S_NOTE[$key]}"
}
STALL_ROWS=()
if [ "$STALL" != 0 ]; then
    log "stall scenario: $STALL_CLIENTS clients, 0 and $STALL_IDLERS sessions idle in transaction, ${DURATION}s each"
    for mode in $MODES; do
        for idlers in 0 "$STALL_IDLERS"; do
            for target in direct pool pgbouncer; do
                has_target "$target" && run_stall_point "$mode" "$idlers" "$target"
            done
        done
        for target in direct pool pgbouncer; do
            has_target "$target" || continue
            a="$mode|0|$target"; b="$mode|$STALL_IDLERS|$target"
            STALL_ROWS+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$( [ "$mode" = select ] && echo "select(-S)" || echo tpcb)" \
                "$target" "$(fmt_tps "${S_TPS[$a]}")" "$(cell "${S_P99[$a]}")" \
                "$(fmt_tps "${S_TPS[$b]}")" "$(cell "${S_P99[$b]}")" "$(ratio "${S_TPS[$b]}" "${S_TPS[$a]}")" \
                "${S_FAILED[$a]}/${S_FAILED[$b]}$( [ -n "${S_NOTE[$a]}${S_NOTE[$b]}" ] && echo " (${S_NOTE[$a]}${S_NOTE[$a]:+; }${S_NOTE[$b]})")")")
        done
    done
fi

POOL_STATUS=""
if [ "$POOL_STATE" = ok ]; then
    if ! POOL_STATUS=$(as_user "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$WORK" -p "$PG_PORT" -d bench \
        -c "SELECT * FROM pool_status()" 2>&1); then
        POOL_STATUS="(pool_status() not available: $(echo "$POOL_STATUS" | head -1))"
    fi
    POOL_STATUS=$(echo "$POOL_STATUS" | head -60)
fi

# ------------------------------------------------------------------ report --
tgt_val() {  # arr key target -> value or "-" when the target was not selected
    if has_target "$3"; then local -n _a=$1; cell "${_a[$2|$3]:-}"; else printf -- '-'; fi
}

HDR=(protocol mode clients "direct TPS" "direct ms" "pool TPS" "pool ms" "pgb TPS" "pgb ms" "pool/direct" "pool/pgb" "failed tx d/p/b")
has_target mainpool && HDR+=("mainpool TPS" "mainpool ms" "mainpool/pool" "mainpool/direct" "failed tx m")
ROWS=()
for proto in $PROTOCOLS; do for mode in $MODES; do for c in $CLIENTS; do
    k="$proto|$mode|$c"
    d=$(tgt_val TPS "$k" direct); p=$(tgt_val TPS "$k" pool); b=$(tgt_val TPS "$k" pgbouncer)
    row=("$proto" "$(case $mode in select) echo "select(-S)" ;; connect) echo "connect(-C -S)" ;; *) echo tpcb ;; esac)" "$c"
         "$(fmt_tps "$d")" "$(fmt_lat "$(tgt_val LAT "$k" direct)")"
         "$(fmt_tps "$p")" "$(fmt_lat "$(tgt_val LAT "$k" pool)")"
         "$(fmt_tps "$b")" "$(fmt_lat "$(tgt_val LAT "$k" pgbouncer)")"
         "$(ratio "$p" "$d")" "$(ratio "$p" "$b")"
         "$(tgt_val FAILED "$k" direct)/$(tgt_val FAILED "$k" pool)/$(tgt_val FAILED "$k" pgbouncer)")
    if has_target mainpool; then
        m=$(tgt_val TPS "$k" mainpool)
        row+=("$(fmt_tps "$m")" "$(fmt_lat "$(tgt_val LAT "$k" mainpool)")"
              "$(ratio "$m" "$p")" "$(ratio "$m" "$d")" "$(tgt_val FAILED "$k" mainpool)")
    fi
    ROWS+=("$(IFS=$'\t'; echo "${row[*]}")")
done; done; done

# console table
print_table() {
    local widths=() i f line
    for i in "${!HDR[@]}"; do widths[$i]=${#HDR[$i]}; done
    for line in "${ROWS[@]}"; do
        IFS=$'\t' read -r -a f <<<"$line"
        for i in "${!f[@]}"; do [ ${#f[$i]} -gt "${widths[$i]}" ] && widths[$i]=${#f[$i]}; done
    done
    local fmtl="" sep=""
    for i in "${!HDR[@]}"; do
        if [ "$i" -lt 3 ]; then fmtl+="%-${widths[$i]}s  "; else fmtl+="%${widths[$i]}s  "; fi
        sep+=$(printf '%*s' "${widths[$i]}" '' | tr ' ' '-')"  "
    done
    # shellcheck disable=SC2059
    printf "$fmtl\n" "${HDR[@]}" | sed 's/ *$//'
    echo "${sep% }" | sed 's/ *$//'
    for line in "${ROWS[@]}"; do
        IFS=$'\t' read -r -a f <<<"$line"
        # shellcheck disable=SC2059
        printf "$fmtl\n" "${f[@]}" | sed 's/ *$//'
    done
}

notes_list() {
    local proto mode c t k
    for k in "${!GENERAL_NOTES[@]}"; do echo "$k"; done | sort
    for proto in $PROTOCOLS; do for mode in $MODES; do for c in $CLIENTS; do for t in direct pool pgbouncer mainpool; do
        has_target "$t" || continue
        k="$proto|$mode|$c|$t"
        [ -n "${NOTE[$k]:-}" ] && echo "$proto $mode c=$c $t: ${TPS[$k]} — ${NOTE[$k]%; }"
    done; done; done; done
}

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MEM=$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)
PGVER=$("$PGBIN/postgres" --version)
BVER=$("$PGBOUNCER" --version 2>/dev/null | head -1)

echo
echo "builtin_pool benchmark — $(hostname), $(nproc) CPUs ($CPU), $MEM"
echo "$PGVER; $BVER; scale $SCALE; ${DURATION}s per run; -j $THREADS; pool size $POOL_SIZE (builtin_pool.session_pool_size = PgBouncer default_pool_size)"
echo "TPS = pgbench tps (without initial connection time); ms = pgbench latency average"
echo
[ "$STALL" = 2 ] || print_table
NOTES=$(notes_list)
if [ -n "$NOTES" ]; then echo; echo "Notes:"; echo "$NOTES" | sed 's/^/  /'; fi
STALL_HDR="mode	target	TPS	p99 ms	TPS idlers	p99 ms idlers	idlers/none	failed none/idlers"
if [ ${#STALL_ROWS[@]} -gt 0 ]; then
    echo
    echo "Stall: $STALL_CLIENTS clients, without and with $STALL_IDLERS sessions idle in transaction"
    { echo "$STALL_HDR"; printf '%s\n' "${STALL_ROWS[@]}"; } | column -t -s $'\t'
fi

mkdir -p "$RESULTS_DIR" 2>/dev/null
MD="$RESULTS_DIR/$START_TS.md"
{
    echo "# builtin_pool benchmark $START_TS"
    echo
    echo "- machine: $(hostname), $(nproc) CPUs ($CPU), $MEM, $(uname -sr)"
    echo "- $PGVER; $BVER"
    echo "- repo: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$REPO" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty)')"
    echo "- pgbench: scale $SCALE, -T $DURATION, -j $THREADS, -n (one VACUUM ANALYZE after init), targets interleaved per point"
    echo "- pool size $POOL_SIZE: builtin_pool.session_pool_size and PgBouncer default_pool_size (pool_mode=transaction)"
    echo "- builtin_pool.max_sessions $MAX_SESSIONS, max_connections $MAX_CONNECTIONS, shared_buffers 256MB, synchronous_commit off"
    [ ${#EXTRA_PGCONF[@]} -gt 0 ] && echo "- extra postgresql.conf: ${EXTRA_PGCONF[*]}"
    [ "$TLS" = 1 ] && echo "- TLS: every client sslmode=require (server ssl = on; PgBouncer client_tls_sslmode = require, plain to the server over the unix socket)"
    [ -e "$POOL_SO" ] && echo "- builtin_pool library: $POOL_SO ($(date -r "$POOL_SO" '+%Y-%m-%d %H:%M:%S'))"
    [ "$POOL_STATE" != ok ] && echo "- pool target: $POOL_STATE"
    [ "$BOUNCER_STATE" != ok ] && echo "- pgbouncer target: $BOUNCER_STATE"
    has_target mainpool && echo "- mainpool target: a copy of the cluster, main port $MAINPOOL_PORT pooled (builtin_pool.session_pool_ports = 0, session_pool_size $POOL_SIZE, max_connections $MAINPOOL_MAX_CONNECTIONS): $MAINPOOL_STATE"
    echo
    echo "TPS = pgbench tps (excluding initial connection time); ms = pgbench latency average;"
    echo "pool/direct, pool/pgb = TPS ratios; failed tx = pgbench \"number of failed transactions\" (direct/pool/pgbouncer)."
    echo
    if [ "$STALL" != 2 ]; then
        printf '|'; for h in "${HDR[@]}"; do printf ' %s |' "$h"; done; echo
        printf '|'; for i in "${!HDR[@]}"; do if [ "$i" -lt 3 ]; then printf '%s|' '---'; else printf '%s|' '---:'; fi; done; echo
        for line in "${ROWS[@]}"; do
            IFS=$'\t' read -r -a f <<<"$line"
            printf '|'; for v in "${f[@]}"; do printf ' %s |' "$v"; done; echo
        done
    fi
    if [ -n "$NOTES" ]; then
        echo; echo "## Notes"; echo
        echo "$NOTES" | sed 's/^/- /'
    fi
    if [ ${#STALL_ROWS[@]} -gt 0 ]; then
        echo; echo "## Stall: $STALL_CLIENTS clients, without and with $STALL_IDLERS sessions idle in transaction"; echo
        echo "| ${STALL_HDR//$'\t'/ | } |"
        echo "|---|---|---:|---:|---:|---:|---:|---|"
        for line in "${STALL_ROWS[@]}"; do echo "| ${line//$'\t'/ | } |"; done
    fi
    if [ -n "$POOL_STATUS" ]; then
        echo; echo "## pool_status() after the run"; echo; echo '```'; echo "$POOL_STATUS"; echo '```'
    fi
} >"$MD" 2>/dev/null && log "results written to $MD" || log "WARNING: could not write $MD"

exit 0
