# Copyright (c) builtin_pool authors
#
# Pre-login work never blocks the listener.  While a session holds LOCK
# pg_authid in an open transaction, a pool login that needs the catalogs
# waits without freezing the listener: other clients are answered, the
# login completes once the lock goes, or ends at authentication_timeout
# with core's 57014.  The smart shutdown guard reconnecting while its
# backend waits for a lock (LOCK pg_db_role_setting, which a new backend
# reads and the listener does not) freezes nothing either: the attempt is
# given up after 5 s and made again once the lock is gone.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PoolTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = pool_node('prelogin', size => 2,
	conf => "authentication_timeout = '4s'\n");
$node->start;
setup_app($node);
pool_serves_ok($node);

# the smart shutdown guard connects within TIMEOUT seconds
sub guard_connected
{
	my ($timeout) = @_;
	return wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM pg_stat_activity
				  WHERE application_name = 'builtin_pool smart shutdown guard'}) eq '1';
		},
		$timeout);
}
ok(guard_connected(15), 'the smart shutdown guard is connected');

# how long the listener takes to answer an SSLRequest ('N': no TLS here)
sub ssl_answer_time
{
	my $t0 = time();
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	$c->send_bytes(pack('N N', 8, PoolTest::Raw::SSL_CODE));
	my $b = $c->read_byte(10);
	$c->close;
	return (defined $b && $b eq 'N') ? time() - $t0 : 99;
}

# a role the listener has never looked up: its syscache has no entry
$node->safe_psql('postgres', 'CREATE ROLE fresh1 LOGIN; CREATE ROLE fresh2 LOGIN; CREATE ROLE fresh3 LOGIN');
my $established = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
ok($established->login(user => 'app', database => 'app'), 'a session established before the lock');

my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK pg_authid');

# a login while the lock is held: it waits, and nobody else does
{
	my $a = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	my $t0 = time();
	$a->send_startup(user => 'fresh1', database => 'app');
	sleep(0.5);
	my $el = ssl_answer_time();
	cmp_ok($el, '<', 1, 'the listener answers another client while a login waits for pg_authid')
	  or diag("took ${el}s");
	is($established->query_value('SELECT 42'), '42', 'an established session is served');

	my $r = $a->read_startup_response(10);
	my $waited = time() - $t0;
	ok(!$r->{ok}, 'the waiting login is not admitted while the lock is held');
	is(PoolTest::Raw::sqlstate($r), '57014', 'it ends at authentication_timeout with 57014');
	is($r->{errors}[0]{M}, 'canceling authentication due to timeout', "with core's message");
	cmp_ok($waited, '>=', 3.5, 'not before authentication_timeout');
	$a->close;
}

# a login waiting when the lock goes is admitted
{
	my $a = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	$a->send_startup(user => 'fresh2', database => 'app');
	sleep(1);
	cmp_ok(ssl_answer_time(), '<', 1, 'the listener still answers');
	$locker->query_safe('COMMIT');
	my $r = $a->read_startup_response(10);
	ok($r->{ok}, 'the waiting login is admitted once the lock is released');
	is($a->query_value('SELECT current_user'), 'fresh2', 'as itself');
	$a->close;
}

# the guard reconnects while its backend waits for a lock
{
	my $off = -s $node->logfile;
	$locker->query_safe('BEGIN');
	$locker->query_safe('LOCK pg_db_role_setting');
	$locker->query_safe(
		q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		  WHERE application_name = 'builtin_pool smart shutdown guard'});
	my $worst = 0;
	my $t0 = time();
	while (time() - $t0 < 17)
	{
		my $el = ssl_answer_time();
		$worst = $el if $el > $worst;
		sleep(0.3);
	}
	cmp_ok($worst, '<', 1, 'the listener answers throughout while the guard reconnects')
	  or diag("worst answer took ${worst}s");
	like(substr(slurp_file($node->logfile), $off),
		qr/smart shutdown guard could not connect: timeout expired/,
		'the blocked attempt was given up, and logged');
	$locker->query_safe('COMMIT');
	ok(guard_connected(30), 'the guard is connected again after the lock is released');
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	ok($c->login(user => 'fresh3', database => 'app'), 'a new role logs in after the lock');
	$c->close;
}

$locker->quit;
$established->close;
check_no_crash($node);
$node->stop;
done_testing();
