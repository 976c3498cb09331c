#!/usr/bin/env bash
#
# scripts/test.sh -- build, install and test builtin_pool (run as root).
#
# On a fresh Debian 12 machine: installs the packages, builds the extension
# with PGXS in a copy of the tree owned by the unprivileged user (the build
# must print no compiler warning), installs it as root, then, as that user:
#   1. the pg_regress suite   (make installcheck, REGRESS in the Makefile:
#                              sql/ + expected/, temp instance, test/regress.conf)
#   2. the TAP tests          (make installcheck, TAP_TESTS: t/*.pl through
#                              PostgreSQL::Test::Cluster)
#      (t/020 runs PostgreSQL's own src/test/regress through the pool:
#      bp_fetch_pg_source gets that source with apt-get source first)
#   3. every executable file directly under test/ (extra test programs),
#      run from the build dir with PG's bin dir first in PATH.
# Each step is bounded by a timeout; on failure it prints regression.diffs
# and the logs.  Exit status: 0 only if everything passed.
#
# Environment:
#   BP_BUILD_DIR       build dir (default: ~bp/builtin_pool-test)
#   BP_REGRESS_TIMEOUT seconds for pg_regress (default 900)
#   BP_TAP_TIMEOUT     seconds for all TAP tests (default 2700)
#   BP_EXTRA_TIMEOUT   seconds per extra test program (default 900)
#   BP_TOTAL_TIMEOUT   seconds for the whole script, packages included
#                      (default 4800: CI allows 5400); a step that would
#                      start past it fails as "not run"
#   PROVE_FLAGS        extra prove flags (default: --timer)
#   PROVE_TESTS        run only these TAP files (e.g. "t/001_basic.pl")
#   BP_SKIP_APT=1, BP_USER, BP_ALLOW_WARNINGS=1, BP_PG_SRC_CACHE, BP_PG_SRC:
#                      see scripts/common.sh

set -uo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TOTAL_TIMEOUT=${BP_TOTAL_TIMEOUT:-4800}
DEADLINE=$((SECONDS + TOTAL_TIMEOUT))

# budget WANTED: print the timeout for the next step, WANTED capped by what
# is left of the total (minus 60 s for cleanup and reporting); 0 if none is.
budget() {
	local left=$((DEADLINE - SECONDS - 60))
	if [ "$left" -le 0 ]; then echo 0; elif [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}

bp_require_root
bp_install_packages
bp_fetch_pg_source
bp_create_user
bp_raise_fd_limit
bp_check_user_fd_limit 4096

BUILD=${BP_BUILD_DIR:-$BP_HOME/builtin_pool-test}
REGRESS_TIMEOUT=${BP_REGRESS_TIMEOUT:-900}
TAP_TIMEOUT=${BP_TAP_TIMEOUT:-2700}
EXTRA_TIMEOUT=${BP_EXTRA_TIMEOUT:-900}
PROVE_FLAGS=${PROVE_FLAGS:---timer}

bp_copy_tree "$BUILD"
bp_install_node_clients "$BUILD"
trap 'bp_stop_leftover_clusters "$BUILD"' EXIT

bp_build "$BUILD" "$BP_HOME/builtin_pool-build.log"
chown "$BP_USER:$BP_USER" "$BP_HOME/builtin_pool-build.log"
bp_install "$BUILD"

# What the Makefile declares: REGRESS and TAP_TESTS as PGXS sees them.
make_var() {
	# shellcheck disable=SC2016  # $(...) is make syntax
	bp_run "$BUILD" make -s --no-print-directory PG_CONFIG="$PG_CONFIG_BIN" \
		--eval='bp-print-var: ; @echo '"'"'$($(BP_VAR))'"'" bp-print-var BP_VAR="$1" ||
		bp_die "cannot read $1 from the Makefile"
}
REGRESS_LIST=$(make_var REGRESS) || exit 1
TAP_ENABLED=$(make_var TAP_TESTS) || exit 1

PASSED=()
FAILED=()

# Warn about tests that exist but would not run.
for f in "$BUILD"/sql/*.sql; do
	[ -e "$f" ] || continue
	n=$(basename "$f" .sql)
	case " $REGRESS_LIST " in
		*" $n "*) ;;
		*) bp_log "WARNING: sql/$n.sql is not listed in REGRESS in the Makefile" ;;
	esac
done
if compgen -G "$BUILD/t/*.pl" >/dev/null && [ -z "$TAP_ENABLED" ]; then
	bp_log "WARNING: t/*.pl exist but the Makefile does not set TAP_TESTS"
fi

show_file() {
	# show_file FILE [LINES]: print a (possibly long) file, its tail only.
	local f=$1 n=${2:-300}
	[ -f "$f" ] || return 0
	printf '\n----- %s (last %s lines) -----\n' "${f#"$BUILD"/}" "$n"
	tail -n "$n" "$f"
}

# 1. pg_regress
if [ -n "$REGRESS_LIST" ]; then
	bp_log "pg_regress: $REGRESS_LIST"
	rc=0
	t=$(budget "$REGRESS_TIMEOUT")
	[ "$t" -gt 0 ] || rc=125
	[ "$rc" -ne 0 ] || bp_run "$BUILD" timeout --kill-after=30 "$t" \
		make installcheck TAP_TESTS= PG_CONFIG="$PG_CONFIG_BIN" || rc=$?
	if [ "$rc" -eq 0 ]; then
		PASSED+=("pg_regress")
	else
		[ "$rc" -eq 124 ] && bp_log "pg_regress timed out after ${t}s"
		[ "$rc" -eq 125 ] && bp_log "pg_regress not run: the time budget (BP_TOTAL_TIMEOUT) is spent"
		FAILED+=("pg_regress")
		show_file "$BUILD/regression.diffs" 500
		show_file "$BUILD/regression.out" 100
		show_file "$BUILD/log/postmaster.log" 300
	fi
else
	bp_log "no REGRESS in the Makefile: pg_regress suite skipped"
fi

# 2. TAP
if [ -n "$TAP_ENABLED" ] && compgen -G "$BUILD/t/*.pl" >/dev/null; then
	bp_log "TAP tests: $(cd "$BUILD" && echo t/*.pl)"
	rc=0
	TAP_OUT=$BP_HOME/builtin_pool-tap.out
	: >"$TAP_OUT"
	t=$(budget "$TAP_TIMEOUT")
	[ "$t" -gt 0 ] || rc=125
	[ "$rc" -ne 0 ] || bp_run "$BUILD" timeout --kill-after=30 "$t" \
		make installcheck REGRESS= PG_CONFIG="$PG_CONFIG_BIN" \
		PROVE_FLAGS="$PROVE_FLAGS" ${PROVE_TESTS:+PROVE_TESTS="$PROVE_TESTS"} \
		2>&1 | tee "$TAP_OUT" || rc=$?
	if [ "$rc" -eq 0 ]; then
		PASSED+=("TAP")
	else
		[ "$rc" -eq 124 ] && bp_log "TAP tests timed out after ${t}s"
		[ "$rc" -eq 125 ] && bp_log "TAP tests not run: the time budget (BP_TOTAL_TIMEOUT) is spent"
		FAILED+=("TAP")
		# prove's "Test Summary Report" names the failed files: show their
		# logs (all logs if it did not get that far, e.g. a timeout).
		failed_tap=$(sed -n 's|^t/\([^ ]*\)\.pl  *(Wstat.*|\1|p' "$TAP_OUT")
		if [ -n "$failed_tap" ]; then
			for tn in $failed_tap; do
				for f in "$BUILD/tmp_check/log/regress_log_$tn" "$BUILD/tmp_check/log/${tn}_"*.log; do
					show_file "$f" 300
				done
			done
		else
			for f in "$BUILD"/tmp_check/log/*; do show_file "$f" 200; done
		fi
	fi
else
	bp_log "no TAP tests (t/*.pl with TAP_TESTS = 1 in the Makefile): skipped"
fi
bp_stop_leftover_clusters "$BUILD"

# 3. extra test programs: executable files directly under test/
for prog in "$BUILD"/test/*; do
	if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then continue; fi
	name=test/$(basename "$prog")
	bp_log "extra test: $name"
	rc=0
	t=$(budget "$EXTRA_TIMEOUT")
	[ "$t" -gt 0 ] || rc=125
	[ "$rc" -ne 0 ] || bp_run "$BUILD" timeout --kill-after=30 "$t" "$prog" || rc=$?
	bp_stop_leftover_clusters "$BUILD"
	if [ "$rc" -eq 0 ]; then
		PASSED+=("$name")
	else
		[ "$rc" -eq 124 ] && bp_log "$name timed out after ${t}s"
		[ "$rc" -eq 125 ] && bp_log "$name not run: the time budget (BP_TOTAL_TIMEOUT) is spent"
		FAILED+=("$name (exit $rc)")
	fi
done

echo
echo "================ builtin_pool test summary ================"
for s in "${PASSED[@]}"; do echo "PASSED: $s"; done
for s in "${FAILED[@]}"; do echo "FAILED: $s"; done
if [ $((${#PASSED[@]} + ${#FAILED[@]})) -eq 0 ]; then
	echo "FAILED: no test suite found (REGRESS, TAP_TESTS, test/*)"
	echo "suites: 0 passed, 1 failed"
	exit 1
fi
echo "suites: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]
