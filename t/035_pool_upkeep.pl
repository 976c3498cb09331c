# Copyright (c) builtin_pool authors
#
# Executors ready before clients come, and recycled (issue 11, item 4):
#   - builtin_pool.min_pool_size: once a pool has been used it keeps that
#     many executors started (capped by session_pool_size), beside
#     builtin_pool.idle_executor_timeout, and starts one again when one
#     exits;
#   - builtin_pool.executor_lifetime: an executor older than that retires
#     between transactions; its sessions move to a fresh executor, none is
#     cut, and each keeps its state (prepared statements, SET values,
#     currval); a session inside a transaction keeps its executor until it
#     commits;
#   - both, and pool_reconnect(), also under a load that never lets the
#     executor's run queue empty;
#   - and the server log free of crashes.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

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

sub executors
{
	my ($node) = @_;
	return scalar(grep { $_->{state} ne 'exiting' }
		  $node->pool_status("database = 'app'"));
}

###########################################################################
# min_pool_size
###########################################################################
{
	my $node = pool_node('min_pool', size => 3,
		conf => "builtin_pool.min_pool_size = 2\n"
		  . "builtin_pool.idle_executor_timeout = 1\n");
	$node->start;
	setup_app($node);

	is(executors($node), 0, 'no executor before the pool is used');
	my $a = raw_session($node, 'A');
	is($a->query_value('SELECT 1'), '1', 'A is served');
	ok(wait_until(sub { executors($node) == 2 }, 15),
		'the pool starts min_pool_size executors');
	$a->terminate;
	sleep(3);
	is(executors($node), 2,
		'idle_executor_timeout does not take the pool below min_pool_size');

	my ($pid) = map { $_->{pid} } $node->pool_status("database = 'app'");
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok( wait_until(
			sub {
				my @r = $node->pool_status("database = 'app'");
				return @r == 2 && !grep { $_->{pid} == $pid } @r;
			},
			15),
		'an executor that exits is started again');

	$node->safe_psql('postgres',
		'ALTER SYSTEM SET builtin_pool.min_pool_size = 10; SELECT pg_reload_conf()');
	ok(wait_until(sub { executors($node) == 3 }, 15),
		'min_pool_size is capped by session_pool_size');
	sleep(2);
	is(executors($node), 3, 'and no more start');
	my $b = raw_session($node, 'B');
	is($b->query_value('SELECT 2'), '2', 'B is served');
	$b->terminate;
	check_no_crash($node, 'min_pool_size: no crash');
	$node->stop;
}

###########################################################################
# executor_lifetime
###########################################################################
{
	my $node = pool_node('lifetime', size => 1,
		conf => "builtin_pool.executor_lifetime = 3\n"
		  . "builtin_pool.reserve_pool_size = 0\n");
	$node->start;
	setup_app($node);
	$node->safe_psql('app', 'CREATE SEQUENCE sq; GRANT ALL ON sq TO app');

	my @s = map { raw_session($node, "session $_") } 1 .. 3;
	my $first = $s[0]->query_value('SELECT pg_backend_pid()');
	for my $i (0 .. $#s)
	{
		my $c = $s[$i];
		is($c->query("SET work_mem = '${\ (1000 + $i)}kB'")->{status}, 'I',
			"session $i sets work_mem");
		is($c->query("PREPARE st AS SELECT $i * 100 + \$1")->{status}, 'I',
			"session $i prepares a statement");
		is($c->query_value("SELECT nextval('sq')"), $i + 1, "session $i takes a sequence value");
		is($c->query_value('SELECT pg_backend_pid()'), $first, "session $i on the one executor");
	}

	# a transaction spanning the lifetime keeps its executor until it ends
	my $t = $s[2];
	is($t->query('BEGIN')->{status}, 'T', 'session 2 opens a transaction');
	is($t->query_value('SELECT pg_backend_pid()'), $first, 'on the old executor');
	sleep(4);
	is($t->query_value('SELECT pg_backend_pid()'), $first,
		'past the lifetime, the transaction still has its executor');
	is($t->query('COMMIT')->{status}, 'I', 'and commits');

	ok( wait_until(
			sub { !grep { $_->{pid} == $first } $node->pool_status("database = 'app'") },
			20),
		'the old executor retires');
	for my $i (0 .. $#s)
	{
		my $c = $s[$i];
		isnt($c->query_value('SELECT pg_backend_pid()'), $first,
			"session $i now runs on another executor");
		is($c->query_value('SHOW work_mem'), (1000 + $i) . 'kB', "session $i keeps its setting");
		is($c->query_value('EXECUTE st(1)'), $i * 100 + 1, "session $i keeps its statement");
		is($c->query_value("SELECT currval('sq')"), $i + 1, "session $i keeps its currval");
	}
	# sessions keep moving as executors keep retiring, never cut
	sleep(4);
	for my $i (0 .. $#s)
	{
		is($s[$i]->query_value('EXECUTE st(2)'), $i * 100 + 2,
			"session $i served after another retirement");
	}
	$_->terminate for @s;
	unlike(slurp_file($node->logfile), qr/terminating connection/,
		'no session was ended');
	check_no_crash($node, 'executor_lifetime: no crash');
	$node->stop;
}

###########################################################################
# Under a load that never lets the run queue empty (20 clients sleeping
# 5 ms per statement on a pool of 1), executor_lifetime and
# pool_reconnect() still replace the executor, and no transaction fails
###########################################################################
{
	my $node = pool_node('busy_upkeep', size => 1, max_worker_processes => 20,
		conf => "builtin_pool.reserve_pool_size = 0\n"
		  . "builtin_pool.max_held_executors = 0\n");
	$node->start;
	setup_app($node);
	my $run = pgbench_bg($node, clients => 20, seconds => 14,
		sql => 'SELECT pg_sleep(0.005);');
	my $pids = sub {
		return join(',', map { $_->{pid} } $node->pool_status("database = 'app'"));
	};
	my $first;
	ok(wait_until(sub { $first = $pids->(); $first =~ /^\d+$/ }, 10),
		'busy pool of 1: one executor');
	$node->safe_psql('postgres', q{SELECT pool_reconnect('app', 'app')});
	my $second;
	ok( wait_until(
			sub { $second = $pids->(); $second =~ /^\d+$/ && $second ne $first }, 6),
		'pool_reconnect() under load: a fresh executor serves the pool')
	  or note "executors: " . $pids->();
	$node->safe_psql('postgres', q{
		ALTER SYSTEM SET builtin_pool.executor_lifetime = 2;
		SELECT pg_reload_conf();
	});
	ok( wait_until(
			sub { my $p = $pids->(); $p =~ /^\d+$/ && $p ne $second && $p ne $first }, 8),
		'executor_lifetime under load: the executor is replaced')
	  or note "executors: " . $pids->();
	pgbench_bg_done($run, 'busy upkeep');
	check_no_crash($node, 'busy upkeep: no crash');
	$node->stop;
}

done_testing();
