
# Copyright (c) builtin_pool authors
#
# Sessions sharing one executor (session_pool_size = 1): same
# pg_backend_pid(), private SET values (work_mem, DateStyle,
# application_name, search_path, client_encoding), RESET to each session's
# own startup values, ParameterStatus per session (raw protocol), and
# switching only between transactions: with one executor a session waits
# while another holds a transaction open; with two executors it does not.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time);

my $node = pool_node('sharing', size => 1);
$node->start;
setup_app($node);
my $pp = $node->pool_port;

pool_serves_ok($node);

###########################################################################
# 1. Two psql sessions on one executor, interleaved SETs
###########################################################################

my $A = $node->pool_bg_psql('app');
my $B = $node->pool_bg_psql('app');

my $pidA = bgq($A, 'SELECT pg_backend_pid()');
my $pidB = bgq($B, 'SELECT pg_backend_pid()');
like($pidA, qr/^\d+$/, 'A has a pid');
is($pidB, $pidA, 'A and B are served by the same executor');
ok( wait_until(
		sub {
			my @st = $node->pool_status("pid = $pidA");
			return @st && $st[0]{sessions} == 2;
		},
		10),
	'pool_status: the executor holds both sessions');

# work_mem
my $wm0 = bgq($B, 'SHOW work_mem');
bgq($A, q{SET work_mem = '7MB'});
is(bgq($B, 'SHOW work_mem'), $wm0, "B does not see A's work_mem");
is(bgq($A, 'SHOW work_mem'), '7MB', 'A keeps its work_mem');
bgq($B, q{SET work_mem = '9MB'});
is(bgq($A, 'SHOW work_mem'), '7MB', "A does not see B's work_mem");
is(bgq($B, 'SHOW work_mem'), '9MB', 'B keeps its work_mem');
is( bgq($A, q{SELECT current_setting('work_mem')}),
	'7MB', 'current_setting() in A');

# DateStyle
bgq($A, q{SET DateStyle = 'SQL, DMY'});
is(bgq($B, q{SELECT '2024-01-02'::date}), '2024-01-02',
	"B formats dates with the default DateStyle");
is(bgq($A, q{SELECT '2024-01-02'::date}), '02/01/2024',
	"A formats dates with its DateStyle");
bgq($B, q{SET DateStyle = 'German'});
is(bgq($A, q{SELECT '2024-01-02'::date}), '02/01/2024', 'A unchanged');
is(bgq($B, q{SELECT '2024-01-02'::date}), '02.01.2024', 'B German');
is( bgq($A, q{SELECT '03/04/2024'::date::text}),
	'03/04/2024', 'A parses dates DMY (input side of DateStyle)');
is(bgq($B, 'SHOW DateStyle'), 'German, DMY', 'SHOW DateStyle in B');

# application_name
my $appB0 = bgq($B, 'SHOW application_name');
bgq($A, q{SET application_name = 'appA'});
is(bgq($B, 'SHOW application_name'), $appB0, "B keeps its application_name");
is(bgq($A, 'SHOW application_name'), 'appA', 'A sees its application_name');
bgq($B, q{SET application_name = 'appB'});
is(bgq($A, 'SHOW application_name'), 'appA', 'A unchanged by B');
is( bgq($B, q{SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()}),
	'appB',
	'pg_stat_activity shows the running session\'s application_name');

# search_path
bgq($A, q{CREATE SCHEMA sa; CREATE TABLE sa.t (x text); INSERT INTO sa.t VALUES ('A')});
bgq($B, q{CREATE SCHEMA sb; CREATE TABLE sb.t (x text); INSERT INTO sb.t VALUES ('B')});
bgq($A, 'SET search_path = sa');
bgq($B, 'SET search_path = sb');
is(bgq($A, 'SELECT x FROM t'), 'A', "A's search_path finds sa.t");
is(bgq($B, 'SELECT x FROM t'), 'B', "B's search_path finds sb.t");
is(bgq($A, 'SHOW search_path'), 'sa', 'A search_path');
is(bgq($B, 'SHOW search_path'), 'sb', 'B search_path');
is(bgq($A, 'SELECT x FROM t'), 'A', 'again A');

# client_encoding (the conversion itself, not only the setting)
my $encB0 = bgq($B, 'SHOW client_encoding');
bgq($A, q{SET client_encoding = 'LATIN1'});
is(bgq($B, 'SHOW client_encoding'), $encB0, "B keeps its client_encoding");
is(bgq($A, 'SHOW client_encoding'), 'LATIN1', 'A uses LATIN1');
is(bgq($A, 'SELECT chr(233)'), "\xe9", 'A receives LATIN1 bytes');
is(bgq($B, 'SELECT chr(233)'), "\xc3\xa9", 'B receives UTF8 bytes')
  if $encB0 eq 'UTF8';
is(bgq($A, 'SELECT chr(233)'), "\xe9", 'A still receives LATIN1 bytes');

# set_config(), SET rolled back, SET LOCAL
bgq($A, q{SELECT set_config('statement_timeout', '33s', false)});
my $stB = bgq($B, 'SHOW statement_timeout');
isnt($stB, '33s', "B does not see A's set_config()");
is(bgq($A, 'SHOW statement_timeout'), '33s', 'A sees its set_config()');
bgq($A, q{BEGIN; SET work_mem = '11MB'; ROLLBACK});
is(bgq($A, 'SHOW work_mem'), '7MB', 'SET in a rolled back transaction undone');
is(bgq($A, q{BEGIN; SET LOCAL work_mem = '12MB'; SHOW work_mem; COMMIT}),
	'12MB', 'SET LOCAL visible inside the transaction');
is(bgq($A, 'SHOW work_mem'), '7MB', 'SET LOCAL gone after COMMIT');
is(bgq($B, 'SHOW work_mem'), '9MB', 'B still 9MB');

# RESET / RESET ALL go back to each session's own values
bgq($A, 'RESET work_mem');
is(bgq($A, 'SHOW work_mem'), $wm0, 'RESET work_mem in A');
is(bgq($B, 'SHOW work_mem'), '9MB', 'RESET in A does not touch B');
bgq($A, 'RESET ALL');
is(bgq($A, 'SHOW DateStyle'), 'ISO, MDY', 'RESET ALL restores DateStyle in A');
is(bgq($A, 'SHOW search_path'), '"$user", public', 'RESET ALL restores search_path in A');
is(bgq($B, 'SHOW DateStyle'), 'German, DMY', 'B keeps German after A RESET ALL');
is(bgq($B, 'SELECT x FROM t'), 'B', 'B keeps its search_path after A RESET ALL');
bgq($B, 'RESET ALL');
is(bgq($B, 'SHOW work_mem'), $wm0, 'RESET ALL in B');
is(bgq($B, 'SHOW application_name'), $appB0, 'RESET ALL restores B application_name');

# startup options: RESET goes back to the session's startup value
my $C = $node->pool_bg_psql('app', extra => q{options='-c work_mem=5MB'});
is(bgq($C, 'SELECT pg_backend_pid()'), $pidA, 'C on the same executor');
is(bgq($C, 'SHOW work_mem'), '5MB', 'startup option applied to C');
is(bgq($A, 'SHOW work_mem'), $wm0, 'startup option of C not seen by A');
bgq($C, q{SET work_mem = '6MB'});
bgq($C, 'RESET work_mem');
is(bgq($C, 'SHOW work_mem'), '5MB', 'RESET returns C to its startup value');
bgq($A, 'RESET work_mem');
is(bgq($A, 'SHOW work_mem'), $wm0, 'RESET returns A to the default');
$C->quit;

# SQL prepared statements are private (same name in both sessions)
bgq($A, q{PREPARE ps AS SELECT 'from A'});
my ($o, $e) = bgq_err($B, 'EXECUTE ps');
like($e, qr/prepared statement "ps" does not exist/, "B cannot EXECUTE A's statement");
bgq($B, q{PREPARE ps AS SELECT 'from B'});
is(bgq($A, 'EXECUTE ps'), 'from A', 'A executes its own ps');
is(bgq($B, 'EXECUTE ps'), 'from B', 'B executes its own ps');
bgq($B, 'DEALLOCATE ALL');
is(bgq($A, 'EXECUTE ps'), 'from A', "B's DEALLOCATE ALL leaves A's statement");
is(bgq($A, 'SELECT count(*) FROM pg_prepared_statements'), '1',
	'pg_prepared_statements shows only A\'s own statement');
($o, $e) = bgq_err($B, 'EXECUTE ps');
like($e, qr/does not exist/, "B's statement gone");
bgq($A, 'DEALLOCATE ps');

# currval/lastval do not leak between sessions
bgq($A, 'CREATE SEQUENCE seq_a');
is(bgq($A, q{SELECT nextval('seq_a')}), '1', 'A nextval');
($o, $e) = bgq_err($B, q{SELECT currval('seq_a')});
like($e, qr/currval of sequence "seq_a" is not yet defined in this session/,
	"B does not see A's currval");
($o, $e) = bgq_err($B, 'SELECT lastval()');
like($e, qr/lastval is not yet defined in this session/, "B does not see A's lastval");
# A keeps its own across other sessions' transactions, as on its own
# backend, and never sees B's
is(bgq($A, q{SELECT nextval('seq_a')}), '2', 'A nextval again');
is(bgq($A, 'SELECT lastval()'), '2', 'A keeps its lastval while alone');
is(bgq($B, q{SELECT nextval('seq_a')}), '3', 'B nextval');
is(bgq($A, q{SELECT currval('seq_a'), lastval()}), '2|2',
	"after B ran, A still reads its own currval and lastval, not B's");
is(bgq($B, 'SELECT lastval()'), '3', 'B reads its own lastval');

$A->quit;
$B->quit;

# role settings (ALTER ROLE ... SET) apply to the role's sessions
$node->safe_psql('postgres', q{CREATE ROLE app2 LOGIN; ALTER ROLE app2 SET statement_timeout = '123s'});
is($node->pool_safe_psql('app', 'SHOW statement_timeout', user => 'app2'),
	'123s', 'ALTER ROLE ... SET applies to a pool session');
is( $node->pool_safe_psql('app',
		q{SET statement_timeout = '5s'; RESET statement_timeout; SHOW statement_timeout},
		user => 'app2'),
	'123s',
	'RESET returns to the role setting');

###########################################################################
# 2. ParameterStatus per session (raw protocol)
###########################################################################
{
	my $ra = PoolTest::Raw->new(port => $pp);
	my $rb = PoolTest::Raw->new(port => $pp);
	ok($ra->login(user => 'app', database => 'app', application_name => 'ra'),
		'raw A logged in');
	ok($rb->login(user => 'app', database => 'app', application_name => 'rb'),
		'raw B logged in');
	is($ra->{startup}{pid}, $rb->{startup}{pid},
		'both on the same executor (BackendKeyData pid)');
	isnt($ra->{startup}{key}, $rb->{startup}{key},
		'each session has its own cancel key');
	is($ra->{params}{application_name}, 'ra', 'A greeting application_name');
	is($rb->{params}{application_name}, 'rb', 'B greeting application_name');

	my $names = sub { join(',', map { "$_->[0]=$_->[1]" } @{ $_[0]{param_status} }) };

	my $r = $ra->query(q{SET DateStyle = 'SQL, DMY'});
	is($names->($r), 'DateStyle=SQL, DMY', 'A gets ParameterStatus for its SET');
	$r = $rb->query('SELECT 1');
	is($names->($r), '', 'B gets no ParameterStatus after A\'s SET');
	is_deeply($r->{rows}, [ ['1'] ], 'B served');
	$r = $ra->query('SELECT 1');
	is($names->($r), '', 'A gets no repeated ParameterStatus after a switch');

	$r = $rb->query(q{SET application_name = 'bb'});
	is($names->($r), 'application_name=bb', 'B gets ParameterStatus for application_name');
	$r = $ra->query(q{SELECT current_setting('application_name')});
	is($names->($r), '', 'A gets no ParameterStatus for B\'s application_name');
	is_deeply($r->{rows}, [ ['ra'] ], 'A keeps application_name ra');

	$r = $ra->query('RESET DateStyle');
	is($names->($r), 'DateStyle=ISO, MDY', 'A gets ParameterStatus on RESET');
	$r = $rb->query('SHOW DateStyle');
	is($names->($r), '', 'B: no ParameterStatus');
	is_deeply($r->{rows}, [ ['ISO, MDY'] ], 'B DateStyle default');

	$r = $ra->query(q{SET client_encoding = 'LATIN1'});
	is($names->($r), 'client_encoding=LATIN1', 'A: ParameterStatus client_encoding');
	$r = $rb->query('SHOW client_encoding');
	is($names->($r), '', 'B: no ParameterStatus client_encoding');
	is_deeply($r->{rows}, [ [ $rb->{params}{client_encoding} ] ],
		'B keeps its client_encoding');
	$r = $ra->query('SELECT chr(233)');
	is_deeply($r->{rows}, [ ["\xe9"] ], 'A gets LATIN1 data');
	$r = $rb->query('SELECT chr(233)');
	is_deeply($r->{rows}, [ ["\xc3\xa9"] ], 'B gets UTF8 data')
	  if $rb->{params}{client_encoding} eq 'UTF8';

	$r = $rb->query('RESET ALL');
	is($names->($r), 'application_name=rb', 'B: RESET ALL reports its own startup application_name');

	$ra->terminate;
	$rb->terminate;
}

###########################################################################
# 3. One executor, no reserve and no held executors: B waits while A's
#    transaction is open (never interleaved into it); t/031_scheduling.pl
#    shows a held executor's replacement, or a reserve executor, serving B
###########################################################################
$node->safe_psql('postgres',
	'ALTER SYSTEM SET builtin_pool.reserve_pool_size = 0; '
	  . 'ALTER SYSTEM SET builtin_pool.max_held_executors = 0; SELECT pg_reload_conf()');
ok( wait_until(
		sub {
			$node->pool_safe_psql('app',
				q{SELECT current_setting('builtin_pool.reserve_pool_size') || current_setting('builtin_pool.max_held_executors')})
			  eq '00';
		},
		10),
	'the executor has no reserve and no held executors now');
{
	my $ra = PoolTest::Raw->new(port => $pp);
	my $rb = PoolTest::Raw->new(port => $pp);
	ok($ra->login(user => 'app', database => 'app'), 'A logged in');
	ok($rb->login(user => 'app', database => 'app'), 'B logged in');
	is($ra->{startup}{pid}, $rb->{startup}{pid}, 'same executor');

	my $r = $ra->query('BEGIN');
	is($r->{status}, 'T', 'A in a transaction');
	$r = $ra->query('SELECT 1');
	is($r->{status}, 'T', 'A still in its transaction');

	my $t0 = time();
	$rb->send_query('SELECT 42');
	my $rb1 = $rb->read_result(1.5);
	ok(!$rb1->{complete}, 'B is not served while A holds a transaction open');
	is($rb1->{types}, '', 'B received nothing yet');

	ok( wait_until(
			sub {
				my @s = $node->pool_status("pid = $ra->{startup}{pid}");
				return @s && $s[0]{waiting} == 1;
			},
			5),
		'pool_status shows one waiting session');

	$r = $ra->query('COMMIT');
	is($r->{status}, 'I', 'A committed');
	my $rb2 = $rb->read_result(10);
	ok($rb2->{complete}, 'B served after A committed');
	is_deeply($rb2->{rows}, [ ['42'] ], 'B result');
	cmp_ok(time() - $t0, '>=', 1.4, 'B waited for A');

	# and the other way round: an aborted transaction block also holds
	$ra->query('BEGIN; SELECT 1/0');
	$rb->send_query('SELECT 43');
	$rb1 = $rb->read_result(1);
	ok(!$rb1->{complete}, 'B waits while A is in a failed transaction block');
	$r = $ra->query('ROLLBACK');
	is($r->{status}, 'I', 'A rolled back');
	$rb2 = $rb->read_result(10);
	is_deeply($rb2->{rows}, [ ['43'] ], 'B served after A rolled back');

	$ra->terminate;
	$rb->terminate;
}
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET builtin_pool.reserve_pool_size; '
	  . 'ALTER SYSTEM RESET builtin_pool.max_held_executors; SELECT pg_reload_conf()');

check_no_crash($node, 'one executor');

###########################################################################
# 4. Two executors: B is served while A holds a transaction open
###########################################################################
$node->append_conf('postgresql.conf', 'builtin_pool.session_pool_size = 2');
$node->restart;
ok( wait_until(
		sub {
			my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 10);
			return $ret == 0 && $out eq '1';
		},
		30),
	'pool port serves after restart');
{
	my $ra = PoolTest::Raw->new(port => $pp);
	ok($ra->login(user => 'app', database => 'app'), 'A logged in');
	my $r = $ra->query('BEGIN; SELECT 1');
	is($r->{status}, 'T', 'A holds a transaction open');

	my $rb = PoolTest::Raw->new(port => $pp);
	ok($rb->login(user => 'app', database => 'app'), 'B logged in');
	my $t0 = time();
	$r = $rb->query('SELECT 42, pg_backend_pid()', 5);
	ok($r->{complete}, 'B served while A holds a transaction (two executors)');
	cmp_ok(time() - $t0, '<', 5, 'B not delayed by A');
	is($r->{rows}[0][0], '42', 'B result');
	isnt($r->{rows}[0][1], $ra->{startup}{pid},
		'B ran on the other executor');

	my $pool = $node->pool_pool('app', 'app');
	is($pool->{executors}, 2, 'pool_pools: two executors') if $pool;
	is($pool->{sessions}, 2, 'pool_pools: two sessions') if $pool;

	$r = $ra->query('COMMIT');
	is($r->{status}, 'I', 'A committed');
	$ra->terminate;
	$rb->terminate;
}

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
