
# Copyright (c) builtin_pool authors
#
# pgbench through the pool port (simple protocol) with many clients and
# session_pool_size = 4: select-only and TPC-B runs without failed
# transactions, pool_pools/pool_status sampled during the runs (all clients
# connected as sessions, at most 4 executors), the sessions gone after the
# run, and the TPC-B invariants afterwards (balances and history agree).
#
# 200 clients by default; BP_BIG=1 adds runs with 1,000 clients (skipped
# when the open-file limit is below 4096).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(usleep time);

my $pool_size = 4;
my $node = pool_node(
	'pgbench',
	size => $pool_size,
	conf => "log_statement = none\nmax_connections = 50\n");
$node->start;
setup_app($node);
my $pp = $node->pool_port;

pool_serves_ok($node);

# initialize through the main port, as app
pgbench_init($node);

# run_pgbench(NAME, CLIENTS, PORT, [extra pgbench args]): runs pgbench -T 5
# in the background, sampling the pool while it runs.  -n: no vacuum, and
# above all no TRUNCATE of pgbench_history, so that the history always holds
# every transaction since pgbench -i and the balance invariants hold.  Returns a hash ref:
# rc, out, err, processed, failed, max_sessions, max_executors, max_rows.
sub run_pgbench
{
	my ($name, $clients, $port, @args) = @_;
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-M', 'simple', '-c', $clients, '-j', '2', '-T', '5',
		'-h', '127.0.0.1', '-p', $port, '-U', 'app', @args, 'app');
	note "running: @cmd";
	my $timer = IPC::Run::timer(150);
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err);
	$timer->start;
	my %s = (max_sessions => 0, max_executors => 0, max_rows => 0,
		saw_all => 0);
	while (!$timer->is_expired)
	{
		$h->pump_nb;
		last unless $h->pumpable;
		if ($port == $pp)
		{
			my $p = $node->pool_pool('app', 'app');
			if ($p)
			{
				$s{max_sessions} = $p->{sessions} if $p->{sessions} > $s{max_sessions};
				$s{max_executors} = $p->{executors} if $p->{executors} > $s{max_executors};
			}
			my @rows = $node->pool_status(
				"port = $pp AND database = 'app' AND role = 'app'");
			$s{max_rows} = @rows if @rows > $s{max_rows};
		}
		usleep(200_000);
	}
	if ($timer->is_expired)
	{
		$h->kill_kill;
		$s{timed_out} = 1;
	}
	else
	{
		$h->finish;
	}
	$s{rc} = $h->result(0);
	$s{out} = $out;
	$s{err} = $err;
	$s{processed} = $1
	  if $out =~ /number of transactions actually processed: (\d+)/;
	$s{failed} = $1 if $out =~ /number of failed transactions: (\d+)/;
	note "pgbench $name stdout:\n$out\nstderr:\n$err";
	note "pgbench $name: max sessions $s{max_sessions}, max executors $s{max_executors}, max pool_status rows $s{max_rows}";
	return \%s;
}

sub check_run
{
	my ($name, $r, $clients) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok(!$r->{timed_out}, "$name: pgbench finished in time");
	is($r->{rc}, 0, "$name: pgbench exit code 0");
	like($r->{out}, qr/number of clients: $clients\b/, "$name: $clients clients");
	is($r->{failed}, 0, "$name: number of failed transactions: 0");
	cmp_ok($r->{processed} // 0, '>', 0, "$name: transactions processed");
	unlike($r->{err}, qr/error|FATAL|aborted/i, "$name: no client error");
	is($r->{max_sessions}, $clients,
		"$name: pool_pools counted all $clients clients as sessions");
	cmp_ok($r->{max_executors}, '>=', 1, "$name: pool has executors");
	# reserve executors may start when requests wait (reserve_pool_size 4)
	cmp_ok($r->{max_executors}, '<=', $pool_size + 4,
		"$name: at most $pool_size executors and the reserve (pool_pools)");
	cmp_ok($r->{max_rows}, '<=', $pool_size + 4,
		"$name: at most $pool_size executors and the reserve in pool_status");
	ok( wait_until(
			sub {
				my $p = $node->pool_pool('app', 'app');
				return !$p || $p->{sessions} == 0;
			},
			30),
		"$name: every session gone after pgbench exits");
	return;
}

sub balances
{
	my $row = $node->safe_psql('app', q{
		SELECT (SELECT sum(abalance) FROM pgbench_accounts),
		       (SELECT sum(bbalance) FROM pgbench_branches),
		       (SELECT sum(tbalance) FROM pgbench_tellers),
		       (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		       (SELECT count(*) FROM pgbench_history)});
	return split /\|/, $row;
}

sub check_tpcb
{
	my ($name, $r, $hist_before) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($a, $b, $t, $h, $n) = balances();
	is($a, $h, "$name: sum(abalance) = sum(history.delta)");
	is($b, $h, "$name: sum(bbalance) = sum(history.delta)");
	is($t, $h, "$name: sum(tbalance) = sum(history.delta)");
	is($n - $hist_before, $r->{processed} // -1,
		"$name: one history row per processed transaction");
	return;
}

# Baseline through the main port: validates this test's own assumptions
# (pgbench output format, history rows = processed transactions).
{
	my $n0 = (balances())[4];
	my $r = run_pgbench('main port TPC-B', 20, $node->port);
	is($r->{rc}, 0, 'baseline pgbench through the main port');
	is($r->{failed}, 0, 'baseline: no failed transaction');
	check_tpcb('baseline', $r, $n0);
}

my $clients = 200;

my $r = run_pgbench("select-only $clients", $clients, $pp, '-S');
check_run("select-only $clients", $r, $clients);

my $n0 = (balances())[4];
$r = run_pgbench("TPC-B $clients", $clients, $pp);
check_run("TPC-B $clients", $r, $clients);
check_tpcb("TPC-B $clients", $r, $n0);

SKIP:
{
	skip 'set BP_BIG=1 for the 1,000-client runs', 1 unless $ENV{BP_BIG};
	my $nofile = `sh -c 'ulimit -n'`;
	chomp $nofile;
	skip "open-file limit $nofile < 4096: 1,000 clients need more", 1
	  if $nofile ne 'unlimited' && $nofile < 4096;

	my $big = 1000;
	$r = run_pgbench("select-only $big", $big, $pp, '-S');
	check_run("select-only $big", $r, $big);

	$n0 = (balances())[4];
	$r = run_pgbench("TPC-B $big", $big, $pp);
	check_run("TPC-B $big", $r, $big);
	check_tpcb("TPC-B $big", $r, $n0);
}

# the pool still answers, and pgbench tables are consistent seen through it
is( $node->pool_safe_psql('app',
		'SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)'
	),
	't',
	'balances consistent through the pool port');

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
