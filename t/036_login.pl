
# Copyright (c) builtin_pool authors
#
# Logins completed by the listener (greeting.c): a login never waits for
# another session's transaction.
#   - what a client is told at login through the pool (message types,
#     every ParameterStatus in order, its values) is what a dedicated
#     backend tells it on the main port, whether an executor or the
#     listener greeted it, with and without startup options, in a database
#     with and without the extension;
#   - ALTER ROLE/DATABASE ... SET and a reload
#     change what the next pool login is told, as on the main port;
#   - a session the listener greeted is cancelled by its BackendKeyData,
#     and pg_backend_pid() is the pid it was told;
#   - a bad setting in the startup packet gets the main port's error, every
#     time (never a cached greeting);
#   - a session that starts with the options of an earlier one sees what a
#     backend starts with, whatever the earlier one SET before it left;
#   - pool of 1 held by a session idle in a transaction: a new login
#     completes at once, its first query is served once the transaction
#     ends;
#   - pgbench -C TPC-B, 1000 clients on 2 threads, pool of 4 with no reserve:
#     every transaction done, none failed, in bounded time;
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

my $node = pool_node('login', size => 4,
	conf => "builtin_pool.reserve_pool_size = 0\nlog_statement = none\n");
$node->start;
setup_app($node);
$node->safe_psql('postgres', 'CREATE DATABASE plain OWNER app');

# Logs in on port (main or pool) with the startup pairs; returns the
# startup response: types, param_status, errors.
sub login_response
{
	my ($port, @kv) = @_;
	my $c = PoolTest::Raw->new(port => $port, timeout => 10);
	$c->login(@kv);
	my $r = $c->{startup};
	$c->terminate if $r->{ok};
	$c->close;
	return $r;
}

sub shown
{
	my ($r) = @_;
	return join("\n", $r->{types}, map { "$_->[0]=$_->[1]" } @{ $r->{param_status} });
}

sub greeted
{
	return $node->safe_psql('postgres', 'SELECT greeted FROM pool_listener_stats()');
}

# The pool login is told what the main port login is told
sub same_login
{
	my ($what, @kv) = @_;
	my $main = login_response($node->port, @kv);
	my $pool = login_response($node->pool_port, @kv);
	ok($main->{ok}, "$what: main port login");
	is(shown($pool), shown($main), "$what: same greeting through the pool");
	return $pool;
}

###########################################################################
# The greeting, from an executor and then from the listener
###########################################################################
my @cases = (
	[ 'plain', user => 'app', database => 'app' ],
	[ 'application_name', user => 'app', database => 'app',
		application_name => 'login test' ],
	[ 'options', user => 'app', database => 'app',
		options => '-c DateStyle=German -c TimeZone=Asia/Tokyo',
		client_encoding => 'LATIN1' ],
	[ 'database without the extension', user => 'app', database => 'plain' ],
);
for my $case (@cases)
{
	my ($what, @kv) = @$case;
	same_login("$what (first)", @kv);
	my $g0 = greeted();
	same_login("$what (again)", @kv);
	cmp_ok(greeted(), '>', $g0, "$what: the listener greeted the second login");
	same_login("$what (third)", @kv);
}

###########################################################################
# A session the listener greeted: its BackendKeyData cancels, its
# pg_backend_pid() is the pid it was told
###########################################################################
{
	my $g0 = greeted();
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	ok($c->login(user => 'app', database => 'app'), 'a greeted login');
	cmp_ok(greeted(), '>', $g0, 'the listener greeted it');
	my ($pid, $key) = ($c->{startup}{pid}, $c->{startup}{key});
	is($c->query_value('SELECT pg_backend_pid()'), $pid,
		'pg_backend_pid() is the pid in BackendKeyData');
	ok($c->send_query('SELECT pg_sleep(30)'), 'a long statement');
	sleep(0.5);
	my $t0 = time();
	PoolTest::Raw->cancel(port => $node->pool_port, pid => $pid, key => $key);
	my $r = $c->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014', 'its cancel key cancels it');
	cmp_ok(time() - $t0, '<', 5, 'at once');
	$c->terminate;
}

###########################################################################
# Changes the greeting reports
###########################################################################
my @app = (user => 'app', database => 'app');
$node->safe_psql('postgres', q{ALTER ROLE app SET DateStyle = 'SQL, DMY'});
my $r = same_login('after ALTER ROLE ... SET', @app);
like(shown($r), qr/DateStyle=SQL, DMY/, 'the role setting is reported');

$node->safe_psql('postgres', q{ALTER DATABASE app SET TimeZone = 'America/Lima'});
$r = same_login('after ALTER DATABASE ... SET', @app);
like(shown($r), qr/TimeZone=America\/Lima/, 'the database setting is reported');

$node->safe_psql('postgres', q{ALTER ROLE app IN DATABASE app SET IntervalStyle = 'iso_8601'});
$r = same_login('after ALTER ROLE ... IN DATABASE ... SET', @app);
like(shown($r), qr/IntervalStyle=iso_8601/, 'the role-in-database setting is reported');

# a reload: the main port sees it once the postmaster has read the file
same_login('warm before reload', @app);
$node->safe_psql('postgres', q{ALTER SYSTEM SET DateStyle = 'Postgres, MDY'});
$node->safe_psql('postgres', q{ALTER ROLE app RESET DateStyle});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok( wait_until(
		sub {
			shown(login_response($node->port, @app)) =~ /DateStyle=Postgres, MDY/;
		},
		10),
	'the main port sees the reload');
ok( wait_until(
		sub {
			shown(login_response($node->pool_port, @app)) eq
			  shown(login_response($node->port, @app));
		},
		10),
	'after a reload the pool login is told the same');
same_login('after a reload, again', @app);
$node->safe_psql('postgres', q{ALTER SYSTEM RESET DateStyle});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

###########################################################################
# A bad setting: the main port's error, every time
###########################################################################
for my $i (1 .. 3)
{
	my @bad = (@app, options => '-c DateStyle=bogus');
	my $main = login_response($node->port, @bad);
	my $pool = login_response($node->pool_port, @bad);
	ok(!$pool->{ok}, "bad setting $i: the pool login fails");
	is($pool->{errors}[0]{C}, $main->{errors}[0]{C},
		"bad setting $i: same SQLSTATE as the main port");
	is($pool->{errors}[0]{M}, $main->{errors}[0]{M},
		"bad setting $i: same message as the main port");
}

###########################################################################
# Sessions starting with the options of an earlier one take the settings
# those came to (session.c's memo): each must see what a fresh backend
# sees, whatever the previous session of the executor SET before leaving
###########################################################################
{
	my @plain = (user => 'app', database => 'plain', application_name => 'memo_app');
	my @sql_dmy = (@plain, DateStyle => 'SQL, DMY');
	my $show = q{SELECT concat_ws('|', current_setting('DateStyle'),
		current_setting('search_path'), current_setting('statement_timeout'),
		current_setting('application_name'))};
	my %want;
	for my $kv (\@plain, \@sql_dmy)
	{
		my $c = PoolTest::Raw->new(port => $node->port, timeout => 10);
		$c->login(@$kv);
		$want{$kv} = $c->query_value($show);
		$c->query('RESET DateStyle');
		$want{"$kv reset"} = $c->query_value($show);
		$c->terminate;
		$c->close;
	}
	for my $i (1 .. 8)
	{
		my $kv = $i % 3 == 0 ? \@sql_dmy : \@plain;
		my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
		$c->login(@$kv);
		is($c->query_value($show), $want{$kv}, "memo session $i: what a backend starts with");
		$c->query('RESET DateStyle');
		is($c->query_value($show), $want{"$kv reset"}, "memo session $i: RESET as on a backend");
		$c->query(q{SET DateStyle = 'German'});
		$c->query('SET search_path = pg_catalog');
		$c->query('SET statement_timeout = 1234');
		$c->terminate;
		$c->close;
	}
}
$node->stop;

###########################################################################
# Pool of 1, held by a session idle in a transaction: a login completes
###########################################################################
{
	# no reserve nor held executor (max_held_executors would start
	# another executor at once): B's query must wait for A's
	my $n1 = pool_node('held', size => 1,
		conf => "builtin_pool.reserve_pool_size = 0\n"
		  . "builtin_pool.max_held_executors = 0\n");
	$n1->start;
	setup_app($n1);

	my $warm = PoolTest::Raw->new(port => $n1->pool_port, timeout => 10);
	ok($warm->login(@app), 'a first login warms the greeting');
	$warm->terminate;

	my $a = PoolTest::Raw->new(port => $n1->pool_port, timeout => 10);
	ok($a->login(@app), 'A logs in');
	is($a->query('BEGIN')->{status}, 'T', 'A opens a transaction');
	is($a->query_value('SELECT 1'), '1', 'A holds the only executor, idle in it');

	my $t0 = time();
	my $b = PoolTest::Raw->new(port => $n1->pool_port, timeout => 10);
	ok($b->login(@app), 'B logs in while the only executor is held');
	cmp_ok(time() - $t0, '<', 2, 'at once');
	ok($b->send_query('SELECT 42'), 'B sends its first query');
	my $early = $b->read_result(1);
	ok(!$early->{complete}, 'which waits for the executor');
	is($a->query('COMMIT')->{status}, 'I', 'A commits');
	my $res = $b->read_result(10);
	ok($res->{complete} && !@{ $res->{errors} }, 'B is served then');
	is($res->{rows}[0][0], '42', 'with its answer');
	is($b->query_value('SELECT current_setting(\'application_name\')'), '',
		'B has its own settings');
	$a->terminate;
	$b->terminate;
	check_no_crash($n1, 'held pool: no crash');
	$n1->stop;
}

###########################################################################
# pgbench -C TPC-B, many clients per thread on a pool of 4
###########################################################################
{
	my $n4 = pool_node('connect', size => 4,
		conf => "builtin_pool.reserve_pool_size = 0\nlog_statement = none\n");
	$n4->start;
	setup_app($n4);
	pgbench_init($n4);

	my @cmd = (
		'pgbench', '-n', '-C', '-c', '1000', '-j', '2', '-t', '2',
		'-h', '127.0.0.1', '-p', $n4->pool_port, '-U', 'app', 'app');
	my ($out, $err, $timed_out) = run_bounded(\@cmd, 120);
	note "pgbench stdout:\n$out\nstderr:\n" . substr($err, 0, 3000);
	ok(!$timed_out, 'pgbench -C TPC-B -c 1000 -j 2 ends in time');
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	is($processed // 0, 2000, 'every transaction done');
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($failed // 0, 0, 'no failed transaction');
	unlike($err, qr/error|FATAL|aborted/i, 'no client error');
	cmp_ok(
		$n4->safe_psql('postgres', 'SELECT greeted FROM pool_listener_stats()'),
		'>', 0, 'the listener greeted logins');
	check_no_crash($n4, 'pgbench -C: no crash');
	$n4->stop;
}

done_testing();
