
# Copyright (c) builtin_pool authors
#
# Load and faults, each part bounded in time:
#   (a) reconnect storm: pgbench -C -S with 500 clients through the pool
#       (fewer when the open-file limit is low): no failed transaction,
#       pool_listener_stats().accepted counts every connection;
#   (b) executors killed under load: pgbench TPC-B (simple protocol, 100
#       clients, restarted when all its clients are gone) while
#       pg_terminate_backend() ends one executor every ~2 s: no restart, the
#       pool serves afterwards, committed data is consistent (TPC-B
#       invariants) and none is lost (history rows between the transactions
#       pgbench saw committed and that plus the clients it lost mid-way);
#   (c) clients killed under load: 50 raw clients holding transactions,
#       locks, half messages, COPYs and half-read results are killed (kill
#       -9) at random points and replaced while pgbench TPC-B runs: pgbench
#       has no failure, no lock, session or open transaction is left, the
#       invariants hold;
#   (d) max_sessions reached (max_sessions 5, session_pool_size 2): the 11th
#       client gets 53300 "sorry, too many clients already", the 10 others
#       keep working, a burst of 15 gets 10 in and 5 refused;
#   (e) max_worker_processes exhausted with a dedicated database: sessions
#       are refused with 53300 and a hint naming max_worker_processes, the
#       others keep working, and new ones work again once they close;
#   (f) no session sees another's data: 20 forked clients on 2 executors,
#       each with its own application_name, custom GUC, prepared statement
#       and sequence values, check in a loop that they see only their own;
#   (g) clients that send a query and go away at once (close, half-close)
#       while their executor is busy leave no session behind;
#   (h) an executor terminated while clients wait for their session to
#       start: they are served elsewhere or get an ErrorResponse, never a
#       bare EOF.
# Throughout: no crash, no postmaster restart.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Socket qw(SHUT_WR);
use Test::More;
use Time::HiRes qw(time usleep);

my $T0 = time();

# BP_LF_PARTS=bg runs only parts (b) and (g), for instance
my $PARTS = $ENV{BP_LF_PARTS} // 'abcdefgh';
sub part { return index($PARTS, $_[0]) >= 0; }

# pgbench in the background; returns the IPC::Run handle and refs to the
# output.  Timeout: generous, for a busy machine.
sub start_pgbench
{
	my ($port, @args) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-h', '127.0.0.1', '-p', $port, '-U', 'app', @args, 'app');
	note "running: @cmd";
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
		IPC::Run::timeout(180));
	return { h => $h, out => \$out, err => \$err, cmd => "@cmd" };
}

# waits for a pgbench started by start_pgbench; returns a hash ref: rc,
# out, err, processed, failed, aborted (clients lost)
sub finish_pgbench
{
	my ($p) = @_;
	my %r;
	eval { $p->{h}->finish; };
	if ($@)
	{
		$r{timed_out} = 1;
		$p->{h}->kill_kill;
	}
	$r{rc} = $p->{h}->result(0);
	$r{out} = ${ $p->{out} };
	$r{err} = ${ $p->{err} };
	$r{processed} = $r{out} =~ /number of transactions actually processed: (\d+)/ ? $1 : undef;
	$r{failed} = $r{out} =~ /number of failed transactions: (\d+)/ ? $1 : undef;
	my @ab = $r{err} =~ /client \d+ aborted/g;
	$r{aborted} = scalar @ab;
	return \%r;
}

sub balances
{
	my ($node) = @_;
	my $row = $node->safe_psql('app', q{
		SELECT (SELECT sum(abalance) FROM pgbench_accounts),
		       (SELECT sum(bbalance) FROM pgbench_branches),
		       (SELECT sum(tbalance) FROM pgbench_tellers),
		       (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		       (SELECT count(*) FROM pgbench_history)});
	return split /\|/, $row;
}

sub check_invariants
{
	my ($node, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($a, $b, $t, $h, $n) = balances($node);
	is($a, $h, "$name: sum(abalance) = sum(history.delta)");
	is($b, $h, "$name: sum(bbalance) = sum(history.delta)");
	is($t, $h, "$name: sum(tbalance) = sum(history.delta)");
	return $n;
}

sub listener_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
}

sub accepted
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT accepted FROM pool_listener_stats()');
}

# No session in pool_pools, nor a row in pool_sessions (whose slots must
# not leak through storms, killed executors and killed clients either)
sub no_sessions_left
{
	my ($node, $db, $timeout) = @_;
	$db //= 'app';
	return wait_until(
		sub {
			my $p = $node->pool_pool($db, 'app');
			return (!$p || $p->{sessions} == 0) &&
			  $node->safe_psql('postgres',
				"SELECT count(*) FROM pool_sessions WHERE database = '$db' AND role = 'app'")
			  eq '0';
		},
		$timeout // 30);
}

sub pool_desc
{
	my ($node) = @_;
	return join('; ', map { "executor $_->{pid} ($_->{database}/$_->{role}): $_->{sessions} sessions, state $_->{state}, active $_->{active}, waiting $_->{waiting}, pinned $_->{pinned}" } $node->pool_status);
}

# Children must leave without running Test::More's END blocks.
sub child_exit
{
	my ($code) = @_;
	POSIX::_exit($code // 0);
}

sub raw_login
{
	my ($port, %kv) = @_;
	my $c = eval { PoolTest::Raw->new(port => $port, timeout => 30) };
	return undef unless $c;
	return $c if $c->login(user => 'app', database => $kv{database} // 'app',
		map { $_ => $kv{$_} } grep { $_ ne 'database' } keys %kv);
	$c->close;
	return undef;
}

###########################################################################
# The node for (a), (b), (c)
###########################################################################

if (part('a') || part('b') || part('c')) {
my $pool_size = 8;
my $node = pool_node(
	'load',
	size => $pool_size,
	conf => "log_statement = none\nmax_connections = 30\n"
	  . "deadlock_timeout = '100ms'\nmax_parallel_workers_per_gather = 0\n");
$node->start;
setup_app($node);
my $pp = $node->pool_port;
pool_serves_ok($node, 'pool port serves');
pgbench_init($node);
my $lpid = listener_pid($node);
like($lpid, qr/^\d+$/, 'listener pid');

###########################################################################
# (a) reconnect storm
###########################################################################
if (part('a'))
{
	my $clients = 500;
	my $nofile = `sh -c 'ulimit -n'`;
	chomp $nofile;
	if ($nofile ne 'unlimited' && $nofile < 2000)
	{
		$clients = int(($nofile - 200) / 3);
		$clients = 20 if $clients < 20;
		note "open-file limit $nofile < 2000: the reconnect storm uses $clients clients instead of 500";
		diag("note: open-file limit $nofile, reconnect storm reduced to $clients clients");
	}
	my $acc0 = accepted($node);
	my $p = start_pgbench($pp, '-n', '-C', '-S', '-M', 'simple', '-c', $clients, '-j', '2',
		'-T', '10', '--max-tries=1');
	my $r = finish_pgbench($p);
	note "pgbench -C:\n$r->{out}\n$r->{err}";
	ok(!$r->{timed_out}, '(a) storm: pgbench finished in time');
	is($r->{rc}, 0, '(a) storm: pgbench exit code 0');
	like($r->{out}, qr/number of clients: $clients\b/, "(a) storm: $clients clients");
	is($r->{failed}, 0, '(a) storm: 0 failed transactions');
	cmp_ok($r->{processed} // 0, '>', $clients, '(a) storm: transactions processed');
	unlike($r->{err}, qr/aborted|error|FATAL/i, '(a) storm: no client error');
	my $acc1 = accepted($node);
	cmp_ok($acc1 - $acc0, '>=', $r->{processed} // 1,
		'(a) storm: pool_listener_stats().accepted grew by at least one per transaction (-C)');
	note "accepted grew by " . ($acc1 - $acc0) . " for $r->{processed} transactions";
	ok(no_sessions_left($node), '(a) storm: every session gone afterwards')
	  or diag(pool_desc($node));
	is(listener_pid($node), $lpid, '(a) storm: same listener');
	check_no_crash($node, '(a) storm');
}

###########################################################################
# (b) executors killed under load
###########################################################################
# A pinner (part b): sessions that pin their executor (temp tables) make
# it hand its other sessions back to the listener, so sessions move between
# executors while executors die.  It checks that it sees its own rows only,
# reconnecting whenever its connection is lost; writes "checks wrong lost
# first_problem" to FILE.
sub pinner
{
	my ($port, $id, $t_end, $file) = @_;
	my ($checks, $wrong, $lost, $first) = (0, 0, 0, '');
	while (time() < $t_end)
	{
		my $c = raw_login($port, application_name => "pinner$id");
		if (!$c)
		{
			$lost++;
			usleep(100_000);
			next;
		}
		my $n = 0;
		while (time() < $t_end)
		{
			$n++;
			my $r = $c->query("CREATE TEMP TABLE IF NOT EXISTS mine (who int, n int); INSERT INTO mine VALUES ($id, $n); SELECT min(who), max(who), count(*) FROM mine");
			if (!$r->{complete})
			{
				$lost++;
				last;
			}
			if (@{ $r->{errors} })
			{
				$wrong++;
				$first ||= 'error: ' . join('; ', map { "$_->{C} $_->{M}" } @{ $r->{errors} });
				last;
			}
			my $row = $r->{rows}[0] // [];
			$checks++;
			if (($row->[0] // '') ne $id || ($row->[1] // '') ne $id || ($row->[2] // '') ne $n)
			{
				$wrong++;
				$first ||= "temp table: expected $id,$id,$n, got @$row";
			}
			if ($n % 5 == 0)
			{
				# unpin now and then: the session may move afterwards
				$r = $c->query('DROP TABLE mine');
				last unless $r->{complete};
				$n = 0;
			}
			usleep(int(rand(50_000)));
		}
		$c->close;
	}
	open(my $fh, '>', $file) or child_exit(1);
	print $fh "$checks $wrong $lost $first\n";
	close $fh;
	child_exit(0);
}

if (part('b'))
{
	my $hist0 = (balances($node))[4];
	my $t_end = time() + 15;
	my $pdir = PostgreSQL::Test::Utils::tempdir();
	my @pinners;
	for my $id (1 .. 6)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			eval { pinner($pp, $id, $t_end, "$pdir/p$id"); };
			child_exit(1);
		}
		push @pinners, $pid;
	}
	my ($processed, $aborted, $runs, $kills) = (0, 0, 0, 0);
	my @killed;
	my $next_kill = time() + 2;
	my @errs;
	while (time() < $t_end - 1)
	{
		my $secs = int($t_end - time());
		$secs = 1 if $secs < 1;
		my $p = start_pgbench($pp, '-n', '-M', 'simple', '-c', '100', '-j', '2',
			'-T', $secs, '--max-tries=1');
		$runs++;
		while ($p->{h}->pumpable)
		{
			eval { $p->{h}->pump_nb; };
			last if $@;
			if (time() >= $next_kill)
			{
				$next_kill = time() + 2;
				# every other kill hits the executor with the most sessions
				# (pgbench's rather than a pinner's), the others one at random
				my $order = $kills % 2 ? 'random()' : 'sessions DESC, random()';
				my $pid = $node->safe_psql('postgres', qq{
					SELECT pid FROM pool_status()
					WHERE database = 'app' AND role = 'app' AND state <> 'starting'
					ORDER BY $order LIMIT 1});
				if ($pid =~ /^\d+$/)
				{
					my $ok = $node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
					if ($ok eq 't')
					{
						$kills++;
						push @killed, $pid;
					}
				}
			}
			usleep(50_000);
		}
		my $r = finish_pgbench($p);
		note "pgbench run $runs (-T $secs): rc $r->{rc}, processed "
		  . ($r->{processed} // 'n/a') . ", failed " . ($r->{failed} // 'n/a')
		  . ", clients lost $r->{aborted}";
		note "stderr (first lines):\n" . join("\n", (split /\n/, $r->{err})[ 0 .. 9 ]) if $r->{err};
		if (!defined $r->{processed})
		{
			# pgbench gave up before its summary: connections refused?
			push @errs, "run $runs: no summary; stderr: " . substr($r->{err}, 0, 500);
			last if $r->{timed_out};
			next;
		}
		$processed += $r->{processed};
		$aborted += $r->{aborted};
	}
	note "(b) $runs pgbench runs, $kills executors terminated (@killed), $processed transactions, $aborted clients lost";
	waitpid($_, 0) for @pinners;
	my ($pchecks, $pwrong, $plost, @pproblems) = (0, 0, 0);
	for my $id (1 .. 6)
	{
		my $line = -e "$pdir/p$id" ? slurp_file("$pdir/p$id") : "0 1 0 no result\n";
		chomp $line;
		my ($c, $w, $l, $f) = split / /, $line, 4;
		$pchecks += $c;
		$pwrong += $w;
		$plost += $l;
		push @pproblems, "pinner $id: $w wrong of $c, first: $f" if $w;
	}
	note "(b) pinners: $pchecks checks, $plost connections lost";
	is($pwrong, 0, '(b) sessions pinning and moving between executors while executors die see only their own data')
	  or diag(join("\n", @pproblems));
	cmp_ok($pchecks, '>', 50, '(b) the pinners ran');
	is(scalar(@errs), 0, '(b) every pgbench run could start (connections through the pool accepted while executors die)')
	  or diag(join("\n", @errs));
	cmp_ok($kills, '>=', 4, '(b) executors were terminated under load');
	cmp_ok($processed, '>', 0, '(b) transactions committed meanwhile');
	pool_serves_ok($node, '(b) the pool serves afterwards');
	is(listener_pid($node), $lpid, '(b) same listener (only executors died)');
	my @alive = grep { kill(0, $_) } @killed;
	is(scalar(@alive), 0, '(b) the terminated executors are gone');
	my $hist = check_invariants($node, '(b) executors killed');
	my $new = $hist - $hist0;
	cmp_ok($new, '>=', $processed,
		'(b) no committed transaction lost: history rows >= transactions pgbench saw committed');
	cmp_ok($new, '<=', $processed + $aborted,
		'(b) history rows <= committed + in doubt (one per client lost)');
	ok(no_sessions_left($node), '(b) no session left') or diag(pool_desc($node));
	my @st = $node->pool_status("database = 'app' AND role = 'app'");
	# beyond the pool's size: reserve executors (reserve_pool_size 4),
	# which retire once idle, and those the pinners pinned
	# (max_pinned_executors 8), which stay in the pool once unpinned
	cmp_ok(scalar(@st), '<=', $pool_size + 4 + 8,
		"(b) at most $pool_size executors, the reserve and the pinned ones afterwards");
	check_no_crash($node, '(b) executors killed');
}

###########################################################################
# (c) clients killed under load
###########################################################################

# A victim: loops over things a client can be doing when it dies, each
# held for a moment (an open transaction occupies an executor: holding
# them for long would only starve pgbench), then finished, abandoned
# (socket closed) or interrupted by kill -9 from the parent.
sub victim
{
	my ($port, $seed) = @_;
	srand($seed);
	$SIG{TERM} = 'DEFAULT';
	my $hold = sub { usleep(int(rand(300_000))); };
	while (1)
	{
		my $c = raw_login($port, application_name => "victim$seed");
		if (!$c)
		{
			usleep(50_000);
			next;
		}
		my $alive = 1;
		while ($alive)
		{
			usleep(200_000 + int(rand(800_000)));
			my $aid = 1 + int(rand(100000));
			my $tid = 1 + int(rand(10));
			my $d = int(rand(10001)) - 5000;
			my $k = int(rand(100));
			my $tx = sub {
				$c->query('BEGIN');
				$c->query("UPDATE pgbench_accounts SET abalance = abalance + $d WHERE aid = $aid");
				$hold->();
				$c->query("UPDATE pgbench_tellers SET tbalance = tbalance + $d WHERE tid = $tid");
				$c->query("UPDATE pgbench_branches SET bbalance = bbalance + $d WHERE bid = 1");
				$c->query("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($tid, 1, $aid, $d, now())");
			};
			if ($k < 35)
			{
				# a whole transaction, slowly: killed anywhere in it
				$tx->();
				$hold->();
				my $r = $c->query($k < 30 ? 'COMMIT' : 'ROLLBACK');
				$alive = $r->{complete};
			}
			elsif ($k < 45)
			{
				# holds the branch row, then hangs up without committing
				$tx->();
				$hold->();
				$alive = 0;
			}
			elsif ($k < 55)
			{
				# holds an account row, then hangs up
				$c->query('BEGIN');
				$c->query("UPDATE pgbench_accounts SET abalance = abalance + $d WHERE aid = $aid");
				$c->query("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($tid, 1, $aid, $d, now())");
				$hold->();
				$alive = 0;
			}
			elsif ($k < 63)
			{
				# half a message inside a transaction
				$c->query('BEGIN');
				$c->query("UPDATE pgbench_accounts SET abalance = abalance + $d WHERE aid = $aid");
				my $m = PoolTest::Raw::query_msg("UPDATE pgbench_tellers SET tbalance = tbalance + $d WHERE tid = $tid");
				$c->send_bytes(substr($m, 0, 1 + int(rand(length($m) - 1))));
				$hold->();
				$alive = 0;
			}
			elsif ($k < 68)
			{
				# half a message outside a transaction
				my $m = PoolTest::Raw::query_msg('SELECT 1');
				$c->send_bytes(substr($m, 0, 1 + int(rand(length($m) - 1))));
				$hold->();
				$alive = 0;
			}
			elsif ($k < 75)
			{
				# COPY FROM STDIN into the history, interrupted
				my $r = $c->query('COPY pgbench_history (tid, bid, aid, delta, mtime) FROM STDIN');
				if ($r->{copy_in})
				{
					$c->send_bytes(PoolTest::Raw::msg('d', "1\t1\t1\t0\t2024-01-01\n"));
					$hold->();
				}
				$alive = 0;
			}
			elsif ($k < 80)
			{
				# a big result, read in part
				$c->send_query('SELECT * FROM pgbench_accounts');
				for (1 .. 5)
				{
					$c->_fill(time() + 1);
					$c->{buf} = '';
					usleep(20_000);
				}
				$alive = 0;
			}
			elsif ($k < 84)
			{
				# a statement running when the client goes
				$c->send_query('SELECT pg_sleep(0.2), count(*) FROM pgbench_accounts');
				usleep(50_000);
				$alive = 0;
			}
			else
			{
				my $r = $c->query("SELECT abalance FROM pgbench_accounts WHERE aid = $aid");
				$alive = $r->{complete};
			}
		}
		$c->close;
	}
}

if (part('c'))
{
	my %victims;
	my $seed = 1000;
	my $spawn = sub {
		my $s = $seed++;
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			eval { victim($pp, $s); };
			child_exit(0);
		}
		$victims{$pid} = 1;
	};
	$spawn->() for 1 .. 50;
	my $p = start_pgbench($pp, '-n', '-M', 'simple', '-c', '20', '-j', '2', '-T', '12',
		'--max-tries=1');
	my $killed = 0;
	while ($p->{h}->pumpable)
	{
		eval { $p->{h}->pump_nb; };
		last if $@;
		my @v = keys %victims;
		my $pid = $v[ int(rand(@v)) ];
		kill 'KILL', $pid;
		waitpid($pid, 0);
		delete $victims{$pid};
		$killed++;
		$spawn->();
		usleep(int(rand(120_000)));
	}
	my $r = finish_pgbench($p);
	kill 'KILL', keys %victims;
	waitpid($_, 0) for keys %victims;
	$killed += keys %victims;
	note "pgbench with victims:\n$r->{out}\n$r->{err}";
	note "(c) $killed clients killed";
	ok(!$r->{timed_out}, '(c) pgbench finished in time');
	is($r->{rc}, 0, '(c) pgbench exit code 0');
	is($r->{failed}, 0, '(c) pgbench: 0 failed transactions');
	cmp_ok($r->{processed} // 0, '>', 0, '(c) pgbench: transactions processed');
	cmp_ok($killed, '>=', 50, '(c) clients were killed');

	ok( wait_until(
			sub {
				$node->safe_psql('app', q{
					SELECT count(*) FROM pg_locks
					WHERE pid <> pg_backend_pid() AND locktype <> 'virtualxid'
					  AND NOT (locktype = 'relation' AND database = 0)}) eq '0';
			},
			30),
		'(c) no lock left except the checker\'s own')
	  or diag($node->safe_psql('app', q{
			SELECT l.locktype, l.relation::regclass, l.mode, l.granted, l.pid, a.backend_type, a.state
			FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid)
			WHERE l.pid <> pg_backend_pid()}));
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'builtin_pool executor' AND state LIKE 'idle in transaction%'}),
		'0',
		'(c) no executor idle in transaction');
	ok(no_sessions_left($node), '(c) no session left') or diag(pool_desc($node));
	check_invariants($node, '(c) clients killed');
	pool_serves_ok($node, '(c) the pool serves');
	is(listener_pid($node), $lpid, '(c) same listener');
	check_no_crash($node, '(c) clients killed');
}

$node->stop;
check_no_crash($node, 'load node after stop');
note sprintf('(a)-(c) took %.0f s', time() - $T0);
}

###########################################################################
# (d) max_sessions reached
###########################################################################
if (part('d'))
{
	my $n = pool_node('maxsess', size => 2,
		conf => "builtin_pool.max_sessions = 5\nlog_statement = none\n");
	$n->start;
	setup_app($n);
	my $port = $n->pool_port;
	pool_serves_ok($n, '(d) pool serves');

	my @s;
	for my $i (1 .. 10)
	{
		my $c = raw_login($port, application_name => "s$i");
		push @s, $c if $c;
	}
	is(scalar(@s), 10, '(d) 10 sessions admitted');
	my $c11 = PoolTest::Raw->new(port => $port);
	ok(!$c11->login(user => 'app', database => 'app'), '(d) the 11th is refused');
	my $e = $c11->{startup}{errors}[0] // {};
	is($e->{C} // '', '53300', '(d) 11th: SQLSTATE 53300');
	is($e->{S} // '', 'FATAL', '(d) 11th: FATAL');
	like($e->{M} // '', qr/sorry, too many clients already/, '(d) 11th: "sorry, too many clients already"');
	ok($c11->{startup}{eof} || $c11->wait_eof(5), '(d) 11th: connection closed');
	$c11->close;
	my $ok = 0;
	for my $i (0 .. $#s)
	{
		$ok++ if ($s[$i]->query_value("SELECT 'ok' || $i") // '') eq "ok$i";
	}
	is($ok, 10, '(d) the 10 admitted sessions keep working');
	my $p = $n->pool_pool('app', 'app');
	is($p->{sessions}, 10, '(d) pool_pools counts 10 sessions');
	is($p->{executors}, 2, '(d) on 2 executors');

	# one leaves: a new one gets in, and the next is refused again
	$s[0]->terminate;
	shift @s;
	my $c = wait_until(sub { raw_login($port) }, 10);
	ok($c, '(d) a freed slot admits a new session');
	push @s, $c if $c;
	my $again = PoolTest::Raw->new(port => $port);
	ok(!$again->login(user => 'app', database => 'app'), '(d) then the next is refused again');
	is(PoolTest::Raw::sqlstate($again->{startup}), '53300', '(d) with 53300');
	$again->close;
	$_->terminate for @s;
	ok(no_sessions_left($n), '(d) all sessions gone');

	# a burst of 15 concurrent logins: 10 in, 5 refused with 53300
	my @burst = map { PoolTest::Raw->new(port => $port) } 1 .. 15;
	$_->send_startup(user => 'app', database => 'app') for @burst;
	my ($in, $refused, $other) = (0, 0, '');
	for my $b (@burst)
	{
		my $r = $b->read_startup_response(30);
		if ($r->{ok}) { $in++; }
		elsif (PoolTest::Raw::sqlstate($r) eq '53300') { $refused++; }
		else { $other .= " [$r->{types} " . PoolTest::Raw::sqlstate($r) . ']'; }
	}
	is("$in/$refused", '10/5', '(d) burst of 15: 10 admitted, 5 refused with 53300')
	  or diag("other outcomes:$other");
	my $works = grep { $_->{pid} && ($_->query_value('SELECT 7') // '') eq '7' } @burst;
	is($works, $in, '(d) burst: the admitted ones work');
	$_->terminate for @burst;
	check_no_crash($n, '(d) max_sessions');
	$n->stop;
}

###########################################################################
# (e) max_worker_processes exhausted
###########################################################################
if (part('e'))
{
	# room for the listener and 2 executors at most (and, when
	# max_logical_replication_workers > 0, the replication launcher takes
	# one of them)
	my $n = pool_node('workers', size => 2, max_worker_processes => 4,
		conf => "builtin_pool.dedicated_databases = 'ded'\nlog_statement = none\n"
		  . "max_parallel_workers_per_gather = 0\n");
	$n->start;
	setup_app($n);
	$n->safe_psql('postgres', 'CREATE DATABASE ded OWNER app');
	my $port = $n->pool_port;

	my @s;
	my $refused;
	for my $i (1 .. 8)
	{
		my $c = PoolTest::Raw->new(port => $port);
		if ($c->login(user => 'app', database => 'ded', application_name => "d$i"))
		{
			push @s, $c;
			next;
		}
		$refused = $c;
		last;
	}
	note scalar(@s) . ' dedicated sessions before the refusal; ' . pool_desc($n);
	cmp_ok(scalar(@s), '>=', 1, '(e) dedicated sessions admitted while worker slots last');
	ok($refused, '(e) a session is refused once the worker slots are used up');
	my %pids = map { $_->{startup}{pid} => 1 } @s;
	is(scalar(keys %pids), scalar(@s), '(e) each dedicated session has its own executor');
	SKIP:
	{
		skip 'no refusal', 5 unless $refused;
		my $e = $refused->{startup}{errors}[0] // {};
		is($e->{C} // '', '53300', '(e) refused: SQLSTATE 53300');
		is($e->{S} // '', 'FATAL', '(e) refused: FATAL');
		like($e->{H} // '', qr/max_worker_processes/, '(e) refused: the hint names max_worker_processes');
		note "refusal: $e->{M} / " . ($e->{D} // '') . ' / ' . ($e->{H} // '');
		ok($refused->{startup}{eof} || $refused->wait_eof(5), '(e) refused: connection closed');
		$refused->close;
		my $ok = grep { ($_->query_value('SELECT current_database()') // '') eq 'ded' } @s;
		is($ok, scalar(@s), '(e) the admitted sessions keep working');
	}
	$_->terminate for @s;
	ok( wait_until(
			sub {
				my $c = PoolTest::Raw->new(port => $port);
				my $ok = $c->login(user => 'app', database => 'ded');
				$c->terminate;
				return $ok;
			},
			30),
		'(e) a new dedicated session works once the others closed');
	# and as many as before
	my @again;
	ok( wait_until(
			sub {
				$_->terminate for @again;
				@again = ();
				for (1 .. scalar(@s))
				{
					my $c = PoolTest::Raw->new(port => $port);
					return 0 unless $c->login(user => 'app', database => 'ded');
					push @again, $c;
				}
				return 1;
			},
			30),
		'(e) as many dedicated sessions as before fit again');
	$_->terminate for @again;
	check_no_crash($n, '(e) worker processes');
	$n->stop;
}

###########################################################################
# (f) no session sees another's data; (g) clients vanishing at once
###########################################################################
if (part('f') || part('g') || part('h')) {
my $iso = pool_node('isolation', size => 2,
	conf => "log_statement = none\nmax_connections = 20\n");
$iso->start;
setup_app($iso);
my $ip = $iso->pool_port;
$iso->safe_psql('app', q{
	CREATE SEQUENCE iseq;
	ALTER SEQUENCE iseq OWNER TO app;
	CREATE TABLE marks (client int, pid int, n int);
	ALTER TABLE marks OWNER TO app;
});
pool_serves_ok($iso, 'isolation node: pool serves');

# one client: checks until DEADLINE, writes "checks mismatches first_problem"
sub isolation_client
{
	my ($i, $deadline, $file) = @_;
	srand($i * 7919);
	my ($checks, $bad, $first) = (0, 0, '');
	my %pids;
	my $note_bad = sub {
		my ($what) = @_;
		$bad++;
		$first ||= $what;
	};
	my $c = raw_login($ip, application_name => "c$i", options => "-c myapp.opt=o$i");
	if (!$c)
	{
		open(my $fh, '>', $file);
		print $fh "0 1 login failed\n";
		close $fh;
		child_exit(0);
	}
	my $r = $c->query("SET myapp.id = '$i'; PREPARE mine AS SELECT '$i'::text, current_setting('myapp.id')");
	$note_bad->('setup: ' . PoolTest::Raw::sqlstate($r)) if @{ $r->{errors} } || !$r->{complete};
	my $last_seq;
	while (time() < $deadline)
	{
		my $k = int(rand(6));
		if ($k == 0)
		{
			$r = $c->query(q{SELECT current_setting('myapp.id'), current_setting('application_name'), current_setting('myapp.opt'), pg_backend_pid()});
			my $row = $r->{rows}[0] // [];
			$pids{ $row->[3] // '?' }++;
			$note_bad->("settings: got @$row") unless ($row->[0] // '') eq $i && ($row->[1] // '') eq "c$i" && ($row->[2] // '') eq "o$i";
		}
		elsif ($k == 1)
		{
			$r = $c->query('EXECUTE mine');
			my $row = $r->{rows}[0] // [];
			$note_bad->("prepared: got @$row " . PoolTest::Raw::sqlstate($r)) unless ($row->[0] // '') eq $i && ($row->[1] // '') eq $i;
		}
		elsif ($k == 2)
		{
			# SET LOCAL inside a transaction, then back to its own value
			$r = $c->query("BEGIN; SET LOCAL myapp.id = 'local$i'; SELECT current_setting('myapp.id'); COMMIT; SELECT current_setting('myapp.id')");
			my @v = map { $_->[0] } @{ $r->{rows} };
			$note_bad->("set local: got @v") unless "@v" eq "local$i $i";
		}
		elsif ($k == 3)
		{
			# sequence: currval is the value this session got
			$r = $c->query(q{SELECT nextval('iseq')});
			$last_seq = $r->{rows}[0][0];
			usleep(int(rand(5000)));
			# (README: the executor drops currval/lastval when another
			# session runs, then they raise 55000 "not yet defined in this
			# session"; never another session's value)
			$r = $c->query(q{SELECT currval('iseq'), lastval()});
			my $row = $r->{rows}[0] // [];
			$note_bad->("currval: expected $last_seq, got @$row " . join(' ', map { "$_->{C} $_->{M}" } @{ $r->{errors} }))
			  unless defined $last_seq
			  && (($row->[0] // '') eq $last_seq && ($row->[1] // '') eq $last_seq
				|| PoolTest::Raw::sqlstate($r) eq '55000' && !@{ $r->{rows} });
		}
		elsif ($k == 4)
		{
			# extended protocol, unnamed statement with a parameter
			my $msgs = PoolTest::Raw::msg('P', "\0SELECT \$1::text || current_setting('myapp.id')\0" . pack('n N', 1, 25))
			  . PoolTest::Raw::msg('B', "\0\0" . pack('n n N', 0, 1, length("p$i-")) . "p$i-" . pack('n', 0))
			  . PoolTest::Raw::msg('E', "\0" . pack('N', 0))
			  . PoolTest::Raw::msg('S', '');
			$c->send_bytes($msgs);
			$r = $c->read_result(30);
			my $row = $r->{rows}[0] // [];
			$note_bad->("extended: got @$row") unless ($row->[0] // '') eq "p$i-$i";
		}
		else
		{
			# a transaction writing rows only this client reads back
			$r = $c->query("BEGIN; INSERT INTO marks VALUES ($i, pg_backend_pid(), 1); SELECT count(*) FROM marks WHERE client = $i AND n = 1; ROLLBACK");
			my $row = $r->{rows}[0] // [];
			$note_bad->("own uncommitted rows: got @$row") unless ($row->[0] // '') eq '1';
		}
		$checks++;
		$note_bad->("no ReadyForQuery (check $k)") unless $r->{complete};
	}
	$c->terminate;
	open(my $fh, '>', $file) or child_exit(1);
	print $fh "$checks $bad " . join(',', sort keys %pids) . " $first\n";
	close $fh;
	child_exit(0);
}

if (part('f'))
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $deadline = time() + 8;
	my @kids;
	for my $i (1 .. 20)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			eval { isolation_client($i, $deadline, "$dir/c$i"); };
			child_exit(1);
		}
		push @kids, $pid;
	}
	my $max_exec = 0;
	while (time() < $deadline)
	{
		my $p = $iso->pool_pool('app', 'app');
		$max_exec = $p->{executors} if $p && $p->{executors} > $max_exec;
		usleep(300_000);
	}
	waitpid($_, 0) for @kids;
	my ($checks, $bad, @problems);
	my %pids;
	for my $i (1 .. 20)
	{
		my $line = -e "$dir/c$i" ? slurp_file("$dir/c$i") : "0 1 - no result file\n";
		chomp $line;
		my ($n, $b, $pl, $first) = split / /, $line, 4;
		$checks += $n;
		$bad += $b;
		$pids{$_}++ for split /,/, ($pl // '');
		push @problems, "client $i: $b mismatches of $n checks, first: $first" if $b;
		push @problems, "client $i: no check ran" unless $n;
	}
	note "(f) $checks checks by 20 clients on executors " . join(',', sort keys %pids) . "; max executors $max_exec";
	is($bad, 0, '(f) no session saw another session\'s settings, statements, sequence values or rows')
	  or diag(join("\n", @problems));
	cmp_ok($checks, '>=', 200, '(f) enough checks ran');
	cmp_ok($max_exec, '<=', 2, '(f) the 20 sessions shared at most 2 executors');
	ok(no_sessions_left($iso), '(f) no session left') or diag(pool_desc($iso));
	check_no_crash($iso, '(f) isolation');
}

# (g) a client that sends a query and goes away at once, while its executor
# is busy with another session: the executor must still see it gone.
if (part('g'))
{
	my $b0 = raw_login($ip, application_name => 'g-probe');
	my $epid = $b0->{startup}{pid};
	$b0->terminate;
	for my $how ('close', 'half-close', 'close mid-COPY')
	{
		# sessions before, to judge this case alone
		my $p0 = $iso->pool_pool('app', 'app');
		my $base = $p0 ? $p0->{sessions} : 0;
		# a busy session and a victim, both on the same executor
		my ($busy, $victim);
		my @others;
		for (1 .. 20)
		{
			my $c = raw_login($ip, application_name => 'g');
			next unless $c;
			if ($c->{startup}{pid} == $epid && !$busy) { $busy = $c; }
			elsif ($c->{startup}{pid} == $epid && !$victim) { $victim = $c; }
			else { push @others, $c; }
			last if $busy && $victim;
		}
		$_->terminate for @others;
		SKIP:
		{
			skip "could not place two sessions on executor $epid", 3 unless $busy && $victim;
			$busy->send_query('SELECT pg_sleep(0.5)');
			usleep(100_000);
			my $q = $how =~ /COPY/
			  ? PoolTest::Raw::query_msg('COPY marks FROM STDIN') . PoolTest::Raw::msg('d', "1\t1\t1\n")
			  : PoolTest::Raw::query_msg('SELECT 1');
			$victim->send_bytes($q);
			my $vr;
			if ($how eq 'half-close')
			{
				# the query and the FIN arrive together while the executor
				# is busy; the client still reads the answer, then closes
				shutdown($victim->sock, SHUT_WR);
				$vr = $victim->read_result(10);
			}
			my $r = $busy->read_result(10);
			ok($r->{complete}, "(g) $how: the busy session finished");
			is_deeply($vr->{rows}, [ ['1'] ], "(g) $how: the half-closed client got its answer")
			  if $vr;
			$victim->close;
			$busy->terminate;
			ok( wait_until(
					sub {
						my $p = $iso->pool_pool('app', 'app');
						return ($p ? $p->{sessions} : 0) <= $base;
					},
					10),
				"(g) $how: no session left once the client sent a query and went away at once")
			  or diag("sessions before this case: $base; now: " . pool_desc($iso));
		}
	}
	pool_serves_ok($iso, '(g) the pool serves');
	check_no_crash($iso, '(g) vanishing clients');
}

# (h) an executor terminated while clients wait for it: those whose
# session had not started yet (queued behind a long statement) are served
# by another executor or at least told why (ErrorResponse), never dropped
# with a bare EOF; the running session gets core's FATAL 57P01.
if (part('h'))
{
	my @busy;
	for (1 .. 10)
	{
		my $c = raw_login($ip, application_name => 'h-busy');
		next unless $c;
		if (grep { $_->{startup}{pid} == $c->{startup}{pid} } @busy)
		{
			$c->terminate;
			next;
		}
		push @busy, $c;
		last if @busy == 2;
	}
	is(scalar(@busy), 2, '(h) one busy session on each of the 2 executors');
	# and an idle one on the executor that will be terminated
	my $idle;
	for (1 .. 10)
	{
		my $c = raw_login($ip, application_name => 'h-idle');
		next unless $c;
		if ($c->{startup}{pid} == $busy[0]{startup}{pid}) { $idle = $c; last; }
		$c->terminate;
	}
	$_->send_query('SELECT pg_sleep(3)') for @busy;
	usleep(200_000);
	my @waiting = map { PoolTest::Raw->new(port => $ip) } 1 .. 4;
	$_->send_startup(user => 'app', database => 'app', application_name => 'h-wait') for @waiting;
	usleep(300_000);
	my $victim_pid = $busy[0]{startup}{pid};
	is($iso->safe_psql('postgres', "SELECT pg_terminate_backend($victim_pid)"), 't',
		'(h) pg_terminate_backend() of a busy executor');
	my $r0 = $busy[0]->read_result(10);
	is(PoolTest::Raw::sqlstate($r0), '57P01', '(h) the running session gets 57P01');
	SKIP:
	{
		skip 'no idle session on that executor', 1 unless $idle;
		my $ri = $idle->read_result(10);
		is(PoolTest::Raw::sqlstate($ri), '57P01',
			'(h) an idle session of the terminated executor gets 57P01 too, as from core');
		$idle->close;
	}
	my ($served, $told, $dropped) = (0, 0, 0);
	for my $w (@waiting)
	{
		my $r = $w->read_startup_response(15);
		if ($r->{ok}) { $served++; $w->terminate; }
		elsif (@{ $r->{errors} }) { $told++; $w->close; }
		else { $dropped++; $w->close; }
	}
	note "(h) waiting clients: $served served, $told got an ErrorResponse, $dropped dropped with a bare EOF";
	is($dropped, 0,
		'(h) no client waiting for its session to start was dropped without an ErrorResponse when its executor was terminated');
	my $r1 = $busy[1]->read_result(10);
	ok($r1->{complete}, '(h) the other executor\'s session is unaffected');
	$busy[1]->terminate;
	pool_serves_ok($iso, '(h) the pool serves');
	check_no_crash($iso, '(h) executor terminated with waiting clients');
}

$iso->stop;
check_no_crash($iso, 'isolation node after stop');
}
note sprintf('015 took %.0f s', time() - $T0);

done_testing();
