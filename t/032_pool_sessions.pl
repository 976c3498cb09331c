
# Copyright (c) builtin_pool authors
#
# Issue 13, items 1, 2, 4 and the per-session admin functions of item 3:
#   1. pool_sessions: one row per client session with a stable session_id,
#      its states (idle, active, idle in transaction, (aborted), waiting for
#      executor, parked), times, query, executor pid, pin and its reason,
#      statements, bytes; a session moved between executors keeps its id.
#   2. pg_stat_activity: the executor's row shows the session it serves,
#      compared with a dedicated backend doing the same on the main port.
#   3. pool_cancel_session() / pool_terminate_session(): core's messages and
#      SQLSTATEs to the client, in every state; unknown ids; permissions.
#   4. log_connections / log_disconnections / log_line_prefix: the lines of
#      a pooled session are a backend's, compared with the main port.
# Every check also runs in the database "plain", without the extension.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(usleep);

my $node = pool_node(
	'sessions',
	size => 2,
	conf => "builtin_pool.max_pinned_executors = 0\n"
	  . "builtin_pool.reserve_pool_size = 0\n"
	  . "log_connections = on\nlog_disconnections = on\n"
	  . "log_line_prefix = '%m [%p] <%c> a=%a u=%u d=%d r=%r h=%h: '\n");
$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE other LOGIN;
	CREATE DATABASE plain OWNER app;
	GRANT CONNECT ON DATABASE app TO other;
});
my $pp = $node->pool_port;
pool_serves_ok($node);

# pool_sessions read through the main port as superuser
sub ps
{
	my ($cols, $where) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM pool_sessions WHERE $where");
}

sub session
{
	my ($db, %o) = @_;
	my $c = PoolTest::Raw->new(port => $pp, timeout => 20);
	$c->login(
		user => $o{user} // 'app',
		database => $db,
		application_name => $o{app} // 'pooltest')
	  or die 'login failed';
	$c->{id} = ps('session_id', 'client_port = ' . $c->sock->sockport);
	return $c;
}

sub state_is
{
	my ($c, $want, $name) = @_;
	my $got;
	wait_until(sub { $got = ps('state', "session_id = $c->{id}"); $got eq $want }, 10);
	is($got, $want, $name);
}

sub ends_with_fatal
{
	my ($c, $code, $msg, $name) = @_;
	my $r = $c->read_result(10);
	my $e = $r->{errors}[0] // {};
	is(($e->{S} // '') . ' ' . ($e->{C} // '') . ' ' . ($e->{M} // ''),
		"FATAL $code $msg", "$name: FATAL $code");
	is(scalar @{ $r->{errors} }, 1, "$name: that error alone");
	ok($c->wait_eof(5), "$name: connection closed");
}

for my $db ('app', 'plain')
{
	note "database $db";

	###################################################################
	# 1. rows and states
	my $A = session($db, app => 'appA');
	my $B = session($db, app => 'appB');
	like($A->{id}, qr/^\d+$/, "$db: a session_id for A");
	isnt($A->{id}, $B->{id}, "$db: ids differ");
	is( ps("database || ' ' || role || ' ' || application_name || ' ' || host(client_addr) || ' ' || port",
			"session_id = $A->{id}"),
		"$db app appA 127.0.0.1 $pp",
		"$db: identity columns");
	state_is($A, 'idle', "$db: idle");
	is(ps('executor_pid IS NOT NULL AND session_start IS NOT NULL AND xact_start IS NULL',
			"session_id = $A->{id}"),
		't', "$db: idle row: executor pid, no xact_start");

	$A->query('BEGIN');
	state_is($A, 'idle in transaction', "$db: idle in transaction");
	is(ps('xact_start IS NOT NULL', "session_id = $A->{id}"), 't',
		"$db: xact_start set");
	$A->query('SELECT 1/0');
	state_is($A, 'idle in transaction (aborted)', "$db: aborted");
	$A->query('ROLLBACK');
	state_is($A, 'idle', "$db: idle again");
	is(ps('query', "session_id = $A->{id}"), 'ROLLBACK', "$db: last query");
	is(ps('bytes_in > 0 AND bytes_out > 0', "session_id = $A->{id}"), 't',
		"$db: bytes counted");
	$A->query('PREPARE p1 AS SELECT 1');
	$A->query('PREPARE p2 AS SELECT 2');
	is(ps('statements', "session_id = $A->{id}"), '2', "$db: statements held");
	$A->query('DEALLOCATE ALL');
	is(ps('statements', "session_id = $A->{id}"), '0', "$db: statements released");
	$A->query('SELECT pg_advisory_lock(1)');
	is(ps('pinned::text || \' \' || pin_reason', "session_id = $A->{id}"),
		'true advisory lock', "$db: pinned by an advisory lock");
	$A->query('SELECT pg_advisory_unlock(1)');
	is(ps('pinned::text || coalesce(pin_reason, \'-\')', "session_id = $A->{id}"),
		'false-', "$db: unpinned");
	$A->query('LISTEN pool_sessions_channel');
	is(ps('pin_reason', "session_id = $A->{id}"), 'LISTEN', "$db: pinned by LISTEN");
	$A->query('UNLISTEN *');
	$A->query('BEGIN');
	$A->query('DECLARE held CURSOR WITH HOLD FOR SELECT 1');
	$A->query('COMMIT');
	is(ps('pin_reason', "session_id = $A->{id}"), 'WITH HOLD cursor',
		"$db: pinned by a WITH HOLD cursor");
	$A->query('CLOSE held');
	is(ps('pinned', "session_id = $A->{id}"), 'f', "$db: unpinned again");

	# active, and pg_stat_activity of its executor beside a main-port backend
	$A->send_query('SELECT pg_sleep(30) /* A */');
	state_is($A, 'active', "$db: active");
	is(ps('query', "session_id = $A->{id}"), 'SELECT pg_sleep(30) /* A */',
		"$db: the running query");
	my $epid = ps('executor_pid', "session_id = $A->{id}");
	my $M = PoolTest::Raw->new(port => $node->port, timeout => 20);
	$M->login(user => 'app', database => $db, application_name => 'mainA')
	  or die 'main port login failed';
	my $mpid = $M->{startup}{pid};
	$M->send_query('SELECT pg_sleep(30) /* A */');
	my $sa_cols = "state, query, datname, usename, host(client_addr), wait_event";
	wait_until(sub { $node->safe_psql('postgres',
				"SELECT state FROM pg_stat_activity WHERE pid = $mpid") eq 'active' }, 10);
	my $sa_main = $node->safe_psql('postgres',
		"SELECT $sa_cols FROM pg_stat_activity WHERE pid = $mpid");
	my $sa_pool = $node->safe_psql('postgres',
		"SELECT $sa_cols FROM pg_stat_activity WHERE pid = $epid");
	is($sa_pool, $sa_main, "$db: pg_stat_activity of the executor as of a backend: $sa_pool");
	is($node->safe_psql('postgres',
			"SELECT application_name || ' ' || client_port || ' ' || backend_type || ' ' || (query_start IS NOT NULL) || ' ' || (xact_start IS NOT NULL) FROM pg_stat_activity WHERE pid = $epid"),
		"appA " . $A->sock->sockport . " builtin_pool executor true true",
		"$db: executor row shows A's application_name and client port");
	is($node->safe_psql('postgres',
			"SELECT a.backend_start BETWEEN s.session_start AND s.session_start + interval '10 s' FROM pg_stat_activity a, pool_sessions s WHERE a.pid = $epid AND s.session_id = $A->{id}"),
		't', "$db: executor row's backend_start is A's start");
	is($node->safe_psql('postgres',
			"SELECT string_agg(application_name || '=' || n, ',' ORDER BY application_name) FROM (SELECT application_name, count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30) /* A */' GROUP BY 1) s"),
		'appA=1,mainA=1', "$db: a monitoring query grouping by application_name");

	# cancel: the running statement only, 57014 as on a backend
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($mpid)");
	my $mr = $M->read_result(10);
	ok($node->safe_psql('postgres', "SELECT pool_cancel_session($A->{id})") eq 't',
		"$db: pool_cancel_session returns true");
	my $r = $A->read_result(10);
	is(PoolTest::Raw::sqlstate($r) . ' ' . ($r->{errors}[0]{M} // ''),
		'57014 canceling statement due to user request', "$db: A cancelled");
	ok($r->{complete}, "$db: A ready again");
	is(PoolTest::Raw::sqlstate($r) . ' ' . ($r->{errors}[0]{M} // ''),
		PoolTest::Raw::sqlstate($mr) . ' ' . ($mr->{errors}[0]{M} // ''),
		"$db: the same error as pg_cancel_backend() on the main port");
	$M->terminate;
	state_is($A, 'idle', "$db: idle after cancel");
	is($node->safe_psql('postgres', "SELECT pool_cancel_session($A->{id})"), 't',
		"$db: cancelling an idle session does nothing");
	is($A->query_value('SELECT 7'), '7', "$db: A still works");

	# waiting: both executors held in transactions, C's query waits
	my $C = session($db, app => 'appC');
	my $hold_both = sub {
		my ($sql, $what) = @_;
		$_->query('BEGIN') for $A, $B;
		$_->query('SELECT 1') for $A, $B;
		$C->send_query($sql);
		my $cst;
		wait_until(sub { $cst = ps('state', "session_id = $C->{id}");
				$cst eq 'waiting for executor' || $cst eq 'parked' }, 10);
		like($cst, qr/^(waiting for executor|parked)$/, "$db: C waits$what ($cst)");
	};
	my $cancelled = sub {
		my ($how) = @_;
		$A->query('COMMIT');
		my $res = $C->read_result(10);
		is(PoolTest::Raw::sqlstate($res) . ' ' . ($res->{errors}[0]{M} // '') . ' '
			  . $res->{complete},
			'57014 canceling statement due to user request 1',
			"$db: C's waiting request cancelled $how");
		$B->query('COMMIT');
	};
	$hold_both->('SELECT 42', '');
	is(ps('wait_start IS NOT NULL AND wait_duration >= interval \'0\'', "session_id = $C->{id}"),
		't', "$db: wait start and duration");
	# a cancel of the waiting request: it fails once it starts, as the
	# same cancel would fail it once running
	is($node->safe_psql('postgres', "SELECT pool_cancel_session($C->{id})"), 't',
		"$db: cancel a waiting session");
	$cancelled->('once an executor is free');
	is($C->query_value('SELECT 42'), '42', "$db: C's next request runs");

	# the client's own CancelRequest (its pid and key) does the same to a
	# waiting request: its backend would be running it
	$hold_both->('SELECT 43', ' again');
	PoolTest::Raw->cancel(port => $node->pool_port, pid => $C->{startup}{pid},
		key => $C->{startup}{key});
	$cancelled->('by its CancelRequest');
	is($C->query_value('SELECT 44'), '44', "$db: and its next request runs");

	# moves: C's executor pins to another session; C moves, keeps its id
	my $cpid = ps('executor_pid', "session_id = $C->{id}");
	my ($X, $Y) = ps('executor_pid', "session_id = $A->{id}") eq $cpid ? ($A, $B) : ($B, $A);
	SKIP:
	{
		skip "$db: C shares no executor with A or B", 8
		  unless ps('executor_pid', "session_id = $X->{id}") eq $cpid;
		$X->query('CREATE TEMP TABLE pin_me (a int)');
		is(ps('pinned::text || \' \' || pin_reason', "session_id = $X->{id}"),
			'true temp table', "$db: pinned and why");
		my $newpid;
		wait_until(sub { $newpid = ps('executor_pid', "session_id = $C->{id}"); $newpid ne '' && $newpid ne $cpid }, 10);
		isnt($newpid, $cpid, "$db: C moved to another executor, same session_id");
		is($C->query_value('SELECT 43'), '43', "$db: C served after the move");

		# every executor pinned: C waits in the listener, parked
		$Y->query('CREATE TEMP TABLE pin_me (a int)');
		state_is($C, 'parked', "$db: parked while every executor is pinned");
		is($node->safe_psql('postgres', "SELECT pool_terminate_session($C->{id})"), 't',
			"$db: terminate a parked session");
		ends_with_fatal($C, '57P01', 'terminating connection due to administrator command',
			"$db: parked C");
		$X->query('DROP TABLE pin_me');
		$Y->query('DROP TABLE pin_me');
	}
	$C->close;
	is(ps('count(*)', "session_id = $C->{id}"), '0', "$db: C's row is gone");

	###################################################################
	# 3. terminate in each state
	$A->send_query('SELECT pg_sleep(30)');
	state_is($A, 'active', "$db: A active");
	$node->safe_psql('postgres', "SELECT pool_terminate_session($A->{id})");
	ends_with_fatal($A, '57P01', 'terminating connection due to administrator command',
		"$db: active A");

	$B->query('BEGIN');
	state_is($B, 'idle in transaction', "$db: B idle in transaction");
	$node->safe_psql('postgres', "SELECT pool_terminate_session($B->{id})");
	ends_with_fatal($B, '57P01', 'terminating connection due to administrator command',
		"$db: idle-in-transaction B");

	my $D = session($db);
	state_is($D, 'idle', "$db: D idle");
	$node->safe_psql('postgres', "SELECT pool_terminate_session($D->{id})");
	ends_with_fatal($D, '57P01', 'terminating connection due to administrator command',
		"$db: idle D");
	wait_until(sub { ps('count(*)', "session_id IN ($A->{id}, $B->{id}, $D->{id})") eq '0' }, 10);
	is(ps('count(*)', "session_id IN ($A->{id}, $B->{id}, $D->{id})"), '0',
		"$db: terminated sessions leave pool_sessions");
	my $E = session($db);
	is($E->query_value('SELECT 1'), '1', "$db: the pool serves on");
	ok($E->{id} > $D->{id}, "$db: ids are not reused");
	$E->terminate;
}

###########################################################################
# unknown ids
my ($ret, $out, $err) = $node->psql('postgres',
	'SELECT pool_cancel_session(999999999), pool_terminate_session(-1)');
is($out, 'f|f', 'unknown ids: false');
like($err, qr/WARNING:  session 999999999 is not a pool session/, 'unknown id: WARNING');

###########################################################################
# permissions: "other" sees its own sessions' queries only, and may not
# cancel or terminate others'
my $O = session('app', user => 'other', app => 'appO');
my $P = session('app', app => 'appP');
my $S = session('postgres', user => $node->safe_psql('postgres', 'SELECT current_user'));
$P->query('SELECT 11 /* secret */');
$O->query('SELECT 12 /* mine */');
my $as_other = sub {
	my ($sql) = @_;
	my ($r, $o, $e) = $node->psql('app', $sql, extra_params => [ '-U', 'other' ]);
	return ($o, $e);
};
my ($o) = $as_other->("SELECT query, state IS NULL, client_addr IS NULL, application_name FROM pool_sessions WHERE session_id = $P->{id}");
is($o, '<insufficient privilege>|t|t|appP', 'another role\'s session: identity only');
($o) = $as_other->("SELECT query, state FROM pool_sessions WHERE session_id = $O->{id}");
is($o, 'SELECT 12 /* mine */|idle', 'its own session in full');
my $e;
($o, $e) = $as_other->("SELECT pool_cancel_session($P->{id})");
like($e, qr/must be a member of the role whose query is being canceled or member of pg_signal_backend/,
	'no cancel of another role\'s session');
($o, $e) = $as_other->("SELECT pool_terminate_session($P->{id})");
like($e, qr/must be a member of the role whose process is being terminated or member of pg_signal_backend/,
	'no terminate of another role\'s session');
$node->safe_psql('postgres', 'GRANT pg_signal_backend TO other');
($o, $e) = $as_other->("SELECT pool_terminate_session($S->{id})");
like($e, qr/must be a superuser to terminate superuser process/,
	'no terminate of a superuser\'s session, even with pg_signal_backend');
is($P->query_value('SELECT 2'), '2', 'P lives on');
($o) = $as_other->("SELECT pool_terminate_session($P->{id})");
is($o, 't', 'pg_signal_backend may terminate another role\'s session');
ends_with_fatal($P, '57P01', 'terminating connection due to administrator command', 'P');
($o) = $as_other->("SELECT pool_terminate_session($O->{id})");
ends_with_fatal($O, '57P01', 'terminating connection due to administrator command',
	'its own session');
$S->terminate;

###########################################################################
# an executor that ends takes its sessions' rows with it
my $K = session('app');
my $kpid = ps('executor_pid', "session_id = $K->{id}");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($kpid)");
ok($K->wait_eof(10), 'executor terminated: its client is closed');
ok(wait_until(sub { ps('count(*)', "session_id = $K->{id}") eq '0' }, 10),
	'executor terminated: its sessions leave pool_sessions');
my $L = session('app');
is($L->query_value('SELECT 5'), '5', 'a new session is served and listed');

# the listener restarts: no row outlives the sessions that went with it
my $lpid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($lpid)");
ok(wait_until(sub {
			my $p = $node->safe_psql('postgres',
				q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
			$p =~ /^\d+$/ && $p ne $lpid }, 20),
	'listener restarted');
pool_serves_ok($node, 'pool serves after the listener restarted');
ok(wait_until(sub { ps('count(*)', "session_id <= $L->{id}") eq '0' }, 20),
	'no row of a session from before the listener restart');
$L->close;

###########################################################################
# 4. connection log lines: a pooled session's as a backend's
my $log_from = -s $node->logfile;
$node->psql('app', 'SELECT 1', extra_params => [ '-h', '127.0.0.1' ],
	connstr => "host=127.0.0.1 port=" . $node->port . " dbname=app user=app application_name=logmain");
$node->pool_psql('app', 'SELECT 1', extra => 'application_name=logpool');
my (%lines, %who_c);
wait_until(sub {
		my @parsed;
		for my $l (split /\n/, substr(slurp_file($node->logfile), $log_from))
		{
			next unless $l =~ /\[(\d+)\] <([^>]*)> a=(\S*) u=(\S*) d=(\S*) r=(\S*) h=(\S*): LOG:  (connection received|connection authorized|disconnection)(.*)$/;
			push @parsed, { pid => $1, c => $2, a => $3, u => $4, d => $5,
				r => $6, h => $7, what => $8, rest => $9 };
		}
		# each session by the %c of its "connection authorized" line
		for my $f (@parsed)
		{
			$who_c{ $1 eq 'logpool' ? 'pool' : 'main' } = $f->{c}
			  if $f->{what} eq 'connection authorized'
			  && $f->{rest} =~ /application_name=(logpool|logmain)/;
		}
		%lines = ();
		for my $f (@parsed)
		{
			for my $who ('main', 'pool')
			{
				$lines{"$who $f->{what}"} = $f
				  if defined $who_c{$who} && $f->{c} eq $who_c{$who};
			}
		}
		return $lines{'main disconnection'} && $lines{'pool disconnection'};
	}, 10);
isnt($who_c{pool}, $who_c{main}, 'log: %c tells the sessions apart');
for my $what ('connection received', 'connection authorized', 'disconnection')
{
	my ($m, $p) = ($lines{"main $what"}, $lines{"pool $what"});
	ok($m && $p, "log: $what of both");
	next unless $m && $p;
	for my $f (qw(a u d h))
	{
		(my $pv = $p->{$f}) =~ s/logpool/logmain/;
		is($pv, $m->{$f}, "log: $what: %$f as on the main port");
	}
	like($p->{r}, qr/^127\.0\.0\.1\(\d+\)$/, "log: $what: %r host(port)");
	(my $prest = $p->{rest}) =~ s/logpool/logmain/;
	(my $mrest = $m->{rest});
	s/session time: \S+|port=\d+/X/g for ($prest, $mrest);
	is($prest, $mrest, "log: $what: the message as a backend's");
}

# the idle-in-transaction terminate ends the client's input: not its EOF
unlike(slurp_file($node->logfile),
	qr/unexpected EOF on client connection with an open transaction/,
	'a terminated session is not logged as a client that went away');

check_no_crash($node);
$node->stop;
done_testing();
