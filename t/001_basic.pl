
# Copyright (c) builtin_pool authors
#
# Basic service through the pool port, compared with the main port: simple
# query protocol (single and multi-statement strings, implicit transaction
# blocks, errors, notices, empty queries), transaction blocks, COPY and
# \copy, SET/SHOW, Terminate, inet_client_addr(), pool_status(), the Unix
# socket pool port.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;

my $node = pool_node('basic', size => 2);
$node->start;
setup_app($node);

my $pp = $node->pool_port;
my $main_cs = $node->connstr('app') . ' user=app';
my $main_sock = $node->host . '/.s.PGSQL.' . $node->port;
my $pool_sock = $node->host . '/.s.PGSQL.' . $pp;

# psql through the main port (Unix socket), as role app
sub main_psql
{
	my ($sql, %p) = @_;
	return $node->psql('app', $sql, connstr => $main_cs, timeout => 60, %p);
}

# Wait for the pool to accept connections (the listener starts after the
# postmaster reports ready).
ok( wait_until(
		sub {
			my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 10);
			return $ret == 0 && $out eq '1';
		},
		30),
	'pool port serves SELECT 1');

###########################################################################
# 1. The same psql scripts through both ports give the same output.
###########################################################################

my @compare = (
	'SELECT 1',
	q{SELECT 1 AS a, 'two'::text AS b, NULL::int AS c, 2.50::numeric AS d, true AS e},
	'SELECT g, g * g, md5(g::text) FROM generate_series(1, 2000) g',
	'SELECT 1 \; SELECT 2 \; SELECT 3',
	'SELECT 1; SELECT 2; SELECT 3;',
	'SELECT 1/0',
	'SELECT 1 \; SELECT 1/0 \; SELECT 3',
	'SELEC 1',
	'SELECT * FROM no_such_table',
	q{DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$},
	q{DO $$BEGIN RAISE WARNING 'careful'; RAISE NOTICE 'two'; END$$},
	'BEGIN; SELECT 1/0; SELECT 2; ROLLBACK; SELECT 3',
	'BEGIN; SELECT 1; COMMIT',
	'COMMIT',
	'BEGIN; BEGIN; COMMIT',
	q{SELECT length(repeat('x', 300000)), md5(repeat('y', 300000))},
	q{SELECT repeat('ab', 100000)},
	'SHOW DateStyle',
	'SELECT current_user, session_user, current_database()',
	q{SELECT ARRAY[1,2,3], '{"a": [1, 2]}'::jsonb, '2024-02-28'::date + 1, interval '1 day 2 hours'},
	q{SELECT count(*) FROM pg_class WHERE relname = 'pg_class'},
	q{VALUES (1, 'a'), (2, 'b') ORDER BY 1 DESC},
	'EXPLAIN (COSTS OFF) SELECT * FROM generate_series(1, 3)',
	'CREATE TEMP TABLE tt (a int); INSERT INTO tt SELECT generate_series(1, 10); SELECT sum(a) FROM tt;',
	q{SET work_mem = '12MB'; SHOW work_mem; RESET work_mem; SHOW work_mem},
	'SELECT pg_typeof(1::int8), 1::int8 << 40',
	q{SELECT ''},
	';',
	q{\copy (SELECT 1 AS x, 'a' AS y) TO STDOUT},
	'SAVEPOINT s',
	'BEGIN; SAVEPOINT s; SELECT 1/0; ROLLBACK TO SAVEPOINT s; SELECT 2; COMMIT',
	'SHOW transaction_isolation; BEGIN ISOLATION LEVEL SERIALIZABLE; SHOW transaction_isolation; COMMIT',
	q{SET LOCAL work_mem = '1MB'},
	'VACUUM pg_am',
	'VACUUM pg_am \; SELECT 1',
	'SELECT inet_client_addr() IS NULL',
);

for my $sql (@compare)
{
	my ($mret, $mout, $merr) = main_psql($sql, on_error_stop => 0);
	my ($pret, $pout, $perr) =
	  $node->pool_psql('app', $sql, on_error_stop => 0);
	# the pool goes through TCP: inet_client_addr() differs by design
	if ($sql =~ /inet_client_addr/)
	{
		is($pout, 'f', "pool over TCP has a client address");
		next;
	}
	is($pret, $mret, "same exit code: $sql");
	is($pout, $mout, "same output: $sql");
	is($perr, $merr, "same messages: $sql");
}

###########################################################################
# 2. Raw protocol: the same message sequence through both ports.
###########################################################################

# One connection per port, the same queries in order (transaction state
# carries over between them).
my @raw_seq = (
	'SELECT 1; SELECT 1/0; SELECT 3',
	'BEGIN; SELECT 1; COMMIT; SELECT 2',
	'SELECT 1; BEGIN; SELECT 2',
	'SELECT 3',
	'ROLLBACK',
	'',
	';',
	' ; ; ',
	'SELECT 1;;SELECT 2',
	'COMMIT',
	'BEGIN; BEGIN',
	'ROLLBACK',
	'SET DateStyle = ISO, DMY',
	q{SELECT '2024-01-02'::date::text},
	'RESET DateStyle',
	q{DO $$BEGIN RAISE NOTICE 'n1'; RAISE NOTICE 'n2'; END$$},
	'SELECT pg_sleep(0.05)',
	'CREATE TEMP TABLE x (a int); INSERT INTO x VALUES (1), (2); SELECT * FROM x ORDER BY a; DROP TABLE x',
	'SAVEPOINT s',
	'BEGIN',
	'SAVEPOINT s',
	'SELECT 1/0',
	'SELECT 1',
	'ROLLBACK TO SAVEPOINT s',
	'SELECT 2',
	'COMMIT',
	'BEGIN; SELECT 1/0',
	'SELECT 1',
	'COMMIT',
	'SELECT 1 FROM no_such_table',
	'VACUUM pg_am; SELECT 1',
	'COPY (SELECT g FROM generate_series(1, 5) g) TO STDOUT; SELECT 2',
	q{SET LOCAL work_mem = '1MB'},
	q{SET application_name = 'raw_cmp'},
	q{SELECT current_setting('application_name')},
	'RESET ALL',
	q{PREPARE p1 AS SELECT $1::int + 1; EXECUTE p1(41); DEALLOCATE p1},
	'DECLARE c CURSOR FOR SELECT 1',
	'BEGIN; DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 5) g; FETCH 2 FROM c; FETCH 2 FROM c; CLOSE c; COMMIT',
);

sub summarize
{
	my ($r) = @_;
	return join(
		' ## ',
		'types=' . $r->{types},
		'status=' . ($r->{status} // 'none'),
		'tags=' . join(',', @{ $r->{tags} }),
		'rows=' . join(';', map { join('|', map { $_ // 'NULL' } @$_) } @{ $r->{rows} }),
		'errors=' . join(',', map { "$_->{S}:$_->{C}:$_->{M}" } @{ $r->{errors} }),
		'notices=' . join(',', map { "$_->{S}:$_->{C}:$_->{M}" } @{ $r->{notices} }),
		'params=' . join(',', map { "$_->[0]=$_->[1]" } @{ $r->{param_status} }),
		'copy=' . $r->{copy_data},
		'empty=' . $r->{empty},
		'notifies=' . scalar(@{ $r->{notifies} // [] }));
}

{
	my $m = PoolTest::Raw->new(path => $main_sock);
	my $p = PoolTest::Raw->new(port => $pp);
	ok($m->login(user => 'app', database => 'app', application_name => 'raw'),
		'raw login through the main port');
	ok($p->login(user => 'app', database => 'app', application_name => 'raw'),
		'raw login through the pool port');

	# The greeting: same ParameterStatus set (values may differ only where
	# the connection differs, which they should not here).
	my %mp = %{ $m->{params} };
	my %pp_ = %{ $p->{params} };
	is_deeply([ sort keys %pp_ ], [ sort keys %mp ],
		'pool greeting reports the same parameters');
	for my $k (qw(server_version server_encoding client_encoding DateStyle
		IntervalStyle TimeZone integer_datetimes standard_conforming_strings
		application_name is_superuser session_authorization))
	{
		is($pp_{$k}, $mp{$k}, "greeting parameter $k");
	}
	like($p->{startup}{types}, qr/^R.*K.*Z$/s,
		'pool greeting: AuthenticationOk ... BackendKeyData ... ReadyForQuery');
	is_deeply($p->{startup}{auth}, [0], 'pool sends AuthenticationOk only');
	is($p->{startup}{status}, 'I', 'pool greeting ends idle');

	for my $sql (@raw_seq)
	{
		my $mr = $m->query($sql);
		my $pr = $p->query($sql);
		ok($pr->{complete}, "pool completes: '$sql'");
		is(summarize($pr), summarize($mr), "same messages: '$sql'");
	}

	# the pid in BackendKeyData is the executor's, as pg_backend_pid() says
	is($p->query_value('SELECT pg_backend_pid()'), $p->{startup}{pid},
		'BackendKeyData pid is pg_backend_pid() of the pool session');

	$m->terminate;
	$p->terminate;
}

###########################################################################
# 3. Implicit transaction blocks and aborted transactions, precisely.
###########################################################################

$node->pool_safe_psql('app', 'CREATE TABLE ims (a int)');
{
	my $c = PoolTest::Raw->new(port => $pp);
	ok($c->login(user => 'app', database => 'app'), 'raw login');

	my $r = $c->query('SELECT 1; SELECT 1/0; SELECT 3');
	is_deeply($r->{rows}, [ ['1'] ], 'statement after the error is skipped');
	is(PoolTest::Raw::sqlstate($r), '22012', 'division by zero reported');
	is($r->{status}, 'I', 'idle after the implicit block failed');

	$r = $c->query('INSERT INTO ims VALUES (1); SELECT 1/0');
	is(PoolTest::Raw::sqlstate($r), '22012', 'error after INSERT');
	is($c->query_value('SELECT count(*) FROM ims'), '0',
		'INSERT before the error in the same string is rolled back');

	$r = $c->query('INSERT INTO ims VALUES (2); INSERT INTO ims VALUES (3)');
	is_deeply($r->{tags}, [ 'INSERT 0 1', 'INSERT 0 1' ], 'two INSERTs');
	is($c->query_value('SELECT count(*) FROM ims'), '2',
		'successful multi-statement string is committed');

	$r = $c->query(
		'INSERT INTO ims VALUES (10); COMMIT; INSERT INTO ims VALUES (11); SELECT 1/0'
	);
	is($c->query_value('SELECT string_agg(a::text, \',\' ORDER BY a) FROM ims'),
		'2,3,10', 'COMMIT inside an implicit block commits what precedes it');

	$r = $c->query('BEGIN; INSERT INTO ims VALUES (20); SELECT 1/0');
	is($r->{status}, 'E', 'explicit block is now failed');
	$r = $c->query('SELECT 1');
	is(PoolTest::Raw::sqlstate($r), '25P02',
		'current transaction is aborted (25P02)');
	like($r->{errors}[0]{M}, qr/current transaction is aborted/,
		'25P02 message');
	is($r->{status}, 'E', 'still failed');
	$r = $c->query('ROLLBACK');
	is_deeply($r->{tags}, ['ROLLBACK'], 'ROLLBACK of the failed block');
	is($r->{status}, 'I', 'idle after ROLLBACK');
	is($c->query_value('SELECT count(*) FROM ims WHERE a = 20'), '0',
		'rolled back row invisible');

	# empty query
	$r = $c->query('');
	is($r->{types}, 'IZ', 'empty query: EmptyQueryResponse, ReadyForQuery');

	# notices
	$r = $c->query(q{DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$});
	is(scalar @{ $r->{notices} }, 1, 'one notice');
	is($r->{notices}[0]{M}, 'hello 42', 'notice text');
	is($r->{notices}[0]{S}, 'NOTICE', 'notice severity');

	# COPY FROM STDIN with bad data, then CopyFail
	$c->query('CREATE TABLE cpe (a int)');
	$r = $c->query('COPY cpe FROM STDIN');
	ok($r->{copy_in}, 'CopyInResponse');
	$c->send_bytes(PoolTest::Raw::msg('d', "1\n") . PoolTest::Raw::msg('d', "x\n")
		  . PoolTest::Raw::msg('c', ''));
	$r = $c->read_result;
	is(PoolTest::Raw::sqlstate($r), '22P02', 'bad COPY data reported');
	is($r->{status}, 'I', 'idle after failed COPY');
	$r = $c->query('COPY cpe FROM STDIN');
	$c->send_bytes(PoolTest::Raw::msg('d', "5\n") . PoolTest::Raw::msg('f', "client gave up\0"));
	$r = $c->read_result;
	is(PoolTest::Raw::sqlstate($r), '57014', 'CopyFail reported as 57014');
	like($r->{errors}[0]{M} // '', qr/client gave up/, 'CopyFail message relayed');
	is($c->query_value('SELECT count(*) FROM cpe'), '0', 'failed COPYs left nothing');
	$r = $c->query('COPY cpe FROM STDIN');
	$c->send_bytes(PoolTest::Raw::msg('d', "7\n8\n") . PoolTest::Raw::msg('c', ''));
	$r = $c->read_result;
	is_deeply($r->{tags}, ['COPY 2'], 'COPY FROM STDIN via raw protocol');
	is($c->query_value('SELECT sum(a) FROM cpe'), '15', 'copied rows');

	$c->terminate;
}

###########################################################################
# 4. psql: transactions, aborted block, COPY, \copy, SET/SHOW.
###########################################################################

my $out = $node->pool_safe_psql('app', q{
CREATE TABLE t1 (a int);
BEGIN; INSERT INTO t1 VALUES (1); ROLLBACK;
BEGIN; INSERT INTO t1 VALUES (2); COMMIT;
SELECT array_agg(a) FROM t1;
});
is($out, '{2}', 'BEGIN/ROLLBACK/COMMIT');

my ($ret, $stdout, $stderr) = $node->pool_psql('app', q{
\set VERBOSITY verbose
BEGIN;
SELECT 1/0;
SELECT 1;
ROLLBACK;
SELECT 'after';
}, on_error_stop => 0);
like($stderr, qr/ERROR:  25P02: current transaction is aborted, commands ignored until end of transaction block/,
	'psql: aborted transaction block reports 25P02');
like($stdout, qr/after$/, 'psql: session usable after ROLLBACK');

($ret, $stdout, $stderr) = $node->pool_psql('app',
	q{DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$;});
like($stderr, qr/NOTICE:  hello 42/, 'psql: NOTICE delivered');

$out = $node->pool_safe_psql('app', qq{
CREATE TABLE cp (a int, b text);
COPY cp FROM STDIN;
1\tone
2\ttwo
\\.
SELECT count(*), string_agg(b, ',' ORDER BY a) FROM cp;
});
is($out, '2|one,two', 'COPY FROM STDIN through psql');

# a larger COPY (several network reads)
my $copy_data = join('', map { "$_\tvalue number $_\n" } 1 .. 20000);
$out = $node->pool_safe_psql('app', "CREATE TABLE cpbig (a int, b text);\nCOPY cpbig FROM STDIN;\n${copy_data}\\.\nSELECT count(*), sum(a) FROM cpbig;");
is($out, '20000|200010000', 'large COPY FROM STDIN');

$out = $node->pool_safe_psql('app', 'COPY cp TO STDOUT');
is($out, "1\tone\n2\ttwo", 'COPY TO STDOUT');
($ret, $stdout) = main_psql('COPY cpbig TO STDOUT');
is($node->pool_safe_psql('app', 'COPY cpbig TO STDOUT'), $stdout,
	'large COPY TO STDOUT same as main port');

my $dir = PostgreSQL::Test::Utils::tempdir;
$out = $node->pool_safe_psql('app', qq{
\\copy cpbig TO '$dir/cp.txt'
CREATE TABLE cpbig2 (LIKE cpbig);
\\copy cpbig2 FROM '$dir/cp.txt'
SELECT count(*) FROM (SELECT * FROM cpbig EXCEPT SELECT * FROM cpbig2) d;
SELECT count(*) FROM cpbig2;
});
is($out, "0\n20000", '\copy round trip');
is( slurp_file("$dir/cp.txt"),
	$copy_data, '\copy TO file content');

$out = $node->pool_safe_psql('app', q{
SET work_mem = '7MB';
SHOW work_mem;
SET search_path = public, pg_catalog;
SHOW search_path;
SET DateStyle = 'SQL, DMY';
SELECT '2024-01-02'::date;
RESET ALL;
SHOW work_mem;
});
is($out, "7MB\npublic, pg_catalog\n02/01/2024\n4MB", 'SET / SHOW / RESET ALL');

# Terminate: psql exits cleanly (it sends Terminate on exit)
($ret, $stdout, $stderr) = $node->pool_psql('app', 'SELECT 1');
is($ret, 0, 'psql exit code 0');
is($stderr, '', 'psql printed nothing on stderr');

# inet_client_addr(): TCP through the pool shows the client address
is( $node->pool_safe_psql('app',
		'SELECT inet_client_addr(), inet_client_port() > 0'),
	'127.0.0.1|t',
	'inet_client_addr() through the pool port');
is( $node->pool_safe_psql('app',
		'SELECT inet_client_addr() IS NULL', unix => 1),
	't',
	'inet_client_addr() is NULL through the Unix socket, as on the main port');

###########################################################################
# 5. Unix socket pool port
###########################################################################

ok(-S $pool_sock, "pool Unix socket $pool_sock exists");
is($node->pool_safe_psql('app', 'SELECT 40 + 2', unix => 1),
	'42', 'psql through the Unix socket pool port');
{
	my $c = PoolTest::Raw->new(path => $pool_sock);
	ok($c->login(user => 'app', database => 'app'), 'raw login via Unix socket');
	is($c->query_value('SELECT 7'), '7', 'raw query via Unix socket');
	$c->terminate;
}

###########################################################################
# 6. pool_status(), pool_pools, pool_listener_stats(), pg_stat_activity
###########################################################################

my $bg = $node->pool_bg_psql('app');
my $bgpid = bgq($bg, 'SELECT pg_backend_pid()');
like($bgpid, qr/^\d+$/, 'pg_backend_pid() through the pool');
isnt($bgpid, $node->safe_psql('postgres', 'SELECT pg_backend_pid()'),
	'pool pid differs from a main port backend');

my @st = $node->pool_status("pid = $bgpid");
is(scalar @st, 1, 'pool_status() has a row for the executor');
if (@st)
{
	is($st[0]{port}, $pp, 'pool_status port');
	is($st[0]{database}, 'app', 'pool_status database');
	is($st[0]{role}, 'app', 'pool_status role');
	is($st[0]{dedicated}, 'f', 'not dedicated');
	like($st[0]{state}, qr/^(idle|running)$/, 'executor state');
	cmp_ok($st[0]{sessions}, '>=', 1, 'executor holds the session');
	cmp_ok($st[0]{transactions}, '>', 0, 'transactions counted');
	cmp_ok($st[0]{bytes_in}, '>', 0, 'bytes_in counted');
	cmp_ok($st[0]{bytes_out}, '>', 0, 'bytes_out counted');
}
is( bgq($bg,
		q{SELECT state, sessions >= 1, active >= 1 FROM pool_status() WHERE pid = pg_backend_pid()}
	),
	'running|t|t',
	'pool_status() seen from the running session itself');

my $pool = $node->pool_pool('app', 'app');
ok($pool, 'pool_pools has the (port, app, app) pool');
if ($pool)
{
	cmp_ok($pool->{executors}, '>=', 1, 'pool has an executor');
	cmp_ok($pool->{executors}, '<=', 2, 'at most session_pool_size executors');
	cmp_ok($pool->{sessions}, '>=', 1, 'pool counts the session');
}

is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'}
	),
	'1',
	'one listener in pg_stat_activity');
is( $node->safe_psql('postgres',
		qq{SELECT backend_type FROM pg_stat_activity WHERE pid = $bgpid}),
	'builtin_pool executor',
	'executor in pg_stat_activity');

my ($acc) = $node->safe_psql('postgres',
	'SELECT accepted > 0 FROM pool_listener_stats()');
is($acc, 't', 'pool_listener_stats() counts accepted connections');

# A session that ends is removed from the executor's count.
{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->login(user => 'app', database => 'app');
	$c->query('SELECT 1');
	$c->terminate;
}
ok( wait_until(
		sub {
			my $p = $node->pool_pool('app', 'app');
			return $p && $p->{sessions} == 1;
		},
		10),
	'ended sessions leave the pool (only the background psql remains)');

$bg->quit;
ok( wait_until(
		sub {
			my $p = $node->pool_pool('app', 'app');
			return !$p || $p->{sessions} == 0;
		},
		10),
	'no session left after psql quit');

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
