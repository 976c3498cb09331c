
# Copyright (c) builtin_pool authors
#
# Prepared statements are private to each session, also when sessions share
# one executor (session_pool_size = 1, verified with pg_backend_pid()):
#   - SQL level: two sessions PREPARE the same name for different queries
#     and EXECUTE, interleaved, each getting its own results; duplicate and
#     unknown names raise core's errors (42P05, 26000) naming the client's
#     statement; DEALLOCATE, DEALLOCATE ALL, DISCARD ALL (the original
#     prototype's bug) and DISCARD PLANS in one session leave the other's
#     statements working; PREPARE is not transactional, as in core; EXPLAIN
#     EXECUTE and CREATE TABLE AS EXECUTE run the caller's statement;
#     statement names up to NAMEDATALEN - 1 bytes stay distinct, as in core;
#   - protocol level (raw client): the same statement name parsed with
#     different queries by two sessions, interleaved transactions, Describe,
#     Close, the unnamed statement per session;
#   - pool_prepared_statements shows a session its own statements under its
#     own names, and so does pg_prepared_statements through the pool;
#     the SRF pg_prepared_statement() still lists the whole executor's
#     table (internal keys): after a session ends its statements are gone
#     from it;
#   - a session moved to another executor (its executor pinned by another
#     session) keeps its statements as core would: search_path of PREPARE
#     time, the changed result type of a cached SELECT * (0A000), the
#     unnamed statement, the last statement PREPAREd under a name;
#   - a Parse (+ Sync) of a session waiting while every executor of its
#     pool is held by another session's idle transaction is answered at
#     once from the raw parser; a syntax error still comes at the session's
#     turn, a parse analysis error at the statement's first Bind (README,
#     Limitations);
#   - pgbench through the pool with -M extended and -M prepared (TPC-B and
#     select-only), 200 clients, session_pool_size = 4, no failed
#     transaction (-M prepared TPC-B with 100 clients per pgbench thread
#     too: the blocking PQprepare is answered ahead); BP_BIG=1 adds 1,000
#     clients (open-file limit >= 4096).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(usleep time);

###########################################################################
# Raw protocol helpers
###########################################################################

sub fe_msg
{
	my ($type, $payload) = @_;
	return $type . pack('N', 4 + length $payload) . $payload;
}

sub P
{
	my ($name, $query, @oids) = @_;
	return fe_msg('P',
		"$name\0$query\0" . pack('n', scalar @oids) . join('', map { pack('N', $_) } @oids));
}

# Bind with text parameters, text results
sub B
{
	my ($portal, $stmt, @params) = @_;
	my $b = "$portal\0$stmt\0" . pack('n', 0) . pack('n', scalar @params);
	for my $v (@params)
	{
		$b .= defined $v ? pack('N', length $v) . $v : pack('l>', -1);
	}
	return fe_msg('B', $b . pack('n', 0));
}

sub D { my ($kind, $name) = @_; return fe_msg('D', "$kind$name\0"); }
sub C { my ($kind, $name) = @_; return fe_msg('C', "$kind$name\0"); }
sub E { my ($portal, $max) = @_; return fe_msg('E', "$portal\0" . pack('N', $max // 0)); }
sub S { return fe_msg('S', ''); }

# send BYTES, read until ReadyForQuery; result as PoolTest::Raw::read_result
# plus param_types (ParameterDescription OIDs)
sub ext
{
	my ($c, $bytes) = @_;
	$c->send_bytes($bytes) or return { complete => 0, errors => [], rows => [], types => '' };
	return $c->read_result;
}

# Extended-protocol run of one statement: Parse (name), Bind, Execute, Sync
sub ext_exec
{
	my ($c, $name, @params) = @_;
	return ext($c, B('', $name, @params) . E('', 0) . S());
}

sub rows_str
{
	my ($r) = @_;
	return join(';', map { join(',', map { $_ // 'NULL' } @$_) } @{ $r->{rows} });
}

sub err_str
{
	my ($r) = @_;
	return '' unless $r->{errors} && @{ $r->{errors} };
	return "$r->{errors}[0]{C}: $r->{errors}[0]{M}";
}

###########################################################################
# Node with one executor per pool
###########################################################################

my $node = pool_node('prepared', size => 1);
$node->start;
setup_app($node);
my $pp = $node->pool_port;

pool_serves_ok($node);

$node->safe_psql('app', q{
	CREATE TABLE items (id int PRIMARY KEY, label text);
	INSERT INTO items SELECT i, 'item' || i FROM generate_series(1, 1000) i;
	ANALYZE items;
	ALTER TABLE items OWNER TO app;
});

sub pool_conn
{
	my ($name) = @_;
	my $c = PoolTest::Raw->new(port => $pp, timeout => 15);
	$c->login(user => 'app', database => 'app', application_name => $name)
	  or die "login $name failed";
	return $c;
}

sub main_conn
{
	my $c = PoolTest::Raw->new(port => $node->port, timeout => 15);
	$c->login(user => 'app', database => 'app', application_name => 'main')
	  or die 'login through the main port failed';
	return $c;
}

my $A = pool_conn('A');
my $B = pool_conn('B');
my $M = main_conn();

my $pidA = $A->query_value('SELECT pg_backend_pid()');
my $pidB = $B->query_value('SELECT pg_backend_pid()');
like($pidA, qr/^\d+$/, 'A has an executor pid');
is($pidB, $pidA, 'A and B share one executor (same pg_backend_pid())');

# sq(CONN, SQL): rows string, or "SQLSTATE: message" on error
# Prepared statements an executor holds for its sessions (pool_status)
sub executor_statements
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT statements FROM pool_status() WHERE pid = $pid");
}

sub sq
{
	my ($c, $sql) = @_;
	my $r = $c->query($sql);
	return 'NO REPLY' unless $r->{complete};
	return err_str($r) if @{ $r->{errors} };
	return rows_str($r);
}

###########################################################################
# 1. SQL PREPARE / EXECUTE, same name, different queries, interleaved
###########################################################################

is(sq($A, q{PREPARE q(int) AS SELECT 'A:' || $1}), '', 'A: PREPARE q');
is(sq($B, q{PREPARE q(int) AS SELECT 'B:' || ($1 * 2)}), '', 'B: PREPARE q (same name)');
is(sq($A, q{PREPARE only_a AS SELECT 'only A'}), '', 'A: PREPARE only_a');
is(sq($B, q{PREPARE only_b(text) AS SELECT upper($1)}), '', 'B: PREPARE only_b');

for my $i (1 .. 5)
{
	is(sq($A, "EXECUTE q($i)"), "A:$i", "A: EXECUTE q($i), round $i");
	is(sq($B, "EXECUTE q($i)"), 'B:' . ($i * 2), "B: EXECUTE q($i), round $i");
}
is(sq($A, 'EXECUTE only_a'), 'only A', 'A: EXECUTE only_a');
is(sq($B, q{EXECUTE only_b('b')}), 'B', 'B: EXECUTE only_b');

# errors name the client's statement, with core's SQLSTATEs; the main
# port says the same
is(sq($M, q{PREPARE q(int) AS SELECT 1}), '', 'main: PREPARE q');
for my $case (
	[ q{PREPARE q(int) AS SELECT 2}, 'PREPARE an existing name (42P05)' ],
	[ 'EXECUTE only_b(1)', "EXECUTE another session's statement (26000)" ],
	[ 'EXECUTE nosuch', 'EXECUTE unknown (26000)' ],
	[ 'DEALLOCATE only_b', "DEALLOCATE another session's statement (26000)" ],
	[ 'DEALLOCATE nosuch', 'DEALLOCATE unknown (26000)' ],
	[ 'EXPLAIN EXECUTE nosuch', 'EXPLAIN EXECUTE unknown (26000)' ],
	[ 'CREATE TABLE x_nosuch AS EXECUTE nosuch', 'CREATE TABLE AS EXECUTE unknown (26000)' ],
	[ 'EXECUTE q', 'EXECUTE with a missing parameter (42601)' ],
	[ q{EXECUTE q('x')}, 'EXECUTE with a bad parameter (22P02)' ])
{
	my ($sql, $what) = @$case;
	my $want = sq($M, $sql);
	like($want, qr/^[0-9A-Z]{5}: /, "main: $what fails");
	is(sq($A, $sql), $want, "A: $what: same error as the main port");
}
like(sq($A, q{PREPARE q(int) AS SELECT 2}), qr/^42P05: prepared statement "q" already exists$/,
	'A: duplicate name error names "q"');
like(sq($A, 'EXECUTE only_b(1)'), qr/^26000: prepared statement "only_b" does not exist$/,
	'A: unknown name error names "only_b"');
is(sq($B, 'EXECUTE q(3)'), 'B:6', "B's q unaffected by A's errors");

# PREPARE is not transactional (as in core)
{
	my $sql = q{BEGIN; PREPARE in_tx AS SELECT 'tx'; ROLLBACK};
	sq($M, $sql);
	sq($A, $sql);
	my $want = sq($M, 'EXECUTE in_tx');
	is($want, 'tx', 'main: PREPARE survives ROLLBACK');
	is(sq($A, 'EXECUTE in_tx'), $want, 'A: PREPARE survives ROLLBACK, as in core');
	is(sq($B, 'EXECUTE in_tx'), "26000: prepared statement \"in_tx\" does not exist",
		"B does not see A's in_tx");
}

# Names up to NAMEDATALEN - 1 (63) bytes are distinct in core; the pool's
# per-session key must not make two of them collide.
{
	my $n1 = ('n' x 60) . 'x1';     # 62 bytes
	my $n2 = ('n' x 60) . 'x2';     # 62 bytes
	for my $c ([ main => $M ], [ A => $A ])
	{
		my ($label, $conn) = @$c;
		is(sq($conn, qq{PREPARE $n1 AS SELECT 'first'}), '', "$label: PREPARE 62-byte name 1");
		is(sq($conn, qq{PREPARE $n2 AS SELECT 'second'}), '',
			"$label: PREPARE 62-byte name 2, differing in the last bytes");
		is(sq($conn, "EXECUTE $n1"), 'first', "$label: EXECUTE 62-byte name 1");
		is(sq($conn, "EXECUTE $n2"), 'second', "$label: EXECUTE 62-byte name 2");
		sq($conn, "DEALLOCATE $n1; DEALLOCATE $n2");
	}
	my $p1 = ('p' x 58) . 'one';    # 61 bytes, protocol level
	my $p2 = ('p' x 58) . 'two';
	for my $c ([ main => $M ], [ A => $A ])
	{
		my ($label, $conn) = @$c;
		my $r = ext($conn, P($p1, q{SELECT 'one'}) . P($p2, q{SELECT 'two'}) . S());
		is(err_str($r), '', "$label: Parse two 61-byte names differing at the end");
		is(rows_str(ext_exec($conn, $p1)) . '|' . rows_str(ext_exec($conn, $p2)), 'one|two',
			"$label: each 61-byte name runs its own query");
		is( sq($conn, q{SELECT name FROM pool_prepared_statements WHERE name LIKE 'ppp%' ORDER BY name}),
			"$p1;$p2", "$label: pool_prepared_statements shows both long names in full");
		ext($conn, C('S', $p1) . C('S', $p2) . S());
	}
	# beyond 63 bytes core keeps the first 63: names differing after that
	# are the same statement
	my $l1 = ('L' x 63) . 'one-more';
	my $l2 = ('L' x 63) . 'two-more';
	my %res;
	for my $c ([ main => $M ], [ A => $A ])
	{
		my ($label, $conn) = @$c;
		my $r1 = ext($conn, P($l1, q{SELECT 'long'}) . S());
		my $r2 = ext($conn, P($l2, q{SELECT 'longer'}) . S());
		$res{$label} = join('|', err_str($r1), err_str($r2), rows_str(ext_exec($conn, $l2)),
			sq($conn, q{SELECT name FROM pool_prepared_statements WHERE name LIKE 'LLL%'}));
		ext($conn, C('S', $l1) . S());
	}
	like($res{main}, qr/^\|42P05: prepared statement "L+two-more" already exists\|long\|L{63}$/,
		'main: names longer than 63 bytes are cut to 63');
	is($res{A}, $res{main}, 'pool: names longer than 63 bytes behave as on the main port');
}

###########################################################################
# 2. pool_prepared_statements, pg_prepared_statements
###########################################################################

is( sq($A, q{SELECT name, statement, from_sql FROM pool_prepared_statements WHERE name = 'only_a'}),
	q{only_a,PREPARE only_a AS SELECT 'only A',t}, 'pool_prepared_statements in A: only_a');
is( sq($A, 'SELECT string_agg(name, \',\' ORDER BY name) FROM pool_prepared_statements'),
	'in_tx,only_a,q', 'A sees its own statements under its own names');
is( sq($B, 'SELECT string_agg(name, \',\' ORDER BY name) FROM pool_prepared_statements'),
	'only_b,q', 'B sees its own statements under its own names');
is( sq($A, q{SELECT statement FROM pool_prepared_statements WHERE name = 'q'}),
	q{PREPARE q(int) AS SELECT 'A:' || $1}, "A's q is A's query");
is( sq($B, q{SELECT statement FROM pool_prepared_statements WHERE name = 'q'}),
	q{PREPARE q(int) AS SELECT 'B:' || ($1 * 2)}, "B's q is B's query");
is( sq($B, q{SELECT parameter_types::text FROM pool_prepared_statements WHERE name = 'only_b'}),
	'{text}', 'parameter_types shown');
is(sq($M, q{SELECT count(*) FROM pool_prepared_statements WHERE name = 'q'}), '1',
	'main port: pool_prepared_statements = pg_prepared_statements');

# through the pool, pg_prepared_statements and the SRF behind it show B its
# own 2; the executor holds A's 3 too (pool_status)
is(sq($B, 'SELECT count(*) FROM pg_prepared_statements'), '2',
	'pg_prepared_statements through the pool: B sees its own 2');
is(sq($B, 'SELECT count(*) FROM pg_prepared_statement()'), '2',
	'pg_prepared_statement() through the pool: B sees its own 2');
is(sq($B, 'SELECT count(*) FROM pg_prepared_statement() WITH ORDINALITY'), '2',
	'pg_prepared_statement() WITH ORDINALITY: B sees its own 2');
like(sq($B, 'SELECT pg_prepared_statement()'),
	qr/^0A000: pg_prepared_statement\(\) can only be read alone in FROM/,
	'pg_prepared_statement() in a target list: refused, not leaked');
is(executor_statements($pidA), '5', 'pool_status: the executor holds 5 statements');

###########################################################################
# 3. DEALLOCATE, DEALLOCATE ALL, DISCARD PLANS, DISCARD ALL: caller only
###########################################################################

is(sq($A, 'DEALLOCATE only_a'), '', 'A: DEALLOCATE only_a');
is(sq($A, 'EXECUTE only_a'), '26000: prepared statement "only_a" does not exist', 'A: only_a gone');
is(sq($B, 'EXECUTE q(1)'), 'B:2', "B's q still works after A's DEALLOCATE");

is(sq($A, 'DEALLOCATE ALL'), '', 'A: DEALLOCATE ALL');
is(sq($A, 'EXECUTE q(1)'), '26000: prepared statement "q" does not exist', "A's q gone");
is(sq($B, 'EXECUTE q(2)'), 'B:4', "B's q survives A's DEALLOCATE ALL");
is(sq($B, q{EXECUTE only_b('x')}), 'X', "B's only_b survives A's DEALLOCATE ALL");
is(sq($A, 'SELECT count(*) FROM pool_prepared_statements'), '0', 'A has no statements left');
is(sq($B, 'SELECT count(*) FROM pool_prepared_statements'), '2', 'B still has 2');

is(sq($A, q{PREPARE q(int) AS SELECT 'A again:' || $1}), '', 'A: PREPARE q again');
is(sq($A, 'DISCARD PLANS'), '', 'A: DISCARD PLANS');
is(sq($B, 'EXECUTE q(3)'), 'B:6', "B's q works after A's DISCARD PLANS");
is(sq($A, 'EXECUTE q(3)'), 'A again:3', "A's q works after its DISCARD PLANS");

is(sq($A, 'BEGIN; DISCARD ALL'), sq($M, 'BEGIN; DISCARD ALL'),
	'DISCARD ALL in a transaction block: same error as the main port');
sq($A, 'ROLLBACK');
sq($M, 'ROLLBACK');
is(sq($A, 'EXECUTE q(4)'), 'A again:4', "A's q survived the failed DISCARD ALL");

# protocol-level statement of B too, to check DISCARD ALL spares it
is(err_str(ext($B, P('b_proto', q{SELECT 'b proto ' || $1::text}) . S())), '', 'B: Parse b_proto');

is(sq($A, 'DISCARD ALL'), '', 'A: DISCARD ALL');
is(sq($A, 'EXECUTE q(1)'), '26000: prepared statement "q" does not exist', "A's q gone after DISCARD ALL");
is(sq($B, 'EXECUTE q(5)'), 'B:10', "B's q survives A's DISCARD ALL (the prototype's bug)");
is(sq($B, q{EXECUTE only_b('y')}), 'Y', "B's only_b survives A's DISCARD ALL");
is(rows_str(ext_exec($B, 'b_proto', 'z')), 'b proto z', "B's protocol statement survives A's DISCARD ALL");
is(sq($B, 'SELECT count(*) FROM pool_prepared_statements'), '3', 'B still has its 3 statements');

# DEALLOCATE ALL / DISCARD ALL through the extended protocol
is(sq($A, q{PREPARE q(int) AS SELECT 'A3:' || $1}), '', 'A: PREPARE q once more');
{
	my $r = ext($A, P('', 'DISCARD ALL') . B('', '') . E('', 0) . S());
	is(err_str($r), '', 'A: DISCARD ALL through Parse/Bind/Execute');
	is(sq($A, 'EXECUTE q(1)'), '26000: prepared statement "q" does not exist', "A's q gone");
	is(sq($B, 'EXECUTE q(6)'), 'B:12', "B's q survives A's extended-protocol DISCARD ALL");
}

###########################################################################
# 4. EXPLAIN EXECUTE, CREATE TABLE AS EXECUTE
###########################################################################

is(sq($A, q{PREPARE e(int) AS SELECT label FROM items WHERE id = $1}), '', 'A: PREPARE e (index scan)');
is(sq($B, q{PREPARE e(int) AS SELECT $1 + 1 AS n}), '', 'B: PREPARE e (no table)');
like(sq($A, 'EXPLAIN (COSTS OFF) EXECUTE e(7)'), qr/Index Scan using items_pkey on items/,
	"A: EXPLAIN EXECUTE e shows A's plan");
like(sq($B, 'EXPLAIN (COSTS OFF) EXECUTE e(7)'), qr/^Result$/,
	"B: EXPLAIN EXECUTE e shows B's plan");
like( sq($A, 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE e(7)'),
	qr/Index Scan using items_pkey on items \(actual rows=1 loops=1\)/,
	'A: EXPLAIN ANALYZE EXECUTE runs A\'s statement');
{
	my $r = ext($A, P('', 'EXPLAIN (COSTS OFF) EXECUTE e(8)') . B('', '') . E('', 0) . S());
	like(err_str($r) || rows_str($r), qr/Index Scan using items_pkey/, 'A: EXPLAIN EXECUTE through the extended protocol');
}

is(sq($A, 'CREATE TABLE ctas_a AS EXECUTE e(42)'), '', 'A: CREATE TABLE AS EXECUTE e');
is(sq($B, 'CREATE TABLE ctas_b AS EXECUTE e(42)'), '', 'B: CREATE TABLE AS EXECUTE e');
is(sq($A, 'SELECT * FROM ctas_a'), 'item42', "ctas_a holds A's result");
is(sq($B, 'SELECT * FROM ctas_b'), '43', "ctas_b holds B's result");
is(sq($A, 'CREATE TABLE ctas_a2 AS EXECUTE e(5) WITH NO DATA'), '', 'A: CREATE TABLE AS EXECUTE WITH NO DATA');
is( sq($A, q{SELECT count(*), min(atttypid::regtype::text) FROM pg_attribute WHERE attrelid = 'ctas_a2'::regclass AND attnum > 0}),
	'1,text', "ctas_a2 has A's column type");

###########################################################################
# 5. Protocol level: same name, different queries, interleaved
###########################################################################

{
	my $ra = ext($A, P('ps', q{SELECT 'A-ps:' || $1::text}, 0) . D('S', 'ps') . S());
	my $rb = ext($B, P('ps', q{SELECT ('B-ps:' || ($1 * 10))::text, $2::int AS second}, 23, 23) . D('S', 'ps') . S());
	is(err_str($ra), '', 'A: Parse ps');
	is(err_str($rb), '', 'B: Parse ps (same name)');
	like($ra->{types}, qr/^1tTZ$/, 'A: ParseComplete, ParameterDescription, RowDescription');
	like($rb->{types}, qr/^1tTZ$/, 'B: same message sequence');

	for my $i (1 .. 5)
	{
		# alternating: a transaction block of A, a transaction of B, an
		# implicit transaction of A
		$A->send_bytes(fe_msg('Q', "BEGIN\0") . B('', 'ps', $i) . E('', 0) . S() . fe_msg('Q', "COMMIT\0"))
		  or die;
		my @ra = map { $A->read_result } 1 .. 3;
		is(join('|', map { $_->{status} // '?' } @ra), 'T|T|I', "A: BEGIN, Execute, COMMIT statuses ($i)");
		is(rows_str($ra[1]), "A-ps:$i", "A: Execute its ps in a transaction block ($i)");
		my $b = ext($B, B('', 'ps', $i, $i + 1) . E('', 0) . S());
		is(rows_str($b), 'B-ps:' . ($i * 10) . ',' . ($i + 1), "B: Execute its ps ($i)");
		my $a2 = ext_exec($A, 'ps', "x$i");
		is(rows_str($a2), "A-ps:x$i", "A: Execute its ps ($i)");
	}

	my $dup = ext($A, P('ps', 'SELECT 1') . S());
	like(err_str($dup), qr/^42P05: prepared statement "ps" already exists$/, 'A: Parse ps again: 42P05');
	my $wrong = ext_exec($A, 'ps', '1', '2');
	like(err_str($wrong),
		qr/^08P01: bind message supplies 2 parameters, but prepared statement "ps" requires 1$/,
		"A: Bind with B's parameter count is wrong for A's ps (08P01)");
	my $nob = ext_exec($A, 'b_proto', '1');
	like(err_str($nob), qr/^26000: prepared statement "b_proto" does not exist$/,
		"A: Bind to B's b_proto: 26000");

	# Close in A leaves B's
	is(err_str(ext($A, C('S', 'ps') . S())), '', 'A: Close ps');
	like(err_str(ext_exec($A, 'ps', 'x')), qr/^26000/, "A's ps gone");
	is(rows_str(ext_exec($B, 'ps', 7, 8)), 'B-ps:70,8', "B's ps survives A's Close");

	# the unnamed statement is per session
	is(err_str(ext($A, P('', q{SELECT 'unnamed A'}) . S())), '', 'A: Parse unnamed');
	is(err_str(ext($B, P('', q{SELECT 'unnamed B', 2}) . S())), '', 'B: Parse unnamed');
	is(rows_str(ext_exec($A, '')), 'unnamed A', "A: Bind unnamed runs A's");
	is(rows_str(ext_exec($B, '')), 'unnamed B,2', "B: Bind unnamed runs B's");

	# pipelined: both sessions send whole pipelines before reading
	my $pa = '';
	my $pb = '';
	for my $i (1 .. 20)
	{
		$pa .= B('', 'ps', "p$i") . E('', 0) . S();
		$pb .= B('', 'ps', $i, $i) . E('', 0) . S();
	}
	# A's ps was closed: prepare it again first
	ext($A, P('ps', q{SELECT 'A-ps:' || $1::text}) . S());
	$A->send_bytes($pa);
	$B->send_bytes($pb);
	my (@ga, @gb);
	for my $i (1 .. 20)
	{
		push @ga, rows_str($A->read_result);
		push @gb, rows_str($B->read_result);
	}
	is_deeply(\@ga, [ map { "A-ps:p$_" } 1 .. 20 ], 'A: 20 pipelined executions of its ps');
	is_deeply(\@gb, [ map { 'B-ps:' . ($_ * 10) . ",$_" } 1 .. 20 ], 'B: 20 pipelined executions of its ps');

	# SQL EXECUTE of a protocol statement, and protocol Bind of an SQL one
	is(sq($A, q{EXECUTE ps('sql')}), 'A-ps:sql', "A: SQL EXECUTE of its protocol ps");
	is(sq($B, 'EXECUTE ps(2, 3)'), 'B-ps:20,3', "B: SQL EXECUTE of its protocol ps");
	is(rows_str(ext_exec($B, 'q', 9)), 'B:18', "B: protocol Bind of its SQL q");

	is( sq($A, q{SELECT name, from_sql FROM pool_prepared_statements ORDER BY name}),
		'e,t;ps,f', 'A: pool_prepared_statements: e (SQL), ps (protocol)');
	is( sq($B, q{SELECT name, from_sql FROM pool_prepared_statements ORDER BY name}),
		'b_proto,f;e,t;only_b,t;ps,f;q,t', 'B: pool_prepared_statements');
}

is($A->query_value('SELECT pg_backend_pid()'), $pidA, 'A still on the same executor');
is($B->query_value('SELECT pg_backend_pid()'), $pidA, 'B still on the same executor');

###########################################################################
# 6. A session's statements go when it ends
###########################################################################

{
	my $own = sq($B, 'SELECT count(*) FROM pool_prepared_statements');
	is($own, '5', 'B owns 5 statements');
	is(executor_statements($pidA), '7', "pool_status: the executor holds B's 5 + A's 2");

	# a third session with many statements, then gone without Terminate
	my $Cc = pool_conn('C');
	is($Cc->query_value('SELECT pg_backend_pid()'), $pidA, 'C on the same executor');
	my $bytes = '';
	$bytes .= P("c$_", "SELECT $_") for 1 .. 50;
	is(err_str(ext($Cc, $bytes . S())), '', 'C: 50 protocol statements');
	sq($Cc, 'PREPARE c_sql AS SELECT 1');
	is(executor_statements($pidA), '58', 'the executor holds 58 statements');
	is(sq($B, 'SELECT count(*) FROM pg_prepared_statements'), '5', 'B sees its own 5 of them');

	$A->terminate;
	ok( wait_until(sub { executor_statements($pidA) eq '56' }, 20),
		"A terminated: its 2 statements are gone");
	$Cc->close;    # no Terminate: the connection just drops
	ok( wait_until(sub { executor_statements($pidA) eq '5' }, 20),
		"C dropped: its 51 statements are gone, B's 5 remain")
	  or diag('statements held: ' . executor_statements($pidA));
	is(sq($B, 'EXECUTE q(10)'), 'B:20', "B's statements still work");

	# a new session gets the id of no one: no statement of its own
	my $Dd = pool_conn('D');
	is(sq($Dd, 'SELECT count(*) FROM pool_prepared_statements'), '0', 'a new session starts with no statement');
	is(sq($Dd, 'EXECUTE q(1)'), '26000: prepared statement "q" does not exist', "D cannot run B's q");
	$Dd->terminate;
}

$B->terminate;
$M->terminate;

check_no_crash($node);

###########################################################################
# 6b. A Parse answered ahead while the pool is starved
###########################################################################

# pool of 1, no reserve or held executor: one idle transaction starves it
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET builtin_pool.reserve_pool_size = 0;
	ALTER SYSTEM SET builtin_pool.max_held_executors = 0;
	SELECT pg_reload_conf()});
{
	my $holder = pool_conn('holder');
	my $w = pool_conn('waiter');
	ok( wait_until(
			sub { $w->query_value('SHOW builtin_pool.max_held_executors') eq '0' }, 10),
		'starved pool: settings reloaded');
	is($holder->query('BEGIN')->{status}, 'T', 'starved pool: a session opens a transaction');
	is($holder->query_value('SELECT 1'), '1', 'and sits idle in it');

	my $t0 = time();
	my $r = ext($w, P('ahead_ok', 'SELECT $1::int + 1') . S());
	ok($r->{complete} && !@{ $r->{errors} }, 'Parse + Sync is answered while the pool is starved')
	  or diag(err_str($r));
	cmp_ok(time() - $t0, '<', 3, 'at once, not after the transaction');
	is($r->{types}, '1Z', 'ParseComplete, ReadyForQuery');

	$r = ext($w, P('ahead_missing', 'SELECT * FROM no_such_table') . S());
	is(err_str($r), '', 'parse analysis waits for the turn: no error at Parse');

	$w->send_bytes(P('ahead_bad', 'SELEC 1') . S());
	$r = $w->read_result(1);
	ok(!$r->{complete}, 'a syntax error is not answered ahead: it waits for its turn');

	is($holder->query('COMMIT')->{status}, 'I', 'the transaction ends');
	$r = $w->read_result(10);
	is($r->{errors}[0]{C}, '42601', 'the syntax error comes at its turn, as core reports it');

	$r = ext_exec($w, 'ahead_ok', 41);
	is(rows_str($r), '42', 'the statement answered ahead runs');
	$r = ext($w, D('S', 'ahead_ok') . S());
	ok(index($r->{types}, 't') >= 0 && index($r->{types}, 'T') >= 0,
		'and describes');
	$r = ext_exec($w, 'ahead_missing');
	is($r->{errors}[0]{C}, '42P01',
		'its analysis error comes at the first Bind (README, Limitations)');
	$r = ext_exec($w, 'ahead_missing');
	is($r->{errors}[0]{C}, '26000', 'after which it does not exist, as after a failed Parse');
	$r = ext($w, P('ahead_missing', 'SELECT 2') . S());
	is(err_str($r), '', 'and its name can be used again');
	is(rows_str(ext_exec($w, 'ahead_missing')), '2', 'for the new statement');
	$holder->terminate;
	$w->terminate;
}
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET builtin_pool.reserve_pool_size;
	ALTER SYSTEM RESET builtin_pool.max_held_executors;
	SELECT pg_reload_conf()});

###########################################################################
# 7. pgbench -M extended / -M prepared through the pool
###########################################################################

$node->append_conf('postgresql.conf',
	"builtin_pool.session_pool_size = 4\nlog_statement = none\nmax_connections = 50\n");
$node->restart;
ok( wait_until(
		sub {
			my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 10);
			return $ret == 0 && $out eq '1';
		},
		30),
	'pool port serves after restart with session_pool_size = 4');

###########################################################################
# 7. Statements follow a session moved to another executor
###########################################################################

# When a session pins its executor (a temp table here), the executor's
# other sessions move to other executors with their statements, which are
# prepared again there.  They must behave as they did: core keeps a
# statement's search_path, reports a changed result type of a cached
# SELECT * (0A000), keeps the unnamed statement until the next Parse or
# simple Query, and runs the statement last prepared under a name.  A
# statement whose table was dropped before the move cannot be prepared
# again: it stays, failing as core's revalidation fails until the table is
# back, listed, and with core's 0A000 if its columns came back changed.
{
	$node->safe_psql('app', q{
		CREATE SCHEMA s1 AUTHORIZATION app; CREATE SCHEMA s2 AUTHORIZATION app;
		CREATE TABLE s1.tt (v text); INSERT INTO s1.tt VALUES ('from s1');
		CREATE TABLE s2.tt (v text); INSERT INTO s2.tt VALUES ('from s2');
		CREATE TABLE chg (a int, b int); INSERT INTO chg VALUES (1, 2);
		ALTER TABLE s1.tt OWNER TO app; ALTER TABLE s2.tt OWNER TO app;
		ALTER TABLE chg OWNER TO app;
		CREATE TABLE gone (a int); CREATE TABLE gone2 (a int);
		ALTER TABLE gone OWNER TO app; ALTER TABLE gone2 OWNER TO app;
	});

	# two sessions sharing an executor: among 8 sessions on 4 executors
	my @sess = map { pool_conn("mv$_") } 1 .. 8;
	my %by;
	push @{ $by{ $_->query_value('SELECT pg_backend_pid()') } }, $_ for @sess;
	my ($shared) = grep { @{ $by{$_} } >= 2 } sort keys %by;
	ok(defined $shared, 'two sessions share an executor');
	$shared //= (keys %by)[0];
	my ($Ap, $Bp) = @{ $by{$shared} };
	$_->terminate for grep { $_ != $Ap && $_ != $Bp } @sess;
	my $M2 = main_conn();

	my %before;
	for my $c ([ main => $M2 ], [ pool => $Bp ])
	{
		my ($label, $conn) = @$c;
		sq($conn, 'SET search_path = s1, public');
		sq($conn, 'PREPARE sp_q AS SELECT v FROM tt');
		sq($conn, 'SET search_path = s2, public');
		$before{$label} = sq($conn, 'EXECUTE sp_q');
		ext($conn, P('pr_star', 'SELECT * FROM chg') . D('S', 'pr_star') . S());
		sq($conn, 'PREPARE dd AS SELECT 1; DEALLOCATE dd; PREPARE dd AS SELECT 2');
		sq($conn, 'PREPARE typ(numeric) AS SELECT $1 * 2');
		ext($conn, P('pdecl', 'SELECT $1', 20) . S());
		ext($conn, P('', q{SELECT 'unnamed kept'}) . S());
		sq($conn, 'PREPARE gone_sql AS SELECT * FROM gone');
		ext($conn, P('gone_p', 'SELECT a FROM gone2 WHERE a > $1', 23) . S());
	}
	is($before{pool}, $before{main}, "search_path at PREPARE time counts ($before{main})");
	$node->safe_psql('app', 'ALTER TABLE chg ADD COLUMN c int DEFAULT 3');
	$node->safe_psql('app', 'DROP TABLE gone, gone2');

	# what pg_prepared_statements shows of them, which the move keeps
	sq($Bp, 'EXECUTE typ(1.5)') for 1 .. 6;
	my $history = q{SELECT string_agg(name || ' ' || prepare_time || ' ' || generic_plans
		|| '/' || custom_plans, ', ' ORDER BY name) FROM pg_prepared_statements};
	my $history_before = sq($Bp, $history);

	# A pins its executor: B moves
	is(sq($Ap, 'CREATE TEMP TABLE pin_me (x int)'), '', 'A: CREATE TEMP TABLE (pins)');
	ok( wait_until(
			sub {
				my @r = $node->pool_status("pid = $shared");
				return @r && $r[0]{sessions} == 1;
			},
			20),
		'B moved off the pinned executor');
	is(sq($Bp, $history), $history_before,
		'moved session: prepare times and plan counts kept');

	my %after;
	for my $c ([ main => $M2 ], [ pool => $Bp ])
	{
		my ($label, $conn) = @$c;
		my @r;
		my $r = ext_exec($conn, '');
		push @r, 'unnamed: ' . (err_str($r) || rows_str($r));
		$r = ext($conn, P('pidq', 'SELECT pg_backend_pid()') . B('', 'pidq') . E('', 0) . S());
		$after{"${label}_pid"} = rows_str($r);
		push @r, 'sp_q: ' . sq($conn, 'EXECUTE sp_q');
		$r = ext_exec($conn, 'pr_star');
		push @r, 'pr_star: ' . (err_str($r) || rows_str($r));
		push @r, 'dd: ' . sq($conn, 'EXECUTE dd');
		push @r, 'typ: ' . sq($conn, 'EXECUTE typ(1.5)');
		$r = ext($conn, D('S', 'pdecl') . S());
		push @r, 'pdecl: ' . ($r->{types} // '');
		push @r, 'names: ' . sq($conn, q{SELECT string_agg(name, ',' ORDER BY name) FROM pool_prepared_statements});
		push @r, 'gone_sql dropped: ' . sq($conn, 'EXECUTE gone_sql');
		$r = ext_exec($conn, 'gone_p', 0);
		push @r, 'gone_p dropped: ' . (err_str($r) || rows_str($r));
		push @r, 'gone_p described: ' . err_str(ext($conn, D('S', 'gone_p') . S()));
		$after{$label} = \@r;
	}

	# the tables come back, gone2 with its column's type changed
	$node->safe_psql('app', q{
		CREATE TABLE gone (a int); INSERT INTO gone VALUES (7);
		CREATE TABLE gone2 (a bigint); INSERT INTO gone2 VALUES (8);
		ALTER TABLE gone OWNER TO app; ALTER TABLE gone2 OWNER TO app;
	});
	for my $c ([ main => $M2 ], [ pool => $Bp ])
	{
		my ($label, $conn) = @$c;
		push @{ $after{$label} }, 'gone_sql back: ' . sq($conn, 'EXECUTE gone_sql');
		my $r = ext_exec($conn, 'gone_p', 0);
		push @{ $after{$label} }, 'gone_p back: ' . (err_str($r) || rows_str($r));
		push @{ $after{$label} }, 'gone dealloc: ' . sq($conn, 'DEALLOCATE gone_sql');
		push @{ $after{$label} }, 'gone names: '
		  . sq($conn, q{SELECT string_agg(name, ',' ORDER BY name) FROM pg_prepared_statements WHERE name LIKE 'gone%'});
	}
	isnt($after{pool_pid}, $shared, "B runs on another executor now ($after{pool_pid})");
	for my $i (0 .. $#{ $after{main} })
	{
		my ($what) = $after{main}[$i] =~ /^([\w ]+):/;
		is($after{pool}[$i], $after{main}[$i], "moved session: $what as on the main port");
	}
	like($after{main}[2], qr/^pr_star: 0A000: cached plan must not change result type$/,
		'main: a cached SELECT * reports the changed result type');
	my %main_gone = map { /^([\w ]+): (.*)$/ ? ($1 => $2) : () } @{ $after{main} };
	is($main_gone{'gone_sql dropped'}, '42P01: relation "gone" does not exist',
		'main: a statement whose table was dropped fails');
	is($main_gone{'gone_sql back'}, '7', 'main: and runs once the table is back');
	is($main_gone{'gone_p back'}, '0A000: cached plan must not change result type',
		'main: or fails if its columns came back changed');
	is($main_gone{'gone names'}, 'gone_p', 'main: listed until deallocated');

	is(sq($Ap, 'DROP TABLE pin_me'), '', 'A: DROP TABLE (unpins)');
	$Ap->terminate;
	$Bp->terminate;
	$M2->terminate;
}

pgbench_init($node);

# run_pgbench(NAME, CLIENTS, ARGS...): pgbench -T 5 through the pool port.
# A run still going 20 s after its end is stuck: the pool's executors and
# sessions are shown (diag) before pgbench is killed.
sub run_pgbench
{
	my ($name, $clients, @args) = @_;
	@args = ('-j', '2', @args) unless grep { $_ eq '-j' } @args;
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-c', $clients, '-T', '5',
		'-h', '127.0.0.1', '-p', $pp, '-U', 'app', @args, 'app');
	note "running: @cmd";
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err);
	my $deadline = time() + ($clients > 200 ? 40 : 25);
	while ($h->pumpable && time() < $deadline)
	{
		$h->pump_nb;
		usleep(100_000);
	}
	my %r;
	if ($h->pumpable)
	{
		$r{timed_out} = 1;
		diag("$name: pgbench stuck; pool_status():\n"
			  . $node->safe_psql('postgres',
				'SELECT pid, state, sessions, active, waiting, transactions FROM pool_status() ORDER BY pid')
			  . "\nexecutors in pg_stat_activity:\n"
			  . $node->safe_psql('app',
				q{SELECT pid, state, wait_event, left(query, 40) FROM pg_stat_activity WHERE backend_type = 'builtin_pool executor' ORDER BY pid}));
		$h->kill_kill;
	}
	else
	{
		$h->finish;
	}
	$r{rc} = $r{timed_out} ? 'killed' : $h->result(0);
	$r{out} = $out;
	$r{err} = $err;
	$r{processed} = $1 if $out =~ /number of transactions actually processed: (\d+)/;
	$r{failed} = $1 if $out =~ /number of failed transactions: (\d+)/;
	note "pgbench $name stdout:\n$out\nstderr:\n" . substr($err, 0, 4000);
	return \%r;
}

# check_pgbench(NAME, CLIENTS, ARGS...): the run's outcome, then that no
# client saw an error and every session went away.
sub check_pgbench
{
	my ($name, $clients, @args) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $r = run_pgbench($name, $clients, @args);
	ok(!$r->{timed_out}, "$name: finished in time");
	is($r->{rc}, 0, "$name: exit code 0");
	like($r->{out}, qr/number of clients: $clients\b/, "$name: $clients clients");
	is($r->{failed}, 0, "$name: number of failed transactions: 0");
	cmp_ok($r->{processed} // 0, '>', 0, "$name: transactions processed");
	unlike($r->{err}, qr/error|FATAL|aborted/i, "$name: no client error")
	  or diag(substr($r->{err}, 0, 2000));
	ok( wait_until(
			sub {
				my $p = $node->pool_pool('app', 'app');
				return !$p || $p->{sessions} == 0;
			},
			30),
		"$name: every session gone afterwards");
	return $r;
}

sub balances_ok
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is( $node->safe_psql('app', q{
			SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
			   AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
			   AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)}),
		't', "$name: TPC-B balances agree with the history");
	return;
}

my $clients = 200;
# pgbench -M prepared prepares each statement with a blocking PQprepare()
# when first used: with 100 clients per thread (-j 2) the thread waits on a
# session queued behind its own clients' transactions, which hold every
# executor, their results unread.  Such a Parse is answered ahead
# (parse_ahead.c), so the thread goes on.
for my $mode (qw(extended prepared))
{
	check_pgbench("-M $mode -S, $clients clients", $clients, '-M', $mode, '-S');
	check_pgbench("-M $mode TPC-B, $clients clients", $clients, '-M', $mode);
	balances_ok("-M $mode TPC-B");
}

# One client per thread takes the client-side deadlock out and checks
# prepared mode alone.
check_pgbench('-M prepared TPC-B, one client per thread', 32, '-M', 'prepared', '-j', '32');
balances_ok('-M prepared TPC-B, one client per thread');

SKIP:
{
	skip 'set BP_BIG=1 for the 1,000-client runs', 1 unless $ENV{BP_BIG};
	my $nofile = `sh -c 'ulimit -n'`;
	chomp $nofile;
	skip "open-file limit $nofile < 4096: 1,000 clients need more", 1
	  if $nofile ne 'unlimited' && $nofile < 4096;
	for my $mode (qw(extended prepared))
	{
		check_pgbench("-M $mode -S, 1000 clients", 1000, '-M', $mode, '-S');
		check_pgbench("-M $mode TPC-B, 1000 clients", 1000, '-M', $mode);
		balances_ok("-M $mode TPC-B, 1000 clients");
	}
}

# after all that, statements of the pgbench sessions are gone: a new
# session on any executor sees none of its own, and the executors' tables
# hold no leftover (pg_prepared_statement() through the pool is the
# executor's table; -M prepared left up to 200 x 5 behind had they leaked)
{
	my $c = pool_conn('after');
	is(sq($c, 'SELECT count(*) FROM pool_prepared_statements'), '0', 'new session: no statement');
	is(sq($c, 'SELECT count(*) FROM pg_prepared_statement()'), '0',
		"its executor holds no statement of pgbench's sessions");
	$c->terminate;
}

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
