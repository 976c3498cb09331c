
# Copyright (c) builtin_pool authors
#
# Scheduling: no session waits behind another session's transaction or pin.
#   - pool of 2, session A idle in a transaction: the sessions that shared
#     A's executor are served within a bounded time (moved to the other
#     executor, with their settings and prepared statements), while A keeps
#     its transaction;
#   - pool of 4, two sessions inside 20-second transactions: pgbench -S with
#     200 clients through the pool keeps making progress (new logins are
#     not placed behind the long transactions);
#   - session_pool_size = 1, session A creates a temp table: A's executor is
#     pinned outside the pool's size, the other sessions are served by
#     another; with builtin_pool.max_pinned_executors reached, a commit that
#     would pin fails with 53300 and a hint naming the GUC;
#   - reserve executors: with every executor held past
#     builtin_pool.reserve_pool_timeout a reserve executor starts (seen in
#     pool_status()), serves, and retires once idle;
#   - held executors: a session idle in its transaction past a moment
#     stops its executor counting against session_pool_size (up to
#     builtin_pool.max_held_executors): the pool starts another at once, the
#     held executor's other sessions move there, pgbench beside idlers on
#     every executor keeps going (no reserve executor to explain it), and
#     the extra executor retires once the idle transaction ended;
#   - balance: 40 pgbench -S sessions on a pool of 1, the pool raised to 2:
#     the new executor takes a share of them (an executor holding far more
#     sessions than another gives its oldest waiting ones back);
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

sub raw_session
{
	my ($node, $name) = @_;
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	ok($c->login(user => 'app', database => 'app'), "$name logs in through the pool");
	return $c;
}

# time a query; returns (value, seconds)
sub timed_value
{
	my ($c, $sql, $timeout) = @_;
	my $t0 = time();
	my $v = $c->query_value($sql, $timeout);
	return ($v, time() - $t0);
}

###########################################################################
# Pool of 2, one session idle in a transaction
###########################################################################
{
	my $node = pool_node('idle_xact', size => 2,
		conf => "builtin_pool.reserve_pool_size = 0\n"
		  . "builtin_pool.max_held_executors = 0\n");
	$node->start;
	setup_app($node);

	my @s = map { raw_session($node, "session $_") } 1 .. 6;
	my $a = shift @s;
	my $a_pid = $a->query_value('SELECT pg_backend_pid()');
	my @sharing;
	for my $i (0 .. $#s)
	{
		my $c = $s[$i];
		$c->query("SET application_name = 'moved$i'");
		$c->query("PREPARE st$i AS SELECT $i + \$1");
		push @sharing, $i
		  if $c->query_value('SELECT pg_backend_pid()') eq $a_pid;
	}
	ok(@sharing > 0, 'some sessions share the executor of A')
	  or diag('executors: ' . join(',', map { $_->query_value('SELECT pg_backend_pid()') } @s));

	is($a->query('BEGIN')->{status}, 'T', 'A opens a transaction');
	is($a->query_value('SELECT 1'), '1', 'A runs a statement and stays idle in it');

	for my $i (@sharing)
	{
		my $c = $s[$i];
		my ($v, $dt) = timed_value($c, "EXECUTE st$i(1)", 10);
		is($v, $i + 1, "session $i, which shared A's executor, is served");
		cmp_ok($dt, '<', 3, "session $i is served within 3 s, not after A's transaction");
		is($c->query_value('SHOW application_name'), "moved$i",
			"session $i keeps its setting");
		isnt($c->query_value('SELECT pg_backend_pid()'), $a_pid,
			"session $i runs on another executor");
	}
	is($a->query_value('SELECT 2'), '2', 'A still has its executor');
	is($a->query('COMMIT')->{status}, 'I', 'A commits');
	for my $i (0 .. $#s)
	{
		is($s[$i]->query_value("EXECUTE st$i(2)"), $i + 2,
			"session $i still has its statement");
	}
	$_->terminate for ($a, @s);
	check_no_crash($node, 'idle in transaction: no crash');
	$node->stop;
}

###########################################################################
# Pool of 4, two sessions inside 20-second transactions; pgbench -S
###########################################################################
{
	my $node = pool_node('long_xact', size => 4,
		conf => "log_statement = none\nmax_connections = 50\n");
	$node->start;
	setup_app($node);
	pgbench_init($node);

	my @long;
	for my $i (1 .. 2)
	{
		my $c = raw_session($node, "long $i");
		is($c->query('BEGIN')->{status}, 'T', "long $i opens a transaction");
		is($c->query_value('SELECT 1'), '1', "long $i runs a statement");
		ok($c->send_query('SELECT pg_sleep(20)'), "long $i starts a 20 s statement");
		push @long, $c;
	}
	sleep(0.5);

	my @cmd = (
		'pgbench', '-n', '-S', '-c', '200', '-j', '2', '-T', '3',
		'-h', '127.0.0.1', '-p', $node->pool_port, '-U', 'app', 'app');
	my $t0 = time();
	my ($out, $err, $timed_out) = run_bounded(\@cmd, 15);
	note "pgbench stdout:\n$out\nstderr:\n" . substr($err, 0, 3000);
	ok(!$timed_out, 'pgbench -S -c 200 ends in time beside the long transactions');
	cmp_ok(time() - $t0, '<', 15, 'well before the long transactions end');
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	cmp_ok($processed // 0, '>', 0, 'pgbench makes progress');
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($failed // 0, 0, 'no failed transaction');
	unlike($err, qr/error|FATAL|aborted/i, 'no client error');

	for my $c (@long)
	{
		my $r = $c->read_result(30);
		ok($r->{complete} && !@{ $r->{errors} }, 'a long transaction ends well');
		is($c->query('COMMIT')->{status}, 'I', 'and commits');
		$c->terminate;
	}
	check_no_crash($node, 'long transactions: no crash');
	$node->stop;
}

###########################################################################
# session_pool_size = 1, a session pins with a temp table
###########################################################################
{
	my $node = pool_node('pinned', size => 1,
		conf => "builtin_pool.reserve_pool_size = 0\n");
	$node->start;
	setup_app($node);

	my $a = raw_session($node, 'A');
	my $b = raw_session($node, 'B');
	my $c = raw_session($node, 'C');
	my $a_pid = $a->query_value('SELECT pg_backend_pid()');
	is($b->query_value('SELECT pg_backend_pid()'), $a_pid, 'B shares the only executor');
	is(PoolTest::Raw::sqlstate($a->query('CREATE TEMP TABLE t AS SELECT 1 AS x')), '',
		'A creates a temp table');
	for my $s ([ 'B', $b ], [ 'C', $c ])
	{
		my ($v, $dt) = timed_value($s->[1], 'SELECT 7', 10);
		is($v, '7', "$s->[0] is served while A is pinned");
		cmp_ok($dt, '<', 5, "$s->[0] within 5 s");
		isnt($s->[1]->query_value('SELECT pg_backend_pid()'), $a_pid,
			"$s->[0] runs on another executor");
	}
	is($a->query_value('SELECT x FROM t'), '1', 'A keeps its temp table');
	my @rows = $node->pool_status("database = 'app'");
	is(scalar(grep { $_->{pinned} > 0 } @rows), 1, 'one executor is pinned');
	is(scalar(grep { $_->{pinned} == 0 } @rows), 1,
		'and one more serves the others: the pin is outside the pool size');

	# no room for another pinned executor: the pinning commit fails
	$node->safe_psql('postgres',
		'ALTER SYSTEM SET builtin_pool.max_pinned_executors = 1; SELECT pg_reload_conf()');
	ok( wait_until(
			sub { $b->query_value('SHOW builtin_pool.max_pinned_executors') eq '1' }, 10),
		'max_pinned_executors = 1 is seen');
	my $r = $b->query('CREATE TEMP TABLE u (y int)');
	is(PoolTest::Raw::sqlstate($r), '53300', 'a second pin fails with 53300');
	like($r->{errors}[0]{H} // '', qr/builtin_pool\.max_pinned_executors/,
		'the hint names builtin_pool.max_pinned_executors');
	is($b->query('BEGIN; DECLARE k CURSOR WITH HOLD FOR SELECT 1; COMMIT')->{errors}[0]{C} // '',
		'53300', 'so does a WITH HOLD cursor');
	is(PoolTest::Raw::sqlstate($b->query('FETCH k')), '34000',
		'the refused cursor is gone');
	is($b->query_value('SELECT 8'), '8', 'B carries on, unpinned');
	is($c->query_value('SELECT 9'), '9', 'C too');
	is(scalar(grep { $_->{pinned} > 0 } $node->pool_status("database = 'app'")), 1,
		'still one pinned executor');
	is(PoolTest::Raw::sqlstate($a->query('DROP TABLE t')), '', 'A drops its temp table');
	ok( wait_until(sub { scalar($node->pool_status("database = 'app'")) == 1 }, 30),
		'the executor left beyond the pool size by the pin retires once idle');
	is($a->query_value('SELECT 10'), '10', 'A is served after it retired');
	is($b->query_value('SELECT 11'), '11', 'B too');
	$node->safe_psql('postgres',
		'ALTER SYSTEM RESET builtin_pool.max_pinned_executors; SELECT pg_reload_conf()');
	$_->terminate for ($a, $b, $c);
	check_no_crash($node, 'pinned: no crash');
	$node->stop;
}

###########################################################################
# Reserve executors start and retire
###########################################################################
{
	my $node = pool_node('reserve', size => 1,
		conf => "builtin_pool.reserve_pool_size = 1\n"
		  . "builtin_pool.max_held_executors = 0\n"
		  . "builtin_pool.reserve_pool_timeout = 300\n");
	$node->start;
	setup_app($node);

	my $a = raw_session($node, 'A');
	my $b = raw_session($node, 'B');
	is(scalar($node->pool_status("database = 'app'")), 1, 'one executor at first');
	is($a->query('BEGIN')->{status}, 'T', 'A opens a transaction');
	is($a->query_value('SELECT 1'), '1', 'A stays idle in it');

	# B waits behind A: past reserve_pool_timeout a reserve executor serves it
	my ($v, $dt) = timed_value($b, 'SELECT 5', 10);
	is($v, '5', 'B is served');
	cmp_ok($dt, '<', 5, 'B within 5 s, by a reserve executor');
	is(scalar($node->pool_status("database = 'app'")), 2,
		'pool_status() shows the reserve executor');

	is($a->query('COMMIT')->{status}, 'I', 'A commits');
	ok( wait_until(sub { scalar($node->pool_status("database = 'app'")) == 1 }, 30),
		'the reserve executor retires once idle');
	is($b->query_value('SELECT 6'), '6', 'B is still served after the reserve retired');
	is($a->query_value('SELECT 7'), '7', 'A too');
	$_->terminate for ($a, $b);
	check_no_crash($node, 'reserve: no crash');
	$node->stop;
}

###########################################################################
# Held executors: an idle transaction's executor is replaced at once
###########################################################################
{
	my $node = pool_node('held', size => 1,
		conf => "builtin_pool.reserve_pool_size = 0\n"
		  . "log_statement = none\nmax_connections = 50\n");
	$node->start;
	setup_app($node);

	my $a = raw_session($node, 'A');
	my $b = raw_session($node, 'B');
	my $a_pid = $a->query_value('SELECT pg_backend_pid()');
	is($b->query('PREPARE hs AS SELECT 40 + $1')->{status}, 'I', 'B prepares a statement');
	is($b->query_value('SELECT pg_backend_pid()'), $a_pid, 'B shares the only executor');
	is($a->query('BEGIN')->{status}, 'T', 'A opens a transaction');
	is($a->query_value('SELECT 1'), '1', 'A stays idle in it');

	# no reserve executor, so only the held executor's replacement serves B
	my ($v, $dt) = timed_value($b, 'EXECUTE hs(2)', 10);
	is($v, '42', 'B is served while A is idle in its transaction');
	cmp_ok($dt, '<', 2, 'B within 2 s');
	isnt($b->query_value('SELECT pg_backend_pid()'), $a_pid, 'B runs on another executor');
	is_deeply($b->query("SET application_name = 'moved_b'")->{param_status},
		[ [ 'application_name', 'moved_b' ] ],
		'B gets its ParameterStatus there, where only moved sessions were served');
	is(scalar($node->pool_status("database = 'app'")), 2,
		'the held executor is outside the pool size: a second one started');
	my $c = raw_session($node, 'C');
	isnt($c->query_value('SELECT pg_backend_pid()'), $a_pid,
		'a new login is not placed on the held executor');
	is($a->query_value('SELECT pg_backend_pid()'), $a_pid, 'A keeps its executor');
	is($a->query('COMMIT')->{status}, 'I', 'A commits');
	ok( wait_until(sub { scalar($node->pool_status("database = 'app'")) == 1 }, 30),
		'the pool is back to its size once the transaction ended and all idled');
	is($a->query_value('SELECT 3'), '3', 'A is served');
	is($b->query_value('EXECUTE hs(3)'), '43', 'B keeps its statement');
	$c->terminate;

	# pgbench beside two idle transactions, one on each executor of a pool of 2
	$node->safe_psql('postgres',
		'ALTER SYSTEM SET builtin_pool.session_pool_size = 2');
	$node->restart;
	pgbench_init($node);
	my @idle = map { raw_session($node, "idler $_") } 1 .. 2;
	my %idle_pids;
	for my $i (@idle)
	{
		is($i->query('BEGIN')->{status}, 'T', 'an idler opens a transaction');
		$idle_pids{ $i->query_value('SELECT pg_backend_pid()') } = 1;
	}
	ok( wait_until(
			sub {
				return 1 if keys(%idle_pids) == 2;
				my $x = raw_session($node, 'one more idler');
				$x->query('BEGIN');
				$idle_pids{ $x->query_value('SELECT pg_backend_pid()') } = 1;
				push @idle, $x;
				return keys(%idle_pids) == 2;
			},
			10),
		'idle transactions hold both executors');
	my @cmd = (
		'pgbench', '-n', '-S', '-c', '20', '-j', '2', '-T', '3',
		'-h', '127.0.0.1', '-p', $node->pool_port, '-U', 'app', 'app');
	my ($out, $err, $timed_out) = run_bounded(\@cmd, 20);
	note "pgbench stdout:\n$out\nstderr:\n" . substr($err, 0, 3000);
	ok(!$timed_out, 'pgbench beside idlers on every executor ends in time');
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	cmp_ok($processed // 0, '>', 0, 'pgbench makes progress');
	unlike($err, qr/error|FATAL|aborted/i, 'no client error');
	for my $i (@idle)
	{
		is($i->query('COMMIT')->{status}, 'I', 'an idler commits after the run');
		$i->terminate;
	}
	$_->terminate for ($a, $b);
	check_no_crash($node, 'held executors: no crash');
	$node->stop;
}

###########################################################################
# Sessions gathered on one executor spread to a lighter one of the pool
# (select-only: no executor is ever held, so nothing else moves them)
###########################################################################
{
	my $node = pool_node('balance', size => 1, max_worker_processes => 20,
		conf => "builtin_pool.reserve_pool_size = 0\n");
	$node->start;
	setup_app($node);
	pgbench_init($node);
	my $run = pgbench_bg($node, clients => 40, seconds => 12, args => ['-S']);
	my $sessions = sub {
		return map { $_->{sessions} } $node->pool_status("database = 'app'");
	};
	ok(wait_until(sub { my @n = $sessions->(); @n == 1 && $n[0] == 40 }, 20),
		'pool of 1: the 40 sessions on its one executor');
	$node->safe_psql('postgres', q{
		ALTER SYSTEM SET builtin_pool.session_pool_size = 2;
		ALTER SYSTEM SET builtin_pool.min_pool_size = 2;
		SELECT pg_reload_conf();
	});
	ok( wait_until(
			sub { my @n = $sessions->(); @n == 2 && $n[0] >= 12 && $n[1] >= 12 }, 8),
		'pool of 2: the new executor takes a share of the sessions')
	  or note explain [ $sessions->() ];
	pgbench_bg_done($run, 'balance');
	check_no_crash($node, 'balance: no crash');
	$node->stop;
}

done_testing();
