# Copyright (c) builtin_pool authors
#
# Shutdown modes through the pool, as without it: a smart shutdown waits for
# pooled sessions (refusing new ones with 57P03), a fast one ends them.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PoolTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IPC::Run;

my $node = pool_node('shutdown', size => 2);
$node->start;
setup_app($node);

ok( wait_until(sub {
	$node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'builtin_pool smart shutdown guard'}
	) eq '1' }, 15),
	'the smart shutdown guard is connected');

# smart: a running pooled session finishes, new ones are refused meanwhile
my $a = PoolTest::Raw->new(port => $node->pool_port, timeout => 20);
ok($a->login(user => 'app', database => 'app'), 'A logs in through the pool');
$a->send_query('SELECT pg_sleep(4), 42');
sleep(0.5);

my $t0 = time();
my ($out, $err) = ('', '');
my $stop = IPC::Run::start(
	[ 'pg_ctl', '-D', $node->data_dir, '-m', 'smart', '-w', '-t', '60', 'stop' ],
	'>', \$out, '2>', \$err);

my $refused = wait_until(sub {
	my $b = PoolTest::Raw->new(port => $node->pool_port, timeout => 5);
	$b->login(user => 'app', database => 'app');
	my $e = $b->{startup}{errors} && @{ $b->{startup}{errors} } ? $b->{startup}{errors}[0] : undef;
	$b->close;
	return $e && ($e->{C} // '') eq '57P03';
}, 10, 0.3);
ok($refused, 'a new pool client is refused with 57P03 during the smart shutdown');

my $r = $a->read_result(20);
ok($r->{complete}, "A's statement completes during the smart shutdown");
is($r->{rows}[0][1], '42', 'with its result');
$a->terminate;

$stop->finish;
ok(time() - $t0 >= 3, 'the smart shutdown waited for the pooled session');
like($out . $err, qr/server stopped/, 'and then completed');
$node->_update_pid(0);		# stopped behind Cluster's back

# fast: pooled sessions end at once
$node->start;
pool_serves_ok($node, 'the pool port is open again');	# the listener starts after pg_ctl returns
$a = PoolTest::Raw->new(port => $node->pool_port, timeout => 20);
ok($a->login(user => 'app', database => 'app'), 'A logs in again');
$a->send_query('SELECT pg_sleep(30)');
sleep(0.5);
$t0 = time();
$node->stop('fast');
ok(time() - $t0 < 15, 'a fast shutdown does not wait for the pooled session');
$r = $a->read_result(5);
ok(!$r->{complete}, "A's statement was ended");
is(PoolTest::Raw::sqlstate($r), '57P01', 'with 57P01 (admin shutdown)');

$node->start;
is($node->pool_safe_psql('app', 'SELECT 1'), '1', 'the pool serves after a restart');
check_no_crash($node);
$node->stop;
done_testing();
