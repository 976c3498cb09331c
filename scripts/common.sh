# shellcheck shell=bash
#
# scripts/common.sh -- helpers shared by demo.sh and test.sh.
#
# Sourced, never executed.  Everything here runs as root: it installs the
# Debian packages the project needs, creates the unprivileged user that owns
# every cluster (initdb refuses root), raises the open-file limit, builds the
# extension in a copy of the tree owned by that user and installs it.
#
# Tunables (environment):
#   BP_USER        unprivileged OS user (default: bp)
#   BP_SKIP_APT=1  do not run apt-get (packages already present)
#   BP_NOFILE      wanted open-file limit (default: 65536; the hard limit
#                  caps it when root may not raise it)
#   BP_PG_BINDIR   PostgreSQL 15's bin directory (default: Debian's); a
#                  relocated copy of the installation lets several
#                  checkouts install and test side by side
#   BP_PG_SRC_CACHE  where PostgreSQL 15's source is kept for the test
#                  running its regression suite through the pool
#                  (default: /var/cache/builtin_pool/pgsrc)
#   BP_PG_SRC      an extracted PostgreSQL 15 source tree to use instead

BP_USER=${BP_USER:-bp}
BP_NOFILE=${BP_NOFILE:-65536}
BP_MODULE=${BP_MODULE:-builtin_pool}
PG_MAJOR=15
PG_BINDIR=${BP_PG_BINDIR:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG_BIN=$PG_BINDIR/pg_config
BP_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages: server, headers (gssapi.h comes from libkrb5-dev),
# liburing, OpenSSL's headers (TLS on the pool port) and its command line
# (test certificates), the TAP test modules' IPC::Run, PgBouncer for
# comparisons, the compiler, util-linux for setpriv, procps for pgrep/ps in
# diagnostics, prometheus-postgres-exporter for t/034_exporter.pl (the
# metrics query file in contrib/prometheus).
BP_PACKAGES=(
	"postgresql-$PG_MAJOR"
	"postgresql-server-dev-$PG_MAJOR"
	"postgresql-client-$PG_MAJOR"
	liburing-dev
	libkrb5-dev
	libssl-dev
	openssl
	libipc-run-perl
	libio-pty-perl
	pgbouncer
	build-essential
	util-linux
	procps
	coreutils
	findutils
	perl
	python3-psycopg
	python3-asyncpg
	prometheus-postgres-exporter
)

bp_log() { printf '==> %s\n' "$*" >&2; }
bp_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

bp_require_root() {
	[ "$(id -u)" -eq 0 ] || bp_die "run as root (e.g. sudo $0): it installs packages and creates the user '$BP_USER'"
}

# Install the packages, idempotently.  apt-get update runs once per call
# (bounded); a Debian install of postgresql-15 may create and try to start
# a default cluster on port 5432: harmless, we never use it.
bp_install_packages() {
	if [ "${BP_SKIP_APT:-0}" = 1 ]; then
		bp_log "BP_SKIP_APT=1: not running apt-get"
	else
		local missing=() p
		for p in "${BP_PACKAGES[@]}"; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
		done
		# Node.js for the node-postgres client test; a Node.js from
		# elsewhere (nodesource) already brings npm and conflicts with Debian's
		command -v node >/dev/null || missing+=(nodejs npm)
		if [ ${#missing[@]} -eq 0 ]; then
			bp_log "packages already installed"
		else
			bp_log "installing packages: ${missing[*]}"
			export DEBIAN_FRONTEND=noninteractive
			timeout 600 apt-get update -q || bp_die "apt-get update failed"
			timeout 1800 apt-get install -y -q --no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
				"${missing[@]}" || bp_die "apt-get install failed"
		fi
	fi
	[ -x "$PG_CONFIG_BIN" ] || bp_die "$PG_CONFIG_BIN missing after package install"
	[ -x "$PG_BINDIR/initdb" ] || bp_die "$PG_BINDIR/initdb missing after package install"
	command -v setpriv >/dev/null || bp_die "setpriv (util-linux) missing"
}

# bp_fetch_pg_source: make PostgreSQL 15's source available to the test
# that runs its regression suite (src/test/regress) through the pool, and
# export BP_PG_SRC, the extracted tree (readable by everyone).  The source
# comes from Debian's archive only: a deb-src entry mirroring
# debian.sources is added if the machine has none, then `apt-get source` of
# the installed postgresql-15 version; if the archive no longer serves that
# version (a security update whose source is gone, seen as a 404), the
# other 15.x versions apt knows are tried, newest first, and the choice is
# logged (the test compares the main port with the pool port, which a
# minor-version skew between the tests and the server does not affect).
# A tree already in the cache is used without running apt at all.
# With BP_SKIP_APT=1 and nothing cached, BP_PG_SRC stays empty and the
# test skips, saying why; otherwise a failure to fetch fails the run.
bp_fetch_pg_source() {
	local cache=${BP_PG_SRC_CACHE:-/var/cache/builtin_pool/pgsrc}
	local pkg="postgresql-$PG_MAJOR" installed link tree v tmp
	if [ -n "${BP_PG_SRC:-}" ]; then
		[ -f "$BP_PG_SRC/src/test/regress/parallel_schedule" ] ||
			bp_die "BP_PG_SRC=$BP_PG_SRC is not a PostgreSQL source tree"
		bp_log "PostgreSQL source: $BP_PG_SRC (BP_PG_SRC)"
		export BP_PG_SRC
		return 0
	fi
	installed=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
		bp_die "$pkg is not installed"
	# for-<version> names the tree used with that installed version
	link="$cache/for-$installed"
	if [ -f "$link/src/test/regress/parallel_schedule" ]; then
		BP_PG_SRC=$(readlink -f "$link")
		bp_log "PostgreSQL source: $BP_PG_SRC (cached)"
		export BP_PG_SRC
		return 0
	fi
	if [ "${BP_SKIP_APT:-0}" = 1 ]; then
		bp_log "BP_SKIP_APT=1 and no PostgreSQL $installed source in $cache: t/020 will skip (run once without BP_SKIP_APT to fetch it)"
		BP_PG_SRC=
		export BP_PG_SRC
		return 0
	fi
	install -d -m 0755 "$cache" || bp_die "cannot create $cache"
	# one fetch at a time per cache (several checkouts share a machine)
	exec 9>"$cache/.lock"
	flock -w 900 9 || bp_die "cannot lock $cache/.lock"
	if [ ! -f "$link/src/test/regress/parallel_schedule" ]; then
		if ! dpkg-query -W -f='${Status}' dpkg-dev 2>/dev/null | grep -q 'install ok installed'; then
			bp_log "installing dpkg-dev (apt-get source unpacks with dpkg-source)"
			DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends dpkg-dev ||
				bp_die "apt-get install dpkg-dev failed"
		fi
		if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			bp_log "adding a deb-src entry for Debian's archive"
			if [ -f /etc/apt/sources.list.d/debian.sources ]; then
				sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
					>/etc/apt/sources.list.d/builtin_pool-src.sources
			else
				sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list \
					>/etc/apt/sources.list.d/builtin_pool-src.list
			fi
		fi
		if [ -z "$(apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p')" ]; then
			timeout 600 apt-get update -q || bp_die "apt-get update failed"
		fi
		local -a versions=("$installed")
		while IFS= read -r v; do
			[ "$v" = "$installed" ] || versions+=("$v")
		done < <(apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u | sort -rV)
		tree=
		for v in "${versions[@]}"; do
			tmp=$(mktemp -d "$cache/fetch.XXXXXX")
			bp_log "apt-get source $pkg=$v into $cache"
			if (cd "$tmp" && timeout 900 apt-get source -q "$pkg=$v" >fetch.log 2>&1) &&
				[ -f "$(echo "$tmp"/"$pkg"-*/src/test/regress/parallel_schedule)" ]; then
				rm -rf "${cache:?}/$v"
				mv "$(echo "$tmp"/"$pkg"-*)" "$cache/$v"
				rm -rf "$tmp"
				tree="$cache/$v"
				break
			fi
			bp_log "apt-get source $pkg=$v failed: $(grep -E '^(E|Err):' "$tmp/fetch.log" | head -n 1)"
			rm -rf "$tmp"
		done
		[ -n "$tree" ] || bp_die "no source of $pkg could be fetched with apt-get source"
		[ "$v" = "$installed" ] ||
			bp_log "WARNING: using the source of $pkg $v with the installed $installed (its source is not served)"
		chmod -R a+rX "$tree"
		ln -sfn "$v" "$link"
	fi
	exec 9>&-
	BP_PG_SRC=$(readlink -f "$link")
	bp_log "PostgreSQL source: $BP_PG_SRC"
	export BP_PG_SRC
}

# Create the unprivileged user (with a home directory) if it does not exist.
bp_create_user() {
	if ! id "$BP_USER" >/dev/null 2>&1; then
		bp_log "creating user $BP_USER"
		useradd --create-home --user-group --shell /bin/bash "$BP_USER" ||
			bp_die "useradd $BP_USER failed"
	fi
	BP_HOME=$(getent passwd "$BP_USER" | cut -d: -f6)
	[ -n "$BP_HOME" ] || bp_die "no home directory for $BP_USER"
	if [ ! -d "$BP_HOME" ]; then
		install -d -o "$BP_USER" -g "$BP_USER" -m 0755 "$BP_HOME"
	fi
	export BP_HOME
}

# Raise this shell's open-file limit; children (setpriv keeps rlimits, it
# does not go through PAM) inherit it, so pgbench and the postmaster do.
# Root may lack CAP_SYS_RESOURCE (containers): then the hard limit caps us.
bp_raise_fd_limit() {
	local want=$BP_NOFILE hard
	ulimit -Hn "$want" 2>/dev/null || true
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
		want=$hard
	fi
	ulimit -Sn "$want" || bp_die "cannot set open-file limit to $want"
	bp_log "open-file limit: soft $(ulimit -Sn), hard $(ulimit -Hn)"
}

# bp_run DIR CMD [ARGS...]: run CMD in DIR as the unprivileged user, with a
# clean environment whose PATH starts with the PostgreSQL 15 binaries.  A few
# test-related variables pass through when set.
bp_run() {
	local dir=$1
	shift
	local -a envs=(
		HOME="$BP_HOME" USER="$BP_USER" LOGNAME="$BP_USER" SHELL=/bin/bash
		PATH="$PG_BINDIR:/usr/local/bin:/usr/bin:/bin"
		LANG=C.UTF-8 TMPDIR=/tmp
		PG_CONFIG="$PG_CONFIG_BIN"
	)
	local v
	for v in PROVE_FLAGS PROVE_TESTS PG_TEST_EXTRA PG_TEST_NOCLEAN PGCTLTIMEOUT \
		PG_TEST_TIMEOUT_DEFAULT EXTRA_REGRESS_OPTS CI NODE_EXTRA_CA_CERTS SSL_CERT_FILE \
		HTTPS_PROXY HTTP_PROXY https_proxy http_proxy npm_config_registry \
		BP_FUZZ_N BP_FUZZ_SEED BP_FUZZ_CONC BP_TLS_FUZZ_N BP_TLS_FUZZ_SEED BP_PG_SRC \
		PST_SEED PST_STEPS; do
		if [ -n "${!v+x}" ]; then envs+=("$v=${!v}"); fi
	done
	# shellcheck disable=SC2016  # "$1", "$@" are the inner bash's
	setpriv --reuid="$BP_USER" --regid="$BP_USER" --init-groups -- \
		env -i "${envs[@]}" /bin/bash -c 'cd "$1" || exit 1; shift; exec "$@"' bp_run "$dir" "$@"
}

# Check that the limit really reaches the user's processes.
bp_check_user_fd_limit() {
	local min=${1:-4096} got
	got=$(bp_run / /bin/bash -c 'ulimit -n')
	bp_log "open-file limit seen by $BP_USER: $got"
	if [ "$got" != unlimited ] && [ "$got" -lt "$min" ]; then
		bp_die "open-file limit for $BP_USER is $got, need at least $min (raise the hard limit: ulimit -Hn, /etc/security/limits.conf or the container's nofile)"
	fi
}

# bp_copy_tree DEST: copy the source tree (no .git, no build or test
# products) to DEST, owned by the unprivileged user.
bp_copy_tree() {
	local dest=$1
	case "$dest" in /*/*) ;; *) bp_die "refusing suspicious build dir '$dest'" ;; esac
	rm -rf "$dest"
	install -d -o "$BP_USER" -g "$BP_USER" -m 0755 "$dest"
	tar -C "$BP_SRC_DIR" \
		--exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./tmp_check --exclude=./tmp_check_iso --exclude=./results \
		--exclude=./log --exclude=./regression.diffs --exclude=./regression.out \
		-cf - . | tar -C "$dest" --no-same-owner -xf - || bp_die "copying the tree to $dest failed"
	chown -R "$BP_USER:$BP_USER" "$dest"
}

# bp_build DIR LOG: build with PGXS as the user; fail on a build error, and
# on any compiler warning unless BP_ALLOW_WARNINGS=1.
bp_build() {
	local dir=$1 log=$2 rc=0
	[ -f "$dir/Makefile" ] || bp_die "no Makefile in $dir"
	bp_log "building in $dir (log: $log)"
	bp_run "$dir" make -s clean PG_CONFIG="$PG_CONFIG_BIN" >/dev/null 2>&1 || true
	bp_run "$dir" timeout 900 make -j"$(nproc)" PG_CONFIG="$PG_CONFIG_BIN" >"$log" 2>&1 || rc=$?
	cat "$log"
	[ "$rc" -eq 0 ] || bp_die "build failed (make exit $rc)"
	if grep -q 'warning:' "$log"; then
		printf '\n---- compiler warnings ----\n' >&2
		grep -n 'warning:' "$log" >&2
		if [ "${BP_ALLOW_WARNINGS:-0}" = 1 ]; then
			bp_log "BP_ALLOW_WARNINGS=1: continuing despite warnings"
		else
			bp_die "the build printed compiler warnings (the build must be warning-free)"
		fi
	fi
	bp_log "build OK, no warnings"
}

# bp_install DIR: make install as root from the user's build dir.
bp_install() {
	local dir=$1
	bp_log "installing (make install) from $dir"
	(cd "$dir" && timeout 300 make install PG_CONFIG="$PG_CONFIG_BIN") ||
		bp_die "make install failed"
	# make install ran as root in the user's tree: hand anything it made back.
	chown -R "$BP_USER:$BP_USER" "$dir"
	[ -f "$("$PG_CONFIG_BIN" --pkglibdir)/$BP_MODULE.so" ] ||
		bp_die "$BP_MODULE.so not found in $("$PG_CONFIG_BIN" --pkglibdir) after make install"
}

# bp_port_in_use PORT: true if something accepts TCP connections on
# 127.0.0.1:PORT.
bp_port_in_use() {
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# bp_stop_leftover_clusters DIR: stop (immediate) any postmaster whose data
# directory lies under DIR, e.g. after a test run that timed out.  Only
# clusters this run created live there.
bp_stop_leftover_clusters() {
	local dir=$1 pidfile datadir
	[ -d "$dir" ] || return 0
	while IFS= read -r pidfile; do
		datadir=$(dirname "$pidfile")
		bp_log "stopping leftover cluster in $datadir"
		bp_run / "$PG_BINDIR/pg_ctl" stop -D "$datadir" -m immediate -t 30 >/dev/null 2>&1 || true
	done < <(find "$dir" -name postmaster.pid -type f 2>/dev/null)
}

# Install the client libraries of test/clients from the npm registry (the
# node-postgres test skips, saying so, if this fails).
bp_install_node_clients() {
	local dir="$1/test/clients"
	[ -f "$dir/package.json" ] || return 0
	if ! command -v npm >/dev/null; then
		bp_log "npm missing: the node-postgres client test will be skipped"
		return 0
	fi
	bp_run "$dir" timeout 600 npm ci --no-audit --no-fund >/dev/null 2>&1 ||
		bp_log "npm ci failed in $dir: the node-postgres client test will be skipped"
}
