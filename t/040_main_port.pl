
# Copyright (c) builtin_pool authors
#
# builtin_pool.session_pool_ports = 0 pools the server's own port: a client
# is authenticated by the backend the postmaster forked (pg_hba.conf's
# methods, peer and scram-sha-256 here), handed to the pool, and served by
# an executor; databases in dedicated_databases and the bootstrap superuser
# keep a backend of their own.  psql, pgbench and psycopg through the main
# port; ParameterStatus and BackendKeyData as a dedicated backend sends
# them; a CancelRequest sent to the main port cancels the pooled session it
# names and nothing else; clients that vanish mid-handoff leave nothing
# behind; idle pooled sessions hold no backend slot (max_connections is
# smaller than the number of sessions); the server log has no crash.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Socket;
use Test::More;
use Time::HiRes qw(time usleep);

my $os_user = getpwuid($<);
my $node = pool_node('mainport', size => 2,
	conf => "builtin_pool.session_pool_ports = 0\n"
	  . "builtin_pool.dedicated_databases = 'postgres, dedi'\n"
	  . "max_connections = 12\n"
	  . "superuser_reserved_connections = 2\n"
	  . "log_connections = on\n"
	  . "log_disconnections = on\n");

# peer for app over the Unix socket (mapped from the OS user), scram over TCP
$node->append_conf('pg_ident.conf', "appmap $os_user app\n");
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die;
print $hba "local all app peer map=appmap\n";
print $hba "local all other peer\n";
print $hba "local all all trust\n";
print $hba "host all app 127.0.0.1/32 scram-sha-256\n";
print $hba "host all all 127.0.0.1/32 trust\n";
close $hba;
$node->start;

my $port = $node->port;
my $sockdir = $node->host;
my $sock = "$sockdir/.s.PGSQL.$port";
$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN PASSWORD 'secret';
	CREATE ROLE other LOGIN;
	GRANT pg_read_all_stats TO app;
	CREATE EXTENSION builtin_pool;
	CREATE DATABASE app OWNER app;
	CREATE DATABASE dedi OWNER app;
});

# where a connection string lands: the backend type serving it
sub served_by
{
	my ($connstr) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		'SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()',
		connstr => $connstr);
	return $ret == 0 ? $out : "error: $err";
}

ok(wait_until(sub { served_by("host=$sockdir port=$port dbname=app user=app") eq
			  'builtin_pool executor' }, 30),
	'peer login over the Unix socket: served by an executor');
# pool_sessions lists a main-port session under the server's port
{
	my $c = PoolTest::Raw->new(path => $sock);
	ok($c->login(user => 'app', database => 'app', application_name => 'mainself'),
		'raw login on the main port');
	is($c->query_value('SELECT 3'), '3', 'raw main-port session served');
	is( $node->safe_psql('postgres',
			"SELECT port || ' ' || database || ' ' || role || ' ' || state || ' ' || (executor_pid = $c->{startup}{pid}) FROM pool_sessions WHERE application_name = 'mainself'"),
		"$port app app idle true",
		'pool_sessions: a pooled main-port session, under the server\'s port');
	$c->terminate;
}
is(served_by("host=$sockdir port=$port dbname=dedi user=app"),
	'client backend', 'dedicated database: its own backend');
is(served_by("host=$sockdir port=$port dbname=app"),
	'client backend', 'bootstrap superuser: its own backend');
{
	local $ENV{PGPASSWORD} = 'secret';
	is(served_by("host=127.0.0.1 port=$port dbname=app user=app"),
		'builtin_pool executor', 'scram-sha-256 over TCP: pooled');
	local $ENV{PGPASSWORD} = 'wrong';
	like(served_by("host=127.0.0.1 port=$port dbname=app user=app"),
		qr/password authentication failed for user "app"/,
		'a wrong password is refused by the backend, as core does');
}
like(served_by("host=$sockdir port=$port dbname=app user=other"),
	qr/Peer authentication failed for user "other"/,
	'peer refuses another OS user, as core does');
like(served_by("host=$sockdir port=$port dbname=nosuchdb user=app"),
	qr/database "nosuchdb" does not exist/,
	'a missing database is refused with core\'s message');

# pool_status() shows the main port's pool
is( $node->safe_psql('postgres',
		"SELECT DISTINCT port FROM pool_status() WHERE database = 'app'"),
	$port, 'pool_status(): the pool is on the server\'s port');

###########################################################################
# ParameterStatus and BackendKeyData, pooled vs. a dedicated backend
###########################################################################
sub raw_login
{
	my ($db, @extra) = @_;
	my $c = PoolTest::Raw->new(path => $sock);
	$c->login(user => 'app', database => $db, application_name => 'cmp',
		@extra);
	return $c;
}
{
	my $p = raw_login('app');
	my $d = raw_login('dedi');
	ok($p->{startup}{ok} && $d->{startup}{ok}, 'raw logins pooled and dedicated');
	my %pp = map { $_->[0] => $_->[1] } @{ $p->{startup}{param_status} };
	my %dp = map { $_->[0] => $_->[1] } @{ $d->{startup}{param_status} };
	is_deeply(\%pp, \%dp, 'ParameterStatus: the same as a dedicated backend');
	is($p->{startup}{types} =~ s/S+/S/gr, $d->{startup}{types} =~ s/S+/S/gr,
		'login message sequence: the same as a dedicated backend');
	my $bt = $node->safe_psql('postgres',
		"SELECT backend_type FROM pg_stat_activity WHERE pid = $p->{startup}{pid}");
	is($bt, 'builtin_pool executor', 'BackendKeyData names the executor');
	ok($p->{startup}{key} != 0, 'BackendKeyData: a key of its own');
	$p->terminate;
	$d->terminate;
}

# a refusal after authentication: AuthenticationOk, then the error, as core
{
	my $p = PoolTest::Raw->new(path => $sock);
	$p->login(user => 'app', database => 'nosuchdb');
	my $d = PoolTest::Raw->new(path => $sock);
	$d->login(user => $os_user, database => 'nosuchdb');
	is($p->{startup}{types}, $d->{startup}{types},
		'missing database: the messages of a dedicated backend ('
		  . $d->{startup}{types} . ')');
	is(PoolTest::Raw::sqlstate($p->{startup}), '3D000', 'missing database: 3D000');
	$p->close;
	$d->close;
}

# CONNECTION LIMIT counts pooled main-port sessions, as backends
{
	$node->safe_psql('postgres', 'CREATE ROLE limited LOGIN CONNECTION LIMIT 2');
	my @in = map { my $c = PoolTest::Raw->new(path => $sock);
		$c->login(user => 'limited', database => 'app'); $c } 1 .. 2;
	ok($in[0]{startup}{ok} && $in[1]{startup}{ok}, 'two sessions of a role limited to 2');
	my $third = PoolTest::Raw->new(path => $sock);
	$third->login(user => 'limited', database => 'app');
	is(PoolTest::Raw::sqlstate($third->{startup}), '53300', 'the third: 53300');
	like($third->{startup}{errors}[0]{M} // '', qr/too many connections for role "limited"/,
		'with core\'s message');
	$_->terminate for @in;
	$third->close;
}

###########################################################################
# cancel through the main port
###########################################################################
sub wait_sleeping
{
	my ($pid) = @_;
	return wait_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'PgSleep'"
			) eq '1';
		},
		10);
}
{
	my $A = raw_login('app');
	my $B = raw_login('app');
	my ($pid, $key) = ($A->{startup}{pid}, $A->{startup}{key});

	$A->send_query('SELECT pg_sleep(20)');
	ok(wait_sleeping($pid), 'pooled session sleeping');

	# a wrong key and another session's key cancel nothing
	PoolTest::Raw->cancel(path => $sock, pid => $pid, key => $key ^ 1);
	PoolTest::Raw->cancel(path => $sock, pid => $B->{startup}{pid},
		key => $B->{startup}{key});
	usleep(500_000);
	my $r0 = $A->read_result(0.5);
	ok(!$r0->{complete}, 'wrong key, other key: the statement still runs');

	my $t0 = time();
	PoolTest::Raw->cancel(path => $sock, pid => $pid, key => $key);
	my $r = $A->read_result(10);
	is(PoolTest::Raw::sqlstate($r), '57014', 'cancel sent to the main port: 57014');
	cmp_ok(time() - $t0, '<', 5, 'canceled quickly');
	is($A->query_value('SELECT 1'), '1', 'session usable after the cancel');
	is($B->query_value('SELECT 2'), '2', 'the other session was untouched');

	$A->terminate;
	$B->terminate;

	# over TCP (trust for role other there)
	my $T = PoolTest::Raw->new(port => $port);
	ok($T->login(user => 'other', database => 'app'), 'TCP login, pooled');
	$T->send_query('SELECT pg_sleep(20)');
	ok(wait_sleeping($T->{startup}{pid}), 'TCP session sleeping');
	PoolTest::Raw->cancel(port => $port, pid => $T->{startup}{pid},
		key => $T->{startup}{key});
	is(PoolTest::Raw::sqlstate($T->read_result(10)), '57014',
		'cancel over TCP to the main port: 57014');
	$T->terminate;
}

###########################################################################
# psycopg, pgbench
###########################################################################
SKIP:
{
	skip 'psycopg 3 not installed (apt-get install python3-psycopg)', 1
	  unless system('python3', '-c', 'import psycopg') == 0;
	my $py = <<'EOF';
import sys, psycopg
with psycopg.connect(sys.argv[1]) as c:
    c.execute("SET application_name = 'psy'")
    r = c.execute("SELECT %s::int + 1, backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()", (41,)).fetchone()
    c.execute("PREPARE q AS SELECT 7")
    c.commit()
    r2 = c.execute("EXECUTE q").fetchone()
    print(r[0], r[1], r2[0])
EOF
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', '-c', $py,
			"host=$sockdir port=$port dbname=app user=app" ],
		'>', \$out, '2>', \$err);
	is($out, "42 builtin_pool executor 7\n", 'psycopg through the main port')
	  or diag($err);
}

{
	my $connstr = "host=$sockdir port=$port dbname=app user=app";
	local $ENV{PGHOST} = $sockdir;
	local $ENV{PGPORT} = $port;
	local $ENV{PGUSER} = 'app';
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $node->installed_command('pgbench'), '-i', '-s', '1', 'app' ],
		'>', \$out, '2>', \$err);
	ok($ok, 'pgbench -i through the main port') or diag($err);
	# more clients than max_connections: each holds a slot only while it logs in
	$ok = IPC::Run::run([ $node->installed_command('pgbench'), '-n', '-c', '30', '-j', '2',
			'-T', '3', '-S', 'app' ], '>', \$out, '2>', \$err);
	ok($ok, 'pgbench -S, 30 clients, max_connections 12') or diag($err);
	like($out, qr/number of failed transactions: 0/, 'no failed transaction');
	$ok = IPC::Run::run([ $node->installed_command('pgbench'), '-n', '-c', '4', '-j', '2',
			'-t', '50', 'app' ], '>', \$out, '2>', \$err);
	ok($ok, 'pgbench TPC-B through the main port') or diag($err);
	$ok = IPC::Run::run([ $node->installed_command('pgbench'), '-n', '-C', '-c', '4', '-j', '2',
			'-t', '25', '-S', 'app' ], '>', \$out, '2>', \$err);
	ok($ok, 'pgbench -C -S: a login per transaction') or diag($err);
}

# client backends but this psql's and the smart shutdown guard's
my $other_backends = q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
	AND application_name <> 'builtin_pool smart shutdown guard'};

###########################################################################
# idle pooled sessions hold no backend slot
###########################################################################
{
	my @s;
	for my $i (1 .. 40)
	{
		my $c = raw_login('app');
		last unless $c->{startup}{ok};
		push @s, $c;
	}
	is(scalar @s, 40, '40 idle pooled sessions with max_connections = 12');
	is($node->safe_psql('postgres', $other_backends), '0',
		'no client backend meanwhile');
	is($s[-1]->query_value('SELECT 40'), '40', 'the last one is served');
	$_->terminate for @s;
}

###########################################################################
# clients that vanish mid-handoff: each login either never reached the pool
# or became a session that ended; no backend stays
###########################################################################
{
	$node->safe_psql('postgres', 'CREATE ROLE vanish LOGIN');
	for my $i (1 .. 40)
	{
		my $c = PoolTest::Raw->new(path => $sock);
		$c->send_startup(user => 'vanish', database => 'app');
		if ($i % 2)
		{
			# a reset rather than an orderly close (TCP only; harmless here)
			setsockopt($c->sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
		}
		usleep(($i % 5) * 1000);
		$c->close;
	}
	my ($started, $ended);
	ok( wait_until(
			sub {
				my $log = slurp_file($node->logfile);
				$started = () = $log =~ /connection authorized: user=vanish database=app$/mg;
				$ended = () = $log =~ /disconnection: .* user=vanish database=app/g;
				return $started > 0 && $started == $ended;
			},
			20),
		"vanished clients: every pooled session ended ($started started, $ended ended)");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE usename = 'vanish' AND backend_type = 'client backend'"),
		'0', 'no backend of theirs is left');
	# (a send failure once left sessions counted after they ended)
	ok( wait_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT coalesce(sum(sessions), 0) FROM pool_status() WHERE role = 'vanish'"
				) eq '0';
			},
			10),
		'pool_status() counts none of them');
	is(served_by("host=$sockdir port=$port dbname=app user=app"),
		'builtin_pool executor', 'the pool still serves');
}

###########################################################################
# the first logins after a start, before any backend wrote the shared
# relcache init file: a login while a pooled session exists must not need
# a database (it once failed with "cannot read pg_class without having
# selected a database")
###########################################################################
{
	$node->append_conf('postgresql.conf', "builtin_pool.smart_shutdown_guard = off\n");
	$node->restart;
	# many logins at once: the first ones count as pooled sessions while
	# their executor starts, and the others log in meanwhile
	my @c = map { PoolTest::Raw->new(path => $sock) } 1 .. 30;
	$_->send_startup(user => 'app', database => 'app') for @c;
	my @bad;
	for my $c (@c)
	{
		my $r = $c->read_startup_response(30);
		push @bad, ($r->{errors}[0]{M} // 'no answer') unless $r->{ok};
		$c->terminate;
	}
	is(scalar @bad, 0, '30 simultaneous logins right after a restart')
	  or diag(join("\n", @bad));
}

###########################################################################
# the server log
###########################################################################
{
	my $log = slurp_file($node->logfile);
	like($log, qr/connection authorized: user=app database=app application_name=cmp/,
		'log_connections: the executor logs the pooled session as authorized');
	unlike($log, qr/builtin_pool could not hand a main port client/,
		'every pooled client was handed over');
}
check_no_crash($node);
$node->stop;

# a combination that cannot pool anything is refused at startup
my $bad = pool_node('mainport_bad',
	conf => "builtin_pool.session_pool_ports = 0\ndb_user_namespace = on\n");
ok(!$bad->start(fail_ok => 1), 'session_pool_ports = 0 with db_user_namespace: no start');
like(slurp_file($bad->logfile),
	qr/session_pool_ports = 0 cannot pool the server's port with db_user_namespace on/,
	'the startup error names the combination');

done_testing();
