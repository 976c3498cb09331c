
# Copyright (c) builtin_pool authors
#
# The pool port before a session starts, on raw sockets: malformed startup
# packets (bad lengths, truncated, missing terminator, garbage), protocol
# versions (2.0 refused, 3.x minor > 0 negotiated), missing user, unknown
# database / role, replication refused, SSLRequest and GSSENCRequest
# answered 'N', startup parameters, stalled clients (they block nobody and
# are closed after authentication_timeout).  After each case the pool still
# serves psql, and the server log never shows a crash.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = pool_node('startup', size => 2,
	conf => "authentication_timeout = '2s'\n");
$node->start;
setup_app($node);
my $pp = $node->pool_port;

$node->safe_psql('postgres', q{
	CREATE ROLE nologin_role NOLOGIN;
	CREATE DATABASE noconn;
	REVOKE CONNECT ON DATABASE noconn FROM PUBLIC;
	CREATE DATABASE closeddb;
	ALTER DATABASE closeddb ALLOW_CONNECTIONS false;
});

sub pool_ok
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($ret, $out, $err) = $node->pool_psql('app', 'SELECT 1', timeout => 20);
	is("$ret/$out", '0/1', "$name: pool still serves psql")
	  or diag("psql stderr: $err");
	return;
}

pool_serves_ok($node);

my $rejected0 = $node->safe_psql('postgres', 'SELECT rejected FROM pool_listener_stats()');

# expect_fatal(NAME, BYTES, SQLSTATE, MESSAGE_RE): sends BYTES on a new
# connection, expects one FATAL ErrorResponse with that SQLSTATE, then EOF.
sub expect_fatal
{
	my ($name, $bytes, $code, $msg_re) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes($bytes);
	my $r = $c->read_startup_response(10);
	my $e = $r->{errors}[0] // {};
	unlike($r->{types}, qr/Z/, "$name: no session started");
	is($e->{S} // '(no ErrorResponse: ' . ($r->{eof} ? 'EOF' : 'timeout') . ')',
		'FATAL', "$name: FATAL ErrorResponse");
	is($e->{C} // '', $code, "$name: SQLSTATE $code");
	like($e->{M} // '', $msg_re, "$name: message") if $msg_re;
	ok($c->wait_eof(5), "$name: connection closed after the error");
	$c->close;
	pool_ok($name);
	return $e;
}

# expect_closed(NAME, BYTES [, CLOSE_FIRST]): anything may come back but no
# session; the connection ends (or we close it) and nothing breaks.
sub expect_no_session
{
	my ($name, $bytes, $close_now) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes($bytes);
	if ($close_now)
	{
		$c->close;
		pass("$name: sent and closed");
	}
	else
	{
		my $r = $c->read_startup_response(10);
		unlike($r->{types}, qr/Z/, "$name: no session started");
		if (@{ $r->{errors} })
		{
			is($r->{errors}[0]{S}, 'FATAL', "$name: FATAL if anything");
		}
		ok($r->{eof} || $c->wait_eof(8), "$name: connection closed");
		$c->close;
	}
	pool_ok($name);
	return;
}

my $P3 = 196608;
sub pkt { return PoolTest::Raw::startup_packet(@_); }

###########################################################################
# Malformed packets
###########################################################################

expect_fatal('length 4', pack('N', 4), '08P01', qr/invalid length of startup packet/);
expect_fatal('length 0', pack('N', 0), '08P01', qr/invalid length of startup packet/);
expect_fatal('length 7', pack('N a3', 7, 'abc'), '08P01', qr/invalid length of startup packet/);
# core allows 10000 bytes after the length word: 10004 in all
expect_fatal('length 10005', pack('N N', 10005, $P3), '08P01',
	qr/invalid length of startup packet/);
expect_fatal('length 2^31', pack('N N', 0x7fffffff, $P3), '08P01',
	qr/invalid length of startup packet/);

expect_no_session('truncated packet then close',
	pack('N N', 50, $P3) . "user\0ap", 1);

{
	my $body = pack('N', $P3) . "user\0app\0database\0app\0";    # no final \0
	expect_fatal('no terminator', pack('N', 4 + length $body) . $body,
		'08P01', qr/invalid startup packet layout/);
	$body = pack('N', $P3) . "user\0app";    # unterminated value
	expect_fatal('unterminated value', pack('N', 4 + length $body) . $body,
		'08P01', qr/invalid startup packet layout/);
	$body = pack('N', $P3) . "user\0app\0database\0";    # name without value
	expect_fatal('name without value', pack('N', 4 + length $body) . $body,
		'08P01', qr/invalid startup packet layout/);
}

###########################################################################
# Protocol versions
###########################################################################

expect_fatal('protocol 2.0', pkt(_version => 2 << 16, user => 'app', database => 'app'),
	'0A000', qr/unsupported frontend protocol/);
expect_fatal('protocol 4.0', pkt(_version => 4 << 16, user => 'app', database => 'app'),
	'0A000', qr/unsupported frontend protocol/);

{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes(
		pkt(_version => (3 << 16) | 99, user => 'app', database => 'app',
			'_pq_.foo' => 'bar'));
	my $r = $c->read_startup_response(10);
	like($r->{types}, qr/^vR/, 'protocol 3.99: NegotiateProtocolVersion first, then authentication');
	# the doc says "newest minor version"; PG15 core sends PG_PROTOCOL_LATEST
	# (3.0 as a whole version word): either way its minor part is 0
	is(($r->{negotiate}{minor} // -1) & 0xffff, 0, 'protocol 3.99: server offers minor 0');
	is_deeply($r->{negotiate}{options}, ['_pq_.foo'],
		'protocol 3.99: unrecognized _pq_ option listed');
	is_deeply($r->{auth}, [0], 'protocol 3.99: AuthenticationOk');
	ok($r->{ok}, 'protocol 3.99: ReadyForQuery');
	is($c->query_value('SELECT 99'), '99', 'protocol 3.99 session works');
	$c->terminate;
}
{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes(pkt(user => 'app', database => 'app', '_pq_.bar' => '1'));
	my $r = $c->read_startup_response(10);
	like($r->{types}, qr/^vR/, 'protocol 3.0 with _pq_ option: NegotiateProtocolVersion');
	is_deeply($r->{negotiate}{options}, ['_pq_.bar'], 'option listed');
	ok($r->{ok}, 'session starts');
	$c->terminate;
}

###########################################################################
# User, database, role
###########################################################################

expect_fatal('missing user', pkt(database => 'app'), '28000',
	qr/no PostgreSQL user name specified/);
expect_fatal('empty user', pkt(user => '', database => 'app'), '28000',
	qr/no PostgreSQL user name specified/);
expect_fatal('unknown database', pkt(user => 'app', database => 'nosuchdb'),
	'3D000', qr/database "nosuchdb" does not exist/);
expect_fatal('unknown role', pkt(user => 'nosuchrole', database => 'app'),
	'28000', qr/role "nosuchrole" does not exist/);
expect_fatal('role without LOGIN', pkt(user => 'nologin_role', database => 'app'),
	'28000', qr/not permitted to log in/);
expect_fatal('database without CONNECT privilege',
	pkt(user => 'app', database => 'noconn'),
	'42501', qr/permission denied for database/);
expect_fatal('database not accepting connections',
	pkt(user => 'app', database => 'closeddb'),
	'55000', qr/not currently accepting connections/);
expect_fatal('template0', pkt(user => 'app', database => 'template0'),
	'55000', qr/not currently accepting connections/);
expect_fatal('replication=true',
	pkt(user => 'app', database => 'app', replication => 'true'),
	'0A000');
expect_fatal('replication=database',
	pkt(user => 'app', database => 'app', replication => 'database'),
	'0A000');
expect_fatal('replication=bogus',
	pkt(user => 'app', database => 'app', replication => 'bogus'),
	'22023');

# database defaults to the user name: role app, database app
{
	my $c = PoolTest::Raw->new(port => $pp);
	ok($c->login(user => 'app'), 'database defaults to the user name');
	is($c->query_value('SELECT current_database()'), 'app', 'connected to app');
	$c->terminate;
}

###########################################################################
# Startup parameters
###########################################################################
{
	my $c = PoolTest::Raw->new(port => $pp);
	ok( $c->login(
			user => 'app',
			database => 'app',
			options => '-c work_mem=3MB --statement_timeout=45s',
			application_name => 'startup_app',
			DateStyle => 'German',
			'myapp.setting' => 'custom'),
		'startup with options and parameters');
	is($c->{params}{application_name}, 'startup_app', 'application_name reported');
	is($c->{params}{DateStyle}, 'German, DMY', 'DateStyle reported');
	is($c->query_value('SHOW work_mem'), '3MB', 'options -c applied');
	is($c->query_value('SHOW statement_timeout'), '45s', 'options --name=value applied');
	is($c->query_value(q{SELECT '2024-01-02'::date}), '02.01.2024', 'DateStyle applied');
	is($c->query_value('SHOW myapp.setting'), 'custom', 'placeholder setting applied');
	$c->terminate;
}
{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_startup(user => 'app', database => 'app', no_such_setting => 'x');
	my $r = $c->read_startup_response(10);
	ok(!$r->{ok}, 'unknown startup parameter: no session');
	is(PoolTest::Raw::sqlstate($r), '42704', 'unknown startup parameter: 42704');
	ok($r->{eof} || $c->wait_eof(5), 'unknown startup parameter: closed');
	$c->close;
	pool_ok('unknown startup parameter');

	$c = PoolTest::Raw->new(port => $pp);
	$c->send_startup(user => 'app', database => 'app', work_mem => 'lots');
	$r = $c->read_startup_response(10);
	ok(!$r->{ok}, 'bad startup parameter value: no session');
	is(PoolTest::Raw::sqlstate($r), '22023', 'bad startup parameter value: 22023');
	$c->close;
	pool_ok('bad startup parameter value');

	$c = PoolTest::Raw->new(port => $pp);
	$c->send_startup(user => 'app', database => 'app', shared_buffers => '1GB');
	$r = $c->read_startup_response(10);
	ok(!$r->{ok}, 'PGC_POSTMASTER startup parameter: no session');
	is(PoolTest::Raw::sqlstate($r), '55P02', 'PGC_POSTMASTER startup parameter: 55P02');
	$c->close;
	pool_ok('PGC_POSTMASTER startup parameter');
}

###########################################################################
# SSLRequest, GSSENCRequest
###########################################################################
for my $req ([ 'SSLRequest', 80877103 ], [ 'GSSENCRequest', 80877104 ])
{
	my ($name, $code) = @$req;
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes(pack('N N', 8, $code));
	is($c->read_byte(10), 'N', "$name answered 'N'");
	ok($c->login(user => 'app', database => 'app'),
		"$name: normal startup on the same connection");
	is($c->query_value('SELECT 5'), '5', "$name: session works");
	$c->terminate;
}
{
	# GSSENCRequest then SSLRequest, as libpq may do
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes(pack('N N', 8, 80877104));
	is($c->read_byte(10), 'N', "GSSENCRequest 'N'");
	$c->send_bytes(pack('N N', 8, 80877103));
	is($c->read_byte(10), 'N', "then SSLRequest 'N'");
	ok($c->login(user => 'app', database => 'app'), 'then startup');
	$c->terminate;
}
# a second SSLRequest after 'N' is a protocol violation, not a crash
expect_no_session('SSLRequest twice', pack('N N', 8, 80877103) . pack('N N', 8, 80877103));

# libpq's own negotiation: sslmode=prefer and gssencmode=prefer fall back
is( $node->pool_safe_psql('app', 'SELECT 6',
		extra => 'sslmode=prefer gssencmode=prefer'),
	'6',
	'psql with sslmode=prefer gssencmode=prefer');
my ($sret, $sout, $serr) = $node->pool_psql('app', 'SELECT 1',
	extra => 'sslmode=require');
isnt($sret, 0, 'sslmode=require refused (the pool port answers N)');
like($serr, qr/server does not support SSL/, 'sslmode=require: libpq message');

###########################################################################
# CancelRequests that match nothing
###########################################################################
expect_no_session('CancelRequest for an unknown session',
	pack('N N N N', 16, 80877102, 12345, 67890));
expect_no_session('short CancelRequest', pack('N N N', 12, 80877102, 12345));

###########################################################################
# Garbage
###########################################################################
expect_no_session('HTTP request', "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
srand(20240601);
for my $i (1 .. 8)
{
	my $len = 8 + int(rand(200));
	my $junk = join('', map { chr(int(rand(256))) } 1 .. $len);
	# half of them with a plausible length word
	substr($junk, 0, 4, pack('N', $len)) if $i % 2;
	expect_no_session("garbage #$i ($len bytes)", $junk);
}

###########################################################################
# Stalled clients
###########################################################################
{
	my @stalled;
	push @stalled, PoolTest::Raw->new(port => $pp) for 1 .. 10;
	# some with a partial length word, some with a partial packet
	my $p1 = PoolTest::Raw->new(port => $pp);
	$p1->send_bytes(substr(pack('N', 40), 0, 2));
	my $p2 = PoolTest::Raw->new(port => $pp);
	$p2->send_bytes(substr(pkt(user => 'app', database => 'app'), 0, 15));
	push @stalled, $p1, $p2;
	my $t0 = time();

	my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 20);
	is("$ret/$out", '0/1', 'psql served while 12 clients stall in startup');
	cmp_ok(time() - $t0, '<', 5, 'stalled clients do not delay others');

	my $closed = 0;
	for my $s (@stalled)
	{
		$closed++ if $s->wait_eof(8 - (time() - $t0) > 0.5 ? 8 - (time() - $t0) : 0.5);
	}
	is($closed, scalar @stalled,
		'stalled connections closed after authentication_timeout (2s)');
	cmp_ok(time() - $t0, '<', 9, 'closed in bounded time');
	$_->close for @stalled;
	pool_ok('stalled clients');
}

# A client that connects and is closed at once, many times.
for (1 .. 20)
{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->close;
}
pool_ok('connect/close storm');

# the listener counted the refusals
cmp_ok($node->safe_psql('postgres', 'SELECT rejected FROM pool_listener_stats()'),
	'>', $rejected0, 'pool_listener_stats().rejected increased');

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
