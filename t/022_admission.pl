# Copyright (c) builtin_pool authors
#
# Admission rules of the main port on the pool port, with core's messages
# and SQLSTATEs: ALTER ROLE ... CONNECTION LIMIT and ALTER DATABASE ...
# CONNECTION LIMIT (pool sessions and the main port's backends of the role
# or database counted together, on both ports; superusers exempt), ALLOW_CONNECTIONS
# false, NOLOGIN, VALID UNTIL (which, as in core, concerns passwords only).
# Clients that have not finished authentication are capped in total
# (builtin_pool.max_pending_connections) and per client address
# (builtin_pool.max_pending_per_address): a client over a cap gets 53300
# and is closed, the others carry on.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IO::Socket::INET;
use PoolTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = pool_node('admission', size => 2, max_worker_processes => 30,
	conf => "builtin_pool.max_pending_connections = 5\n"
	  . "builtin_pool.max_pending_per_address = 3\n"
	  . "authentication_timeout = '30s'\n");
my $pp = $node->pool_port;
my $mp = $node->port;

open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $fh <<'EOF';
local all all trust
host all pw_expired 127.0.0.0/8 password
host all all 127.0.0.0/8 trust
EOF
close $fh;

$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE lim LOGIN CONNECTION LIMIT 2;
	CREATE ROLE suplim LOGIN SUPERUSER CONNECTION LIMIT 0;
	CREATE ROLE nologin_r NOLOGIN;
	CREATE ROLE trust_expired LOGIN PASSWORD 'x' VALID UNTIL '2000-01-01';
	CREATE ROLE pw_expired LOGIN PASSWORD 'x' VALID UNTIL '2000-01-01';
	CREATE DATABASE limdb CONNECTION LIMIT 1;
	CREATE DATABASE closeddb;
	ALTER DATABASE closeddb ALLOW_CONNECTIONS false;
});
pool_serves_ok($node);

sub raw_login
{
	my ($user, $db, %o) = @_;
	my $c = PoolTest::Raw->new(port => $o{port} // $pp, timeout => 10);
	$c->login(user => $user, database => $db // 'app');
	return $c;
}

# refused_ok(C, SQLSTATE, MESSAGE, NAME)
sub refused_ok
{
	my ($c, $code, $msg, $name) = @_;
	my $r = $c->{startup};
	ok(!$r->{ok}, "$name: refused");
	is(PoolTest::Raw::sqlstate($r), $code, "$name: $code");
	is($r->{errors}[0]{M}, $msg, "$name: core's message");
	is($r->{errors}[0]{S}, 'FATAL', "$name: FATAL");
	$c->close;
}

###########################################################################
# role CONNECTION LIMIT: pool sessions and main port backends together
###########################################################################
{
	my $a = raw_login('lim');
	ok($a->{startup}{ok}, 'lim: 1st pool session');
	my $b = raw_login('lim');
	ok($b->{startup}{ok}, 'lim: 2nd pool session');
	refused_ok(raw_login('lim'), '53300', 'too many connections for role "lim"',
		'lim: 3rd pool session');
	$b->terminate;
	ok( wait_until(sub { my $c = raw_login('lim'); my $ok = $c->{startup}{ok}; $c->close; $ok }, 10),
		'lim: a session left, one more may come');

	# one main port backend of lim plus one pool session fill the limit
	$a->terminate;
	ok(wait_until(sub { $node->safe_psql('postgres',
		q{SELECT sum(sessions) FROM pool_pools WHERE role = 'lim'}) eq '0' }, 10),
		'lim: no pool session left');
	my $bg = $node->background_psql('app', extra_params => [ '-U', 'lim' ]);
	$bg->query_safe('SELECT 1');
	$a = raw_login('lim');
	ok($a->{startup}{ok}, 'lim: one main port backend and one pool session');
	refused_ok(raw_login('lim'), '53300', 'too many connections for role "lim"',
		'lim: the main port backend counts');
	refused_ok(raw_login('lim', 'app', port => $mp), '53300', 'too many connections for role "lim"',
		'lim: and the main port counts the pool session');
	$bg->quit;
	$a->terminate;

	my @s = map { raw_login('suplim') } 1 .. 3;
	is(scalar(grep { $_->{startup}{ok} } @s), 3, 'a superuser is not held to its CONNECTION LIMIT');
	$_->close for @s;
}

###########################################################################
# database CONNECTION LIMIT and ALLOW_CONNECTIONS
###########################################################################
{
	my $a = raw_login('app', 'limdb');
	ok($a->{startup}{ok}, 'limdb: 1st pool session');
	refused_ok(raw_login('app', 'limdb'), '53300', 'too many connections for database "limdb"',
		'limdb: 2nd pool session');
	refused_ok(raw_login('app', 'limdb', port => $mp), '53300',
		'too many connections for database "limdb"', 'limdb: the main port counts the pool session');
	my $s = raw_login('suplim', 'limdb');
	ok($s->{startup}{ok}, 'limdb: a superuser is not held to it');
	$s->close;
	$a->terminate;
	ok( wait_until(sub { my $c = raw_login('app', 'limdb'); my $ok = $c->{startup}{ok}; $c->close; $ok }, 10),
		'limdb: a session left, one more may come');

	refused_ok(raw_login('app', 'closeddb'), '55000',
		'database "closeddb" is not currently accepting connections', 'ALLOW_CONNECTIONS false');
	refused_ok(raw_login('suplim', 'closeddb'), '55000',
		'database "closeddb" is not currently accepting connections',
		'ALLOW_CONNECTIONS false, superuser too');
}

###########################################################################
# NOLOGIN, VALID UNTIL
###########################################################################
{
	refused_ok(raw_login('nologin_r'), '28000', 'role "nologin_r" is not permitted to log in',
		'NOLOGIN');

	# VALID UNTIL limits the password, not the role: as on the main port
	my $c = raw_login('trust_expired');
	ok($c->{startup}{ok}, 'VALID UNTIL past, trust line: admitted, as on the main port');
	$c->close;
	$node->connect_ok("host=127.0.0.1 port=$mp dbname=app user=trust_expired",
		'VALID UNTIL past, trust line, main port: admitted');
	for my $port ($pp, $mp)
	{
		$node->connect_fails(
			"host=127.0.0.1 port=$port dbname=app user=pw_expired password=x",
			'VALID UNTIL past, password line: refused on port ' . ($port == $pp ? 'pool' : 'main'),
			expected_stderr => qr/FATAL:  password authentication failed for user "pw_expired"/);
	}
}

###########################################################################
# clients that have not finished authentication are capped
###########################################################################

# silent(FROM): a TCP connection from address FROM that sends nothing
sub silent
{
	my ($from) = @_;
	my $s = IO::Socket::INET->new(
		PeerHost => '127.0.0.1', PeerPort => $pp, LocalAddr => $from,
		Proto => 'tcp', Timeout => 5)
	  or die "cannot connect from $from: $!";
	return $s;
}

# login_from(FROM): a raw login from address FROM; its startup response
sub login_from
{
	my ($from) = @_;
	my $c = bless { sock => silent($from), buf => '', eof => 0, timed_out => 0,
		params => {}, timeout => 10 }, 'PoolTest::Raw';
	$c->login(user => 'app', database => 'app');
	return $c;
}

# the listener has seen N connections more than BASE
sub accepted
{
	return $node->safe_psql('postgres', 'SELECT accepted FROM pool_listener_stats()');
}

{
	my $base = accepted();
	my @held = map { silent('127.0.0.1') } 1 .. 3;
	ok(wait_until(sub { accepted() >= $base + 3 }, 10), 'three silent clients from 127.0.0.1');

	my $c = login_from('127.0.0.1');
	refused_ok($c, '53300', 'sorry, too many clients already',
		'a 4th unauthenticated client from 127.0.0.1');
	$c = login_from('127.0.0.2');
	ok($c->{startup}{ok}, 'a client from 127.0.0.2 logs in meanwhile');
	$c->close;

	push @held, silent('127.0.0.2'), silent('127.0.0.2');
	ok(wait_until(sub { accepted() >= $base + 7 }, 10), 'two silent clients from 127.0.0.2');
	$c = login_from('127.0.0.3');
	refused_ok($c, '53300', 'sorry, too many clients already',
		'a 6th unauthenticated client, from 127.0.0.3: over the total');

	# authenticated sessions do not count
	close($_) for splice(@held, 0, 2);
	my @ok;
	ok( wait_until(sub { my $x = login_from('127.0.0.1'); push @ok, $x if $x->{startup}{ok}; @ok >= 1 }, 10),
		'once two left, 127.0.0.1 logs in again');
	push @ok, login_from('127.0.0.1') for 1 .. 4;
	is(scalar(grep { $_->{startup}{ok} } @ok), 5, 'five sessions from 127.0.0.1: only pending clients count');
	$_->close for @ok;
	close($_) for @held;
	like(slurp_file($node->logfile), qr/builtin_pool\.max_pending_per_address/,
		'the log names the setting');
}

is($node->pool_safe_psql('app', 'SELECT 1'), '1', 'the pool serves');
check_no_crash($node);
$node->stop;
done_testing();
