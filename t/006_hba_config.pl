
# Copyright (c) builtin_pool authors
#
# pg_hba.conf on the pool port (reject, methods the pool cannot serve yet,
# reload), separate pools per (port, database, role), dedicated databases,
# builtin_pool.session_pool_ports = 2, builtin_pool.use_io_uring = off, and
# the startup refusal when max_worker_processes is too small.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time);

my $node = pool_node('hba', size => 2, ports => 2,
	conf => "builtin_pool.dedicated_databases = 'dedi'\n");
my $pp = $node->pool_port;
my $pp2 = $pp + 1;

sub write_hba
{
	my ($extra) = @_;
	$extra //= '';
	open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $fh <<"EOF";
local all rejected_role reject
local all all trust
host all rejected_role 127.0.0.1/32 reject
host all md5_role 127.0.0.1/32 md5
host all scram_role 127.0.0.1/32 scram-sha-256
$extra
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
EOF
	close $fh;
	return;
}

write_hba();
$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE app2 LOGIN;
	CREATE ROLE rejected_role LOGIN;
	SET password_encryption = 'md5';
	CREATE ROLE md5_role LOGIN PASSWORD 'secret';
	RESET password_encryption;
	CREATE ROLE scram_role LOGIN PASSWORD 'secret';
	CREATE ROLE hostname_role LOGIN;
	CREATE DATABASE app2;
	CREATE DATABASE dedi;
});

sub pool_serves
{
	my ($port) = @_;
	return wait_until(
		sub {
			my ($ret, $out) = $node->pool_psql('app', 'SELECT 1',
				timeout => 10, port => $port // $pp);
			return $ret == 0 && $out eq '1';
		},
		30);
}

sub try_login
{
	my (%a) = @_;
	my $c = PoolTest::Raw->new(port => $a{port} // $pp,
		$a{path} ? (path => $a{path}) : ());
	my $ok = $c->login(user => $a{user}, database => $a{database} // 'app');
	my $r = $c->{startup};
	$c->terminate;
	return $r;
}

ok(pool_serves(), 'pool port serves');

###########################################################################
# pg_hba.conf
###########################################################################

my $r = try_login(user => 'rejected_role');
ok(!$r->{ok}, 'rejected_role refused through the pool (TCP)');
is(PoolTest::Raw::sqlstate($r), '28000', 'reject: 28000');
like($r->{errors}[0]{M} // '', qr/pg_hba.conf rejects connection/,
	'reject: pg_hba.conf message');
unlike($r->{types}, qr/Z/, 'reject: never admitted');

$r = try_login(user => 'rejected_role', path => $node->host . "/.s.PGSQL.$pp");
ok(!$r->{ok}, 'rejected_role refused through the pool (Unix socket)');
is(PoolTest::Raw::sqlstate($r), '28000', 'reject over Unix socket: 28000');

$r = try_login(user => 'app');
ok($r->{ok}, 'app admitted');
$r = try_login(user => 'app2', database => 'app2');
ok($r->{ok}, 'app2 admitted');

# md5 (and scram): never admitted without a password; refused naming the
# method, or (once supported) asked for a password and refused on a wrong one
for my $m ([ 'md5_role', 'md5', 5 ], [ 'scram_role', 'scram-sha-256', 10 ])
{
	my ($role, $method, $authcode) = @$m;
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_startup(user => $role, database => 'app');
	my $res = $c->read_startup_response(3);	# waits for the password: stops at the timeout
	unlike($res->{types}, qr/Z/, "$method: not admitted without a password");
	ok(!grep({ $_ == 0 } @{ $res->{auth} }), "$method: no AuthenticationOk");
	if (grep { $_ == $authcode } @{ $res->{auth} })
	{
		pass("$method: password requested (method supported)");
		if ($authcode == 5)
		{
			$c->send_bytes(PoolTest::Raw::msg('p', "md5" . ('0' x 32) . "\0"));
			my $res2 = $c->read_startup_response(10);
			is(PoolTest::Raw::sqlstate($res2), '28P01', "$method: wrong password refused");
		}
	}
	else
	{
		my $e = $res->{errors}[0] // {};
		is($e->{S} // '', 'FATAL', "$method: FATAL");
		my $text = join(' ', map { $_ // '' } @$e{qw(M D H)});
		like($text, qr/\Q$method\E/, "$method: the error names the method")
		  or diag("error: $text");
	}
	$c->close;
}
ok(pool_serves(), 'pool still serves after the refusals');

# reload: reject app2, then admit again
write_hba('host all app2 127.0.0.1/32 reject');
$node->reload;
ok( wait_until(
		sub {
			my $x = try_login(user => 'app2', database => 'app2');
			return !$x->{ok} && PoolTest::Raw::sqlstate($x) eq '28000';
		},
		15),
	'after reload the new reject line refuses app2');
ok(try_login(user => 'app')->{ok}, 'app still admitted');
write_hba();
$node->reload;
ok(wait_until(sub { try_login(user => 'app2', database => 'app2')->{ok} }, 15),
	'after another reload app2 is admitted again');

# a broken pg_hba.conf is not loaded: the previous rules stay
write_hba('bogus_connection_type all all 127.0.0.1/32 trust');
$node->reload;
ok( wait_until(
		sub {
			slurp_file($node->logfile) =~ /pg_hba.conf was not reloaded/;
		},
		15),
	'server complains about the broken pg_hba.conf');
sleep 1;
ok(try_login(user => 'app')->{ok}, 'pool keeps admitting with the old rules');
$r = try_login(user => 'rejected_role');
is(PoolTest::Raw::sqlstate($r), '28000', 'and keeps rejecting with the old rules');
write_hba();
$node->reload;

# A reject line the pool cannot evaluate (a host name) must not be skipped
# into a later trust line: core rejects this client, so must the pool.
write_hba('host all hostname_role localhost reject');
$node->reload;
SKIP:
{
	my ($mret, $mout, $merr) = $node->psql('app', 'SELECT 1',
		connstr => 'host=127.0.0.1 port=' . $node->port . ' dbname=app user=hostname_role');
	skip 'the main port does not reject by host name here (name resolution)', 2
	  unless $merr =~ /pg_hba.conf rejects connection/;
	pass('main port rejects hostname_role (host name line)');
	ok( wait_until(
			sub {
				my $x = try_login(user => 'hostname_role');
				return !$x->{ok};
			},
			10),
		'pool port does not admit what the main port rejects (host name reject line)');
}
write_hba();
$node->reload;

###########################################################################
# one port, separate pools per (database, role)
###########################################################################
{
	my $A = $node->pool_bg_psql('app', user => 'app');
	my $B = $node->pool_bg_psql('app2', user => 'app');
	my $C = $node->pool_bg_psql('app', user => 'app2');
	my %pid = (
		A => bgq($A, 'SELECT pg_backend_pid()'),
		B => bgq($B, 'SELECT pg_backend_pid()'),
		C => bgq($C, 'SELECT pg_backend_pid()'));
	is(bgq($B, 'SELECT current_database(), current_user'), 'app2|app', 'B: app2 as app');
	is(bgq($C, 'SELECT current_database(), current_user'), 'app|app2', 'C: app as app2');
	isnt($pid{A}, $pid{B}, 'different database: different executor');
	isnt($pid{A}, $pid{C}, 'different role: different executor');
	isnt($pid{B}, $pid{C}, 'B and C: different executors');
	for my $k ([ 'app', 'app' ], [ 'app2', 'app' ], [ 'app', 'app2' ])
	{
		my $p = $node->pool_pool(@$k);
		ok($p, "pool_pools row for database $k->[0], role $k->[1]");
		is($p->{sessions}, 1, "pool ($k->[0], $k->[1]) has one session") if $p;
	}
	my @rows = $node->pool_status("pid = $pid{B}");
	is($rows[0]{database} // '', 'app2', 'pool_status: database of B\'s executor');
	@rows = $node->pool_status("pid = $pid{C}");
	is($rows[0]{role} // '', 'app2', 'pool_status: role of C\'s executor');
	$_->quit for $A, $B, $C;
}

###########################################################################
# dedicated databases
###########################################################################
{
	my $D1 = $node->pool_bg_psql('dedi');
	my $D2 = $node->pool_bg_psql('dedi');
	my $p1 = bgq($D1, 'SELECT pg_backend_pid()');
	my $p2 = bgq($D2, 'SELECT pg_backend_pid()');
	isnt($p1, $p2, 'dedicated database: each session its own executor');
	for my $p ($p1, $p2)
	{
		my @rows = $node->pool_status("pid = $p");
		is($rows[0]{dedicated} // '', 't', "executor $p is dedicated");
		is($rows[0]{sessions} // '', '1', "executor $p holds one session");
	}
	my @rows = $node->pool_status("database = 'app'");
	ok(!grep({ $_->{dedicated} eq 't' } @rows), 'app executors are not dedicated');
	$D1->quit;
	$D2->quit;
}

###########################################################################
# session_pool_ports = 2
###########################################################################
{
	ok(pool_serves($pp2), 'second pool port serves');
	ok(-S $node->host . "/.s.PGSQL.$pp2", 'Unix socket of the second port');
	is($node->pool_safe_psql('app', 'SELECT 2', unix => 1, port => $pp2), '2',
		'second pool port over the Unix socket');
	my $A = $node->pool_bg_psql('app', port => $pp);
	my $B = $node->pool_bg_psql('app', port => $pp2);
	my $pa = bgq($A, 'SELECT pg_backend_pid()');
	my $pb = bgq($B, 'SELECT pg_backend_pid()');
	isnt($pa, $pb, 'each port has its own executors');
	my $p1 = $node->pool_pool('app', 'app', $pp);
	my $p2 = $node->pool_pool('app', 'app', $pp2);
	ok($p1 && $p2, 'pool_pools has a row per port');
	is($p1->{sessions}, 1, 'first port pool: one session') if $p1;
	is($p2->{sessions}, 1, 'second port pool: one session') if $p2;
	my @rows = $node->pool_status("pid = $pb");
	is($rows[0]{port} // '', $pp2, 'pool_status: port of the second pool');
	$A->quit;
	$B->quit;
}

check_no_crash($node, 'hba and pools');

###########################################################################
# use_io_uring = off
###########################################################################
$node->append_conf('postgresql.conf', 'builtin_pool.use_io_uring = off');
$node->restart;
ok(pool_serves(), 'use_io_uring = off: pool serves');
ok(pool_serves($pp2), 'use_io_uring = off: second port serves');
is($node->pool_safe_psql('app', 'SELECT 3', unix => 1), '3',
	'use_io_uring = off: Unix socket');
$r = try_login(user => 'app', database => 'nosuchdb');
is(PoolTest::Raw::sqlstate($r), '3D000', 'use_io_uring = off: unknown database refused');
$r = try_login(user => 'rejected_role');
is(PoolTest::Raw::sqlstate($r), '28000', 'use_io_uring = off: hba reject');
{
	# a stalled client blocks nobody
	my $s = PoolTest::Raw->new(port => $pp);
	my $t0 = time();
	ok(pool_serves(), 'use_io_uring = off: served despite a stalled client');
	cmp_ok(time() - $t0, '<', 5, 'promptly');
	$s->close;
}
$node->command_ok(
	[ 'pgbench', '-i', '-q', '-s', '1', '-h', $node->host, '-p', $node->port, '-U', 'app', 'app' ],
	'pgbench -i');
{
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-M', 'simple', '-c', '20', '-j', '2', '-T', '3',
		'-h', '127.0.0.1', '-p', $pp, '-U', 'app', 'app');
	my $ok = IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
		IPC::Run::timeout(90));
	note "pgbench stdout:\n$out\nstderr:\n$err";
	ok($ok, 'use_io_uring = off: pgbench exit code 0');
	like($out, qr/number of failed transactions: 0 /, 'use_io_uring = off: no failed transaction');
	like($out, qr/number of transactions actually processed: [1-9]/, 'use_io_uring = off: transactions processed');
}
check_no_crash($node, 'use_io_uring = off');
$node->stop;
check_no_crash($node, 'after stop');

###########################################################################
# refusal to start when max_worker_processes is too small
###########################################################################
{
	my $bad = pool_node('refuse', size => 10, max_worker_processes => 4);
	ok(!$bad->start(fail_ok => 1), 'server refuses to start: max_worker_processes 4 < session_pool_size 10 + 1');
	my $log = slurp_file($bad->logfile);
	like($log, qr/max_worker_processes/, 'log names max_worker_processes');
	like($log, qr/HINT:.*max_worker_processes/, 'the hint names max_worker_processes');

	# exactly enough: session_pool_size + 1
	$bad->append_conf('postgresql.conf', 'builtin_pool.session_pool_size = 3');
	ok($bad->start(fail_ok => 1), 'starts with max_worker_processes = session_pool_size + 1');
	if ($bad->{_pid})
	{
		$bad->safe_psql('postgres', 'CREATE DATABASE app');
		ok(wait_until(sub {
			my ($rt, $o) = $bad->psql('app', 'SELECT 1',
				connstr => 'host=127.0.0.1 port=' . $bad->pool_port . ' dbname=app',
				timeout => 10);
			return $rt == 0 && $o eq '1'; }, 30),
			'and serves through the pool');
		$bad->stop;
	}
	check_no_crash($bad, 'refusal node');
}

done_testing();
