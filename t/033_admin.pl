
# Copyright (c) builtin_pool authors
#
# The DBA's functions (admin.c), called through the main port unless said:
#   - pool_pause() waits for a running transaction, then holds new
#     transactions of the pool (an idle session's query, a pinned session's
#     next transaction, a new login) while other pools and the main port
#     are served; pool_resume() releases them all;
#   - pause/resume cycles under pgbench TPC-B load: every pause returns,
#     no client error, no hang;
#   - pool_pause() with a timeout, or cancelled (statement_timeout, a
#     CancelRequest), fails with 57014 and lifts its pause;
#   - unknown databases and roles give core's errors (3D000, 42704);
#   - permissions: a role without EXECUTE cannot pause, resume, reconnect
#     or reload (42501); a role granted EXECUTE can, through the pool too,
#     but not on the pool serving its own session (55000);
#   - pool_reconnect() moves sessions to fresh executors, keeping them and
#     their state, and after ALTER ROLE ... RESET their next RESET gives
#     what a fresh backend gives;
#   - pool_reload() applies a changed reloadable setting
#     (builtin_pool.idle_executor_timeout) in the listener and executors,
#     and builtin_pool.session_pool_size: the pool grows to a larger size,
#     its surplus executor retires at a smaller one, sessions kept;
#   - pool_pools and pool_listener_stats() count pins, moves, executors
#     started, refused logins by cause;
#   - and the server log free of crashes.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = pool_node('admin', size => 2,
	conf => "builtin_pool.reserve_pool_size = 0\n");
$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE DATABASE plain OWNER app;
	CREATE ROLE nopriv LOGIN;
	CREATE ROLE rc LOGIN;
});
my $pp = $node->pool_port;
my $su = scalar getpwuid($<);

sub pool_session
{
	my ($name, %o) = @_;
	my $c = PoolTest::Raw->new(port => $pp, timeout => 10);
	ok($c->login(user => $o{user} // 'app', database => $o{database} // 'app'),
		"$name logs in through the pool");
	return $c;
}

# a superuser session on the main port, as a raw client (its calls can be
# left running while the test goes on)
sub main_session
{
	my $c = PoolTest::Raw->new(port => $node->port, timeout => 10);
	$c->login(user => $su, database => 'postgres') or die 'main port login failed';
	return $c;
}

sub paused
{
	my ($db, $role) = @_;
	return $node->safe_psql('postgres',
		"SELECT paused FROM pool_pools WHERE database = '$db' AND role = '$role'");
}

###########################################################################
# Pause waits for a running transaction, holds new ones; resume releases
###########################################################################
my $a = pool_session('session A');
my $b = pool_session('session B');
my $p = pool_session('pinned session P');
my $d = pool_session('session D of another pool', database => 'plain');
is($p->query_value('CREATE TEMP TABLE t AS SELECT 1 AS x; SELECT count(*) FROM t'),
	'1', 'P pins its executor with a temp table');
my $r = $a->query('CREATE TABLE t1 (x int); BEGIN; INSERT INTO t1 VALUES (1)');
is($r->{status}, 'T', 'A is inside a transaction');

my $adm = main_session();
$adm->send_query(q{SELECT pool_pause('app', 'app')});
$r = $adm->read_result(1.5);
ok(!$r->{complete}, 'pool_pause() waits while A is inside its transaction');
is(paused('app', 'app'), 't', 'pool_pools shows the pool paused meanwhile');

$r = $a->query('COMMIT');
ok($r->{complete} && !@{ $r->{errors} }, 'A commits during the wait');
$r = $adm->read_result(10);
ok($r->{complete} && !@{ $r->{errors} }, 'pool_pause() returns once the transaction ended')
  or diag(explain($r->{errors}));

is($node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE state <> 'paused') FROM pool_status() WHERE database = 'app' AND role = 'app'}),
	'0', 'pool_status() shows every executor of the pool paused');
$b->send_query('SELECT 42');
$p->send_query('SELECT count(*) FROM t');
$a->send_query('SELECT 43');
my $c = PoolTest::Raw->new(port => $pp, timeout => 10);
$c->send_startup(user => 'app', database => 'app');
my $rb = $b->read_result(1.5);
my $rp = $p->read_result(0.5);
my $ra = $a->read_result(0.5);
ok(!$rb->{complete} && !$rb->{eof}, 'an idle session\'s query is held while paused');
ok(!$rp->{complete} && !$rp->{eof}, 'a pinned session\'s next transaction is held');
ok(!$ra->{complete} && !$ra->{eof}, 'the paused transaction\'s session is held next time');
is($d->query_value('SELECT 7', 5), '7', 'a session of another pool is served while paused');
is($node->safe_psql('app', 'SELECT count(*) FROM t1'), '1', 'the main port is served while paused');

my $res = main_session();
is($res->query_value(q{SELECT pool_resume('app', 'app')}), 't', 'pool_resume() lifts the pause');
$rb = $b->read_result(10);
is($rb->{rows}[0][0], '42', 'the held query runs after resume');
$rp = $p->read_result(10);
is($rp->{rows}[0][0], '1', 'the pinned session runs after resume');
$ra = $a->read_result(10);
is($ra->{rows}[0][0], '43', 'A runs after resume');
my $st = $c->read_startup_response(10);
ok($st->{ok}, 'the login made while paused completes after resume');
is($c->query_value('SELECT 44'), '44', 'and its session is served');
is(paused('app', 'app'), 'f', 'pool_pools shows the pool resumed');
is($res->query_value(q{SELECT pool_resume('app', 'app')}), 'f',
	'pool_resume() of a pool not paused returns false');

# a pause for all pools: NULL arguments, then resume all
$r = $res->query(q{SELECT pool_pause()});
ok($r->{complete} && !@{ $r->{errors} }, 'pool_pause() of all pools returns');
$d->send_query('SELECT 8');
$rb = $d->read_result(1);
ok(!$rb->{complete}, 'pool_pause() with NULLs holds every pool');
is($res->query_value(q{SELECT pool_resume()}), 't', 'pool_resume() with NULLs lifts every pause');
is($d->read_result(10)->{rows}[0][0], '8', 'the held query of the other pool runs');

###########################################################################
# Bounded pause: timeout and cancel lift the pause
###########################################################################
$a->query('BEGIN; SELECT 1');
my $t0 = time();
$r = $res->query(q{SELECT pool_pause('app', 'app', 300)}, 10);
is(PoolTest::Raw::sqlstate($r), '57014', 'pool_pause() with a timeout fails with 57014 while a transaction runs');
like($r->{errors}[0]{M} // '', qr/could not pause the pool within 300 ms/, 'its message names the timeout');
ok(time() - $t0 < 5, 'and returns in bounded time');
is(paused('app', 'app'), 'f', 'the timed-out pause is lifted');
is($b->query_value('SELECT 45', 5), '45', 'a session is served after the failed pause');

$res->query('SET statement_timeout = 300');
$r = $res->query(q{SELECT pool_pause('app', 'app')}, 10);
is(PoolTest::Raw::sqlstate($r), '57014', 'pool_pause() cancelled by statement_timeout fails with 57014');
$res->query('RESET statement_timeout');
is(paused('app', 'app'), 'f', 'the cancelled pause is lifted');
is($b->query_value('SELECT 46', 5), '46', 'a session is served after the cancelled pause');
# a cancel (CancelRequest, as psql's Ctrl-C sends) ends the wait
$res->send_query(q{SELECT pool_pause('app', 'app')});
ok(!$res->read_result(0.5)->{complete}, 'pool_pause() waits again for A');
PoolTest::Raw->cancel(port => $node->port, pid => $res->{pid}, key => $res->{key});
$r = $res->read_result(10);
is(PoolTest::Raw::sqlstate($r), '57014', 'a cancelled pool_pause() fails with 57014');
is(paused('app', 'app'), 'f', 'the cancelled pause is lifted');
is($b->query_value('SELECT 47', 5), '47', 'a session is served after the cancel');
$a->query('COMMIT');

###########################################################################
# Pause and resume in a loop under pgbench load: no client error, no hang
###########################################################################
pgbench_init($node);
{
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-c', '16', '-j', '2', '-T', '6', '-M', 'extended',
		'-h', '127.0.0.1', '-p', $pp, '-U', 'app', 'app');
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err);
	my ($cycles, $bad) = (0, 0);
	my $deadline = time() + 5;
	while (time() < $deadline)
	{
		$h->pump_nb;
		my $r1 = $res->query(q{SELECT pool_pause('app', 'app', 5000)}, 10);
		sleep(0.05);
		my $r2 = $res->query(q{SELECT pool_resume('app', 'app')}, 10);
		$bad++ if !$r1->{complete} || @{ $r1->{errors} } || ($r2->{rows}[0][0] // '') ne 't';
		$cycles++;
		sleep(0.1);
	}
	# bounded by the clock: IPC::Run's own timers are not checked by pump_nb
	my $ended = wait_until(sub { $h->pump_nb; !$h->pumpable }, 30);
	$ended ? $h->finish : $h->kill_kill;
	note "pgbench stdout:\n$out\nstderr:\n" . substr($err, 0, 3000);
	ok($ended, "pgbench (TPC-B, 16 clients) ends in time across $cycles pause/resume cycles");
	is($bad, 0, 'every pause returned and every resume lifted it');
	cmp_ok($cycles, '>=', 5, 'several cycles ran');
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	cmp_ok($processed // 0, '>', 0, 'pgbench made progress');
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($failed // 0, 0, 'no failed transaction');
	unlike($err, qr/error|FATAL|aborted/i, 'no client error');
}

###########################################################################
# Bad input
###########################################################################
for my $f ('pool_pause', 'pool_resume', 'pool_reconnect')
{
	$r = $res->query(qq{SELECT $f('no_such_db', NULL)});
	is(PoolTest::Raw::sqlstate($r), '3D000', "$f(): unknown database gives 3D000");
	like($r->{errors}[0]{M} // '', qr/database "no_such_db" does not exist/, "$f(): core's message");
	$r = $res->query(qq{SELECT $f(NULL, 'no_such_role')});
	is(PoolTest::Raw::sqlstate($r), '42704', "$f(): unknown role gives 42704");
	like($r->{errors}[0]{M} // '', qr/role "no_such_role" does not exist/, "$f(): core's message");
}
$r = $res->query(q{SELECT pool_pause('app', 'app', -1)});
is(PoolTest::Raw::sqlstate($r), '22023', 'a negative timeout gives 22023');
is(paused('app', 'app'), 'f', 'no pause was left by the bad calls');

###########################################################################
# Permissions
###########################################################################
for my $call ("pool_pause('app', 'app', 100)", "pool_resume()",
	"pool_reconnect('app', 'app')", "pool_reload()")
{
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT $call",
		extra_params => [ '-U', 'nopriv' ]);
	like($err, qr/permission denied for function/, "nopriv cannot call $call");
}
$node->safe_psql('postgres', q{
	GRANT EXECUTE ON FUNCTION pool_pause(name, name, bigint), pool_resume(name, name) TO app;
});
$node->safe_psql('app', q{
	GRANT EXECUTE ON FUNCTION pool_pause(name, name, bigint), pool_resume(name, name) TO app;
});
$r = $b->query(q{SELECT pool_pause('app', 'app', 1000)});
is(PoolTest::Raw::sqlstate($r), '55000', 'a session cannot pause the pool serving it');
$r = $b->query(q{SELECT pool_pause('plain', 'app', 5000)});
ok($r->{complete} && !@{ $r->{errors} }, 'a role granted EXECUTE pauses another pool through the pool port')
  or diag(explain($r->{errors}));
$d->send_query('SELECT 9');
ok(!$d->read_result(1)->{complete}, 'the other pool (a database without the extension) is held');
# a second login spreads to a new executor, which starts paused
my $e = PoolTest::Raw->new(port => $pp, timeout => 10);
$e->send_startup(user => 'app', database => 'plain');
ok(!$e->read_startup_response(1)->{ok}, 'a login needing a new executor waits while paused');
is($b->query_value(q{SELECT pool_resume('plain', 'app')}), 't', 'and resumes it');
is($d->read_result(10)->{rows}[0][0], '9', 'its held query runs');
ok($e->read_startup_response(10)->{ok}, 'the waiting login completes after resume');
is($e->query_value('SELECT 10'), '10', 'and is served');
$e->terminate;

###########################################################################
# pool_reconnect: fresh executors, sessions and their state kept; a
# removed ALTER ROLE setting is gone for the next RESET
###########################################################################
# S1 and S1b fill the pool of 2 while the setting exists; S2 logs in after
# it was removed and lands on one of their executors
$node->safe_psql('postgres', q{ALTER ROLE rc SET work_mem = '3MB'});
my $s1 = pool_session('rc session S1', user => 'rc');
my $s1b = pool_session('rc session S1b', user => 'rc');
my $main1 = PoolTest::Raw->new(port => $node->port, timeout => 10);
ok($main1->login(user => 'rc', database => 'app'), 'a main port session of rc, as old as S1');
$r = $s1->query(q{SET statement_timeout = '7s'; PREPARE q AS SELECT 7});
ok($r->{complete} && !@{ $r->{errors} }, 'S1 sets a setting and prepares a statement');
my $pid1 = $s1->query_value('SELECT pg_backend_pid()');
$node->safe_psql('postgres', q{ALTER ROLE rc RESET work_mem});
my $s2 = pool_session('rc session S2', user => 'rc');
my $fresh = $node->safe_psql('app',
	q{SET work_mem = '5MB'; RESET work_mem; SHOW work_mem},
	extra_params => [ '-U', 'rc' ]);
my $stale = $s2->query_value(q{SET work_mem = '5MB'; RESET work_mem; SHOW work_mem});
is($stale, '3MB', 'before pool_reconnect, RESET gives the removed setting (README Limitations)');
my @old = map { $_->{pid} } $node->pool_status(q{role = 'rc'});
ok(@old >= 1, 'the rc pool has executors');
is($res->query_value(q{SELECT pool_reconnect('app', 'rc') >= 1}), 't',
	'pool_reconnect() asks the executors to retire');
ok( wait_until(
		sub {
			my %now = map { $_->{pid} => 1 } $node->pool_status(q{role = 'rc'});
			return !grep { $now{$_} } @old;
		},
		30),
	'the old executors are gone');
is($s1->query_value('SHOW statement_timeout'), '7s', 'S1 kept its setting');
is($s1->query_value('EXECUTE q'), '7', 'S1 kept its prepared statement');
isnt($s1->query_value('SELECT pg_backend_pid()'), $pid1, 'S1 is served by a fresh executor');
is($s2->query_value(q{SET work_mem = '5MB'; RESET work_mem; SHOW work_mem}), $fresh,
	"after pool_reconnect, S2's RESET gives what a fresh backend gives ($fresh)");
my $reset_sql = q{SET work_mem = '5MB'; RESET work_mem; SHOW work_mem};
is($s1->query_value($reset_sql), $main1->query_value($reset_sql),
	'S1, older than the RESET, gives what a main port backend as old gives');
is($node->safe_psql('postgres',
		q{SELECT sum(sessions) FROM pool_pools WHERE role = 'rc'}), '3',
	'no session was ended');

###########################################################################
# pool_reload: a changed reloadable setting reaches listener and executors
###########################################################################
$_->terminate for ($s1, $s1b, $s2, $main1);
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT coalesce(sum(sessions), 0) FROM pool_pools WHERE role = 'rc'}) eq '0';
		},
		10),
	'the rc sessions ended');
sleep(1.5);
ok($node->safe_psql('postgres', q{SELECT count(*) FROM pool_status() WHERE role = 'rc'}) > 0,
	'idle executors stay while builtin_pool.idle_executor_timeout is 0');
$node->safe_psql('postgres', q{ALTER SYSTEM SET builtin_pool.idle_executor_timeout = 1});
is($res->query_value('SELECT pool_reload()'), 't', 'pool_reload() returns true');
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM pool_status() WHERE role = 'rc'}) eq '0';
		},
		20),
	'after pool_reload() the idle executors exit within the new timeout');
is($node->safe_psql('postgres',
		q{SELECT executors_started >= 2, executors = 0 FROM pool_pools WHERE role = 'rc'}),
	't|t', 'a pool without executors keeps its row and counters in pool_pools');
my $s3 = pool_session('rc session S3', user => 'rc');
is($s3->query_value('SHOW builtin_pool.idle_executor_timeout'), '1s',
	'a new executor has the reloaded setting');
$s3->terminate;
$node->safe_psql('postgres', q{ALTER SYSTEM RESET builtin_pool.idle_executor_timeout});
$res->query('SELECT pool_reload()');

# builtin_pool.session_pool_size is reloadable: the pool grows to a larger
# size, and its surplus executors retire (sessions kept) at a smaller one
$node->safe_psql('postgres', q{ALTER SYSTEM SET builtin_pool.session_pool_size = 3});
$res->query('SELECT pool_reload()');
ok( wait_until(
		sub { $node->safe_psql('postgres', 'SHOW builtin_pool.session_pool_size') eq '3' },
		10),
	'session_pool_size is 3 after pool_reload()');
my @grow = map { pool_session("rc session R$_", user => 'rc') } 1 .. 3;
is(join(',', map { $_->query_value('SELECT 1') // 'undef' } @grow), '1,1,1',
	'three rc sessions are served');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pool_status() WHERE role = 'rc' AND state <> 'exiting'}),
	'3', 'the pool grew to the reloaded size of 3 executors');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET builtin_pool.session_pool_size});
$res->query('SELECT pool_reload()');
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM pool_status() WHERE role = 'rc' AND state <> 'exiting'}) le '2';
		},
		40),
	'back at 2, the surplus executor retires');
is(join(',', map { $_->query_value('SELECT 2') // 'undef' } @grow), '2,2,2',
	'and its session goes on elsewhere');
$_->terminate for @grow;

###########################################################################
# Counters
###########################################################################
my $before = $node->safe_psql('postgres',
	q{SELECT refused_auth || ' ' || refused_other FROM pool_listener_stats()});
my ($auth0, $other0) = split / /, $before;
my $g = PoolTest::Raw->new(port => $pp, timeout => 10);
ok(!$g->login(user => 'ghost', database => 'app'), 'an unknown role is refused');
$g->close;
$g = PoolTest::Raw->new(port => $pp, timeout => 10);
ok(!$g->login(user => 'app', database => 'ghost_db'), 'an unknown database is refused');
$g->close;
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT refused_auth || ' ' || refused_other FROM pool_listener_stats()})
			  eq ($auth0 + 1) . ' ' . ($other0 + 1);
		},
		10),
	'pool_listener_stats() counts the refusals by cause');
my $m = $node->safe_psql('postgres',
	q{SELECT pins >= 1, executors_started >= 1, moves >= 0, waits >= 0, wait_time >= 0
	  FROM pool_pools WHERE database = 'app' AND role = 'app'});
is($m, 't|t|t|t|t', 'pool_pools counts pins and executors started');
is($node->safe_psql('postgres',
		q{SELECT executors_started >= 4 FROM pool_pools WHERE role = 'rc'}),
	't', 'executors_started counts the fresh executors of pool_reconnect');

$_->terminate for ($a, $b, $p, $d, $c);
$adm->close;
$res->close;
check_no_crash($node);
$node->stop;
done_testing();
