
# Copyright (c) builtin_pool authors
#
# Real drivers through the pool port, each run against the main port too as
# a control (the same script, the same checks): psycopg 3 (server-side
# prepared statements, pipeline mode, executemany, COPY), asyncpg (its
# statement cache, 100 concurrent connections with prepared statements,
# asyncio.gather), node-postgres (named statements, several queries in
# flight on one client, 20 clients).  The scripts live in test/clients/;
# each prints its checks and exits non-zero on any failure.
#
# session_pool_size = 2, so the pooled connections share executors: the
# scripts also check that at most 2 distinct pg_backend_pid() served them,
# and that statements with the same name in different sessions stay apart.
#
# A client whose runtime or library is missing is skipped with the reason:
#   psycopg:       apt-get install python3-psycopg
#   asyncpg:       apt-get install python3-asyncpg
#   node-postgres: apt-get install nodejs npm; cd test/clients && npm ci

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;

my $clients_dir = "$FindBin::RealBin/../test/clients";
my $pool_size = 2;

my $node = pool_node(
	'clients',
	size => $pool_size,
	conf => "max_connections = 200\nlog_statement = none\n");
$node->start;
setup_app($node);
my $pp = $node->pool_port;

pool_serves_ok($node);

# true if the command runs and exits 0 (output discarded)
sub runs
{
	my (@cmd) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
			IPC::Run::timeout(30));
	};
	return $ok ? 1 : 0;
}

# run_client(NAME, LABEL, CMD...): runs one client script, one test for its
# exit status, the script's output as notes and its FAIL lines as diag.
sub run_client
{
	my ($name, $label, @cmd) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($out, $err) = ('', '');
	note "running: @cmd";
	my $ok = eval {
		IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
			IPC::Run::timeout(150));
	};
	my $timed_out = $@ && $@ =~ /timeout/i;
	my $rc = $? >> 8;
	note "$name ($label) output:\n$out" . ($err ne '' ? "\nstderr:\n$err" : '');
	my @fails = grep { /^FAIL/ } split /\n/, $out;
	my $nok = () = $out =~ /^ok - /mg;
	ok($ok && !$timed_out, "$name through the $label port: every check passed ($nok checks)")
	  or diag("$name ($label): "
		  . ($timed_out ? 'timed out' : "exit code $rc") . "\n"
		  . join("\n", @fails)
		  . ($err ne '' ? "\nstderr:\n" . substr($err, -3000) : ''));
	cmp_ok($nok, '>=', 10, "$name through the $label port: the checks ran");
	return;
}

sub both_ports
{
	my ($name, $cmd_for) = @_;
	run_client($name, 'pool', $cmd_for->($pp, 'pool', $pool_size));
	run_client($name, 'main', $cmd_for->($node->port, 'main', 0));
	return;
}

my $have_python = runs('python3', '-c', 'import sys; sys.exit(0)');

# psycopg 3
SKIP:
{
	skip 'python3 not found (apt-get install python3)', 4 unless $have_python;
	skip 'psycopg 3 not installed (apt-get install python3-psycopg)', 4
	  unless runs('python3', '-c', 'import psycopg');
	both_ports(
		'psycopg 3',
		sub {
			my ($port, $label, $max) = @_;
			return (
				'python3', "$clients_dir/psycopg_test.py",
				'--dsn', "host=127.0.0.1 port=$port dbname=app user=app",
				'--label', $label,
				$max ? ('--max-executors', $max) : ());
		});
}

# asyncpg
SKIP:
{
	skip 'python3 not found (apt-get install python3)', 4 unless $have_python;
	skip 'asyncpg not installed (apt-get install python3-asyncpg)', 4
	  unless runs('python3', '-c', 'import asyncpg');
	both_ports(
		'asyncpg',
		sub {
			my ($port, $label, $max) = @_;
			return (
				'python3', "$clients_dir/asyncpg_test.py",
				'--host', '127.0.0.1', '--port', $port,
				'--database', 'app', '--user', 'app',
				'--label', $label, '--clients', 100,
				$max ? ('--max-executors', $max) : ());
		});
}

# node-postgres
SKIP:
{
	skip 'node not found (apt-get install nodejs npm)', 4
	  unless runs('node', '--version');
	skip "node-postgres not installed (cd test/clients && npm ci)", 4
	  unless -f "$clients_dir/node_modules/pg/package.json";
	both_ports(
		'node-postgres',
		sub {
			my ($port, $label, $max) = @_;
			return (
				'node', "$clients_dir/pg_test.js",
				'--host', '127.0.0.1', '--port', $port,
				'--database', 'app', '--user', 'app',
				'--label', $label,
				$max ? ('--max-executors', $max) : ());
		});
}

# the pool is quiet afterwards: every session gone, still serving
ok( wait_until(
		sub {
			my $p = $node->pool_pool('app', 'app');
			return !$p || $p->{sessions} == 0;
		},
		30),
	'every client session gone');
cmp_ok(scalar($node->pool_status("port = $pp AND database = 'app' AND role = 'app'")),
	'<=', $pool_size, "at most $pool_size executors for the pool");
is($node->pool_safe_psql('app', 'SELECT count(*) FROM pool_prepared_statements'), '0',
	'a new session has no prepared statement');
is($node->pool_safe_psql('app', 'SELECT count(*) FROM pg_prepared_statements'), '0',
	"its executor holds none of the drivers' statements any more");

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
