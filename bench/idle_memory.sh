#!/usr/bin/env bash
# bench/idle_memory.sh — what an idle client of the main port costs the
# server, pooled (builtin_pool.session_pool_ports = 0) and dedicated, on one
# server: database "bench" is pooled, database "dedi" is listed in
# builtin_pool.dedicated_databases and keeps one backend per client.
#
# For each, N pgbench clients connect and stay idle (a script of one
# client-side \sleep, so no transaction is open), and while they are
# connected the script reads pg_stat_activity (backends per type) and the
# proportional set size (Pss, /proc/PID/smaps_rollup) summed over the
# postmaster and all its children, against the same sum with no client.
# Prints bytes per idle session.  Run as root (reads the server's
# /proc entries; the server runs as --os-user) or as the server's user.
#
#   bench/idle_memory.sh [-n CLIENTS] [-P POOL_SIZE] [--port P] [--os-user U]
#
# PGBIN selects the PostgreSQL build (default /usr/lib/postgresql/15/bin);
# builtin_pool must be installed there.

set -u -o pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
N=1000
POOL_SIZE=4
PORT=55450
OS_USER=bp
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N=$2; shift 2 ;;
        -P) POOL_SIZE=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --os-user) OS_USER=$2; shift 2 ;;
        *) echo "usage: $0 [-n CLIENTS] [-P POOL_SIZE] [--port P] [--os-user U]" >&2; exit 2 ;;
    esac
done

say() { printf '[idle %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u "$OS_USER" --); else RUN=(); fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null

W=$(mktemp -d /tmp/bpidle.XXXXXX)
chmod 755 "$W"
[ "$(id -u)" = 0 ] && chown "$OS_USER" "$W"
D=$W/data
stop() {
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$D" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$W"
}
trap stop EXIT

"${RUN[@]}" "$PGBIN/initdb" -D "$D" -A trust >/dev/null 2>&1 || { echo "initdb failed" >&2; exit 1; }
cat <<EOF | "${RUN[@]}" tee "$D/postgresql.auto.conf" >/dev/null
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$W'
max_connections = $((N + 50))
max_worker_processes = 40
shared_preload_libraries = 'builtin_pool'
builtin_pool.session_pool_ports = 0
builtin_pool.session_pool_size = $POOL_SIZE
builtin_pool.max_sessions = $((N + 100))
builtin_pool.dedicated_databases = 'postgres, dedi'
EOF
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$D" -l "$W/log" -w start >/dev/null || { tail "$W/log" >&2; exit 1; }
PM=$(head -1 "$D/postmaster.pid")
q() { "${RUN[@]}" "$PGBIN/psql" -X -At -h "$W" -p "$PORT" -d postgres -c "$1"; }
q "CREATE ROLE bench LOGIN" >/dev/null
q "CREATE DATABASE bench OWNER bench" >/dev/null
q "CREATE DATABASE dedi OWNER bench" >/dev/null
printf '\\sleep 3600 s\n' | "${RUN[@]}" tee "$W/idle.sql" >/dev/null

pss_total() {  # kB, postmaster and every child
    local p sum=0 v
    for p in $PM $(pgrep -P "$PM"); do
        v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
backends() {
    q "SELECT string_agg(backend_type || '=' || n, ', ' ORDER BY backend_type) FROM
        (SELECT backend_type, count(*) n FROM pg_stat_activity
         WHERE backend_type IN ('client backend', 'builtin_pool executor') GROUP BY 1) s"
}

measure() {  # db
    local db=$1 base with pid i
    # warm the pool (executors started) and the caches, then let it settle
    "${RUN[@]}" "$PGBIN/psql" -X -At -h "$W" -p "$PORT" -U bench -d "$db" -c "SELECT 1" >/dev/null
    sleep 2
    base=$(pss_total)
    "${RUN[@]}" "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U bench -c "$N" -j 2 -T 3600 \
        -f "$W/idle.sql" "$db" >"$W/pgbench-$db.log" 2>&1 &
    pid=$!
    for i in $(seq 1 240); do
        [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend'")" -ge "$N" ] && break
        [ "$(q "SELECT coalesce(sum(sessions), 0) FROM pool_status() WHERE database = '$db'" 2>/dev/null)" -ge "$N" ] && break
        sleep 0.5
    done
    sleep 3
    with=$(pss_total)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$db" "$N" "$(backends)" "$base" "$with" \
        "$(( (with - base) * 1024 / N ))"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    sleep 3
}

q "CREATE EXTENSION builtin_pool" >/dev/null
say "server on port $PORT, $N idle clients per database, session_pool_size $POOL_SIZE"
echo "| database | idle clients | backends while connected | Pss kB before | Pss kB connected | bytes per idle session |"
echo "|---|---:|---|---:|---:|---:|"
measure dedi
measure bench
