
# Copyright (c) builtin_pool authors
#
# CancelRequest on the pool port: routed to the session's executor with the
# session's own key (57014 quickly); a wrong key, a wrong pid, another
# session's key, or the pool session's key sent to the main port cancel
# nothing; psql's own cancel (SIGINT) works through the pool.  A key of 0
# and bursts of bogus cancels cancel nothing (counted in cancels_unmatched);
# pg_cancel_backend() on the executor still cancels; a session moved to
# another executor is cancelled there by the pid and key it was given.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = pool_node('cancel', size => 1);
$node->start;
setup_app($node);
my $pp = $node->pool_port;
my $main_sock = $node->host . '/.s.PGSQL.' . $node->port;

pool_serves_ok($node);

sub new_session
{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->login(user => 'app', database => 'app') or die 'login failed';
	return $c;
}

# wait until the executor PID sleeps in pg_sleep() (on NODE, default $node)
sub wait_sleeping
{
	my ($pid, $on) = @_;
	$on //= $node;
	return wait_until(
		sub {
			$on->safe_psql('postgres',
				"SELECT wait_event FROM pg_stat_activity WHERE pid = $pid") eq
			  'PgSleep';
		},
		10);
}

my $cancels0 = $node->safe_psql('postgres', 'SELECT cancels FROM pool_listener_stats()');

my $A = new_session();
my ($pid, $key) = ($A->{startup}{pid}, $A->{startup}{key});
ok($pid && defined $key, "BackendKeyData: pid $pid");

###########################################################################
# the right key cancels, quickly
###########################################################################
{
	$A->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($pid), 'pg_sleep(30) running');
	my $t0 = time();
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $key);
	my $r = $A->read_result(10);
	my $dt = time() - $t0;
	is(PoolTest::Raw::sqlstate($r), '57014', 'query canceled: 57014');
	like($r->{errors}[0]{M} // '', qr/canceling statement due to user request/,
		'cancel message');
	cmp_ok($dt, '<', 5, sprintf('canceled quickly (%.2fs)', $dt));
	ok($r->{complete}, 'ReadyForQuery after the cancel');
	is($A->query_value('SELECT 1'), '1', 'session usable after the cancel');
}

# cancel inside an explicit transaction: the block fails, ROLLBACK works
{
	$A->query('BEGIN');
	$A->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($pid), 'pg_sleep(30) running in a transaction block');
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $key);
	my $r = $A->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014', 'canceled in a block');
	is($r->{status}, 'E', 'transaction block failed');
	$r = $A->query('ROLLBACK');
	is($r->{status}, 'I', 'ROLLBACK');
}

###########################################################################
# wrong keys, wrong pids, the main port
###########################################################################
for my $case (
	[ 'wrong key', $pp, $pid, ($key ^ 1) & 0xffffffff ],
	[ 'wrong pid', $pp, $pid + 1, $key ],
	[ 'the pool key on the main port', undef, $pid, $key ])
{
	my ($name, $port, $cpid, $ckey) = @$case;
	$A->send_query('SELECT pg_sleep(3)');
	ok(wait_sleeping($pid), "$name: pg_sleep(3) running");
	my $t0 = time();
	if (defined $port)
	{
		PoolTest::Raw->cancel(port => $port, pid => $cpid, key => $ckey);
	}
	else
	{
		PoolTest::Raw->cancel(path => $main_sock, pid => $cpid, key => $ckey);
	}
	my $r = $A->read_result(15);
	ok($r->{complete}, "$name: query completed");
	is(scalar @{ $r->{errors} }, 0, "$name: not canceled");
	is_deeply($r->{tags}, ['SELECT 1'], "$name: normal completion");
	cmp_ok(time() - $t0, '>=', 1.5, "$name: ran its course");
}

# cancel while idle in transaction: ignored, as in core
{
	$A->query('BEGIN; SELECT 1');
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $key);
	usleep(300_000);
	my $r = $A->query('SELECT 2');
	is_deeply($r->{rows}, [ ['2'] ], 'cancel while idle in transaction is ignored');
	$r = $A->query('COMMIT');
	is($r->{status}, 'I', 'COMMIT');
}

# a storm of bogus cancels
{
	$A->send_query('SELECT pg_sleep(2)');
	ok(wait_sleeping($pid), 'pg_sleep(2) running');
	for my $i (1 .. 30)
	{
		my $k;
		do { $k = int(rand(2**32)) } while $k == $key;
		PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $k);
	}
	my $r = $A->read_result(15);
	is(scalar @{ $r->{errors} }, 0, '30 bogus cancels cancel nothing');
}

###########################################################################
# a key of 0 is no key: it cancels nothing (it used to cancel whatever ran)
###########################################################################
{
	my $unmatched = sub {
		my ($rc, $out) = $node->psql('postgres',
			'SELECT cancels_unmatched FROM pool_listener_stats()');
		return $rc == 0 ? $out : -1;
	};
	my $unmatched0 = $unmatched->();
	$A->send_query('SELECT pg_sleep(2)');
	ok(wait_sleeping($pid), 'key 0: pg_sleep(2) running');
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => 0);
	my $r = $A->read_result(15);
	ok($r->{complete}, 'key 0: query completed');
	is(scalar @{ $r->{errors} }, 0, 'key 0: not canceled');
	cmp_ok($unmatched->(), '>', $unmatched0,
		'pool_listener_stats().cancels_unmatched counts it');
}

# bogus cancels arriving together for one executor (one burst, no waiting
# between them) cancel nothing, and the one right key among them does
{
	my $burst = sub {
		my ($with_right_key) = @_;
		my @socks;
		for my $i (1 .. 40)
		{
			push @socks, PoolTest::Raw->new(port => $pp);
		}
		for my $i (0 .. $#socks)
		{
			my $k;
			do { $k = int(rand(2**32)) } while $k == $key;
			$k = 0 if $i % 4 == 0;
			$k = $key if $with_right_key && $i == 20;
			$socks[$i]->send_bytes(pack('N N N N', 16, PoolTest::Raw::CANCEL_CODE, $pid, $k));
		}
		$_->close for @socks;
	};
	$A->send_query('SELECT pg_sleep(2)');
	ok(wait_sleeping($pid), 'burst: pg_sleep(2) running');
	$burst->(0);
	my $r = $A->read_result(15);
	is(scalar @{ $r->{errors} }, 0, 'a burst of 40 bogus cancels cancels nothing');

	$A->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($pid), 'burst: pg_sleep(30) running');
	my $t0 = time();
	$burst->(1);
	$r = $A->read_result(15);
	is(PoolTest::Raw::sqlstate($r), '57014',
		'the right key amid a burst of bogus ones cancels');
	cmp_ok(time() - $t0, '<', 5, 'and quickly');
}

# pg_cancel_backend() on the executor still cancels the running statement
{
	$A->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($pid), 'pg_cancel_backend: pg_sleep(30) running');
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my $r = $A->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014', 'pg_cancel_backend() cancels');
	is($A->query_value('SELECT 1'), '1', 'session usable after it');
}

###########################################################################
# two sessions on one executor: B's key never cancels A
###########################################################################
my $B = new_session();
is($B->{startup}{pid}, $pid, 'B on the same executor');
isnt($B->{startup}{key}, $key, 'B has its own key');
{
	# B idle
	$A->send_query('SELECT pg_sleep(3)');
	ok(wait_sleeping($pid), 'A sleeps');
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $B->{startup}{key});
	my $r = $A->read_result(15);
	ok($r->{complete} && !@{ $r->{errors} }, "B's key (B idle) does not cancel A");
	$r = $B->query('SELECT 1');
	is_deeply($r->{rows}, [ ['1'] ], 'B: a cancel received while idle is ignored');

	# B queued behind A
	$A->send_query('SELECT pg_sleep(3)');
	ok(wait_sleeping($pid), 'A sleeps again');
	$B->send_query('SELECT 1');
	usleep(200_000);
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $B->{startup}{key});
	$r = $A->read_result(15);
	ok($r->{complete} && !@{ $r->{errors} }, "B's key (B queued) does not cancel A");
	my $rb = $B->read_result(15);
	ok($rb->{complete}, 'B answered');
	ok( (!@{ $rb->{errors} } && $rb->{rows}[0][0] eq '1')
		  || PoolTest::Raw::sqlstate($rb) eq '57014',
		'B: either served or canceled itself');

	# and A's key while A runs cancels A only
	$A->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($pid), 'A sleeps (30)');
	$B->send_query('SELECT 7');
	PoolTest::Raw->cancel(port => $pp, pid => $pid, key => $key);
	$r = $A->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014', 'A canceled with its key');
	$rb = $B->read_result(10);
	is_deeply($rb->{rows}, [ ['7'] ], 'queued B not canceled by A\'s cancel');
}
$A->terminate;
$B->terminate;

###########################################################################
# psql's own cancel (SIGINT) through the pool, TCP and Unix socket
###########################################################################
for my $unix (0, 1)
{
	my $name = $unix ? 'Unix socket' : 'TCP';
	my ($out, $err) = ('', '');
	my @cmd = ('psql', '-X', '-d', $node->pool_connstr('app', unix => $unix),
		'-c', 'SELECT pg_sleep(30)');
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
		IPC::Run::timeout(40));
	ok( wait_until(
			sub {
				$node->safe_psql('postgres',
					q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'builtin_pool executor' AND wait_event = 'PgSleep'}
				) eq '1';
			},
			10),
		"$name: psql's pg_sleep running");
	my $t0 = time();
	$h->signal('INT');
	eval { $h->finish; };
	my $dt = time() - $t0;
	like($err, qr/canceling statement due to user request/, "$name: psql canceled with SIGINT");
	cmp_ok($dt, '<', 5, "$name: psql returned quickly");
	is($h->result(0), 1, "$name: psql exit code 1");
}

cmp_ok($node->safe_psql('postgres', 'SELECT cancels FROM pool_listener_stats()'),
	'>', $cancels0, 'pool_listener_stats().cancels increased');

is($node->pool_safe_psql('app', 'SELECT 1'), '1', 'pool still serves');
check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

###########################################################################
# a session moved to another executor (its neighbour pinned theirs) is
# still cancelled by the pid and key it was given, and only it
###########################################################################
{
	my $n2 = pool_node('cancel_move', size => 2);
	$n2->start;
	setup_app($n2);
	my $pp2 = $n2->pool_port;
	my @s;
	for (1 .. 3)
	{
		my $c = PoolTest::Raw->new(port => $pp2);
		$c->login(user => 'app', database => 'app') or die 'login failed';
		push @s, $c;
	}
	my %by;
	push @{ $by{ $_->{startup}{pid} } }, $_ for @s;
	my ($epid) = grep { @{ $by{$_} } >= 2 } keys %by;
	ok(defined $epid, 'two sessions share an executor');
	my ($X, $Y) = @{ $by{$epid} };
	$Y->query('CREATE TEMP TABLE pin_me (x int)');
	ok( wait_until(sub { ($X->query_value('SELECT pg_backend_pid()') // '') ne $epid }, 20),
		'X moved off the executor Y pinned');
	my $now = $X->query_value('SELECT pg_backend_pid()');

	# X's key (with the pid X was given) cancels X where it runs now
	$X->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($now, $n2), 'moved X sleeps on its new executor');
	$Y->send_query('SELECT pg_sleep(2)');
	my $t0 = time();
	PoolTest::Raw->cancel(port => $pp2, pid => $X->{startup}{pid}, key => $X->{startup}{key});
	my $r = $X->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014', "moved X canceled by its own pid and key");
	cmp_ok(time() - $t0, '<', 5, 'quickly');
	$r = $Y->read_result(15);
	ok($r->{complete} && !@{ $r->{errors} }, "pinned Y, on the pid X was given, not canceled");
	$_->terminate for @s;
	check_no_crash($n2);
	$n2->stop;
}

###########################################################################
# the executor whose pid a session was given has exited (it was started
# while the pool's only executor was pinned, and retired when the pin ended,
# its session moved back): the session's pid and key still cancel it where
# it runs
###########################################################################
{
	my $n3 = pool_node('cancel_retired', size => 1);
	$n3->start;
	setup_app($n3);
	my $pp3 = $n3->pool_port;
	my $login = sub {
		my $c = PoolTest::Raw->new(port => $pp3);
		$c->login(user => 'app', database => 'app') or die 'login failed';
		return $c;
	};
	my $Y = $login->();
	$Y->query('CREATE TEMP TABLE pin_me (x int)');
	my $X = $login->();
	my $given = $X->{startup}{pid};
	isnt($given, $Y->{startup}{pid}, 'X logs in on an executor started beside the pinned one');
	$Y->terminate;
	ok( wait_until(sub {
				$n3->safe_psql('postgres',
					"SELECT count(*) FROM pg_stat_activity WHERE pid = $given") eq '0';
			}, 30),
		'the executor X was given retired once the pin ended');
	my $now = $X->query_value('SELECT pg_backend_pid()');
	isnt($now, $given, "X runs on another executor ($now)");
	$X->send_query('SELECT pg_sleep(30)');
	ok(wait_sleeping($now, $n3), 'X sleeps there');
	PoolTest::Raw->cancel(port => $pp3, pid => $given, key => $X->{startup}{key});
	my $r = $X->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014',
		'X canceled by the pid of its retired executor and its key');
	$X->terminate;
	check_no_crash($n3);
	$n3->stop;
}

done_testing();
