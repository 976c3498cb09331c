
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
		conf => "builtin_pool.reserve_pool_size = 0\n");
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
	$node->command_ok(
		[
			'pgbench', '-i', '-q', '-s', '1', '-h', $node->host, '-p',
			$node->port, '-U', 'app', 'app'
		],
		'pgbench -i through the main port');

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

done_testing();
