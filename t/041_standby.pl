
# Copyright (c) builtin_pool authors
#
# The pool on a hot standby (issue 12, item 3): a primary and a streaming
# standby, both with the pool, in a database with the extension (app) and
# one without it (plain).
#
#   1. the standby's pool starts once the standby is consistent and serves
#      reads of replicated rows; its smart shutdown guard connects there;
#   2. every kind of write, sent to the standby's main port and to its pool
#      port, gets the same answer (25006 read_only_sql_transaction and
#      core's message, or core's other refusals), temp tables, sequences,
#      LISTEN and cursors included;
#   3. recovery conflicts: a statement cancelled by replay gets core's
#      40001 and its session carries on; a session idle in its
#      transaction or in a subtransaction is ended with core's FATAL, the
#      other sessions of its executor are served on; a dropped database
#      ends its pooled sessions with 57P04, as the main port's;
#   4. sessions open across a promotion carry on: each of them, pooled or
#      not, gets ParameterStatus in_hot_standby = off at its next
#      ReadyForQuery (also several sessions of one executor, not only the
#      one it served first), a transaction begun in recovery stays
#      read-only, and then they write; new sessions are greeted with
#      in_hot_standby = off.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

# size 2 and no reserve executors: the app sessions below share executors
my $pool_conf = "builtin_pool.reserve_pool_size = 0\nmax_connections = 40\n";
my $primary = pool_node('primary', size => 2, conf => $pool_conf,
	init => { allows_streaming => 1 });
$primary->start;
setup_app($primary);
$primary->safe_psql('postgres',
	q{CREATE DATABASE plain OWNER app TEMPLATE template0});
for my $db (qw(app plain))
{
	$primary->safe_psql($db, q{
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, 'r' || i FROM generate_series(1, 100) i;
		CREATE SEQUENCE s;
		SELECT nextval('s');
		GRANT ALL ON t, s TO app;
	});
}
pool_serves_ok($primary, 'primary: pool serves');

$primary->backup('b');
my $standby = PoolTest::Node->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
my $spp = free_port_range(1);
$standby->{_pool_port} = $spp;
# conflicts with replay cancel sessions soon (section 3)
$standby->append_conf('postgresql.conf',
	"builtin_pool.port = $spp\nmax_standby_streaming_delay = 200ms\n");
$standby->start;
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');

###########################################################################
# 1. reads through the standby's pool
###########################################################################

pool_serves_ok($standby, 'standby: pool serves while in recovery');
for my $db (qw(app plain))
{
	is($standby->pool_safe_psql($db, 'SELECT count(*), sum(id) FROM t'),
		'100|5050', "$db: replicated rows read through the standby's pool");
	$primary->safe_psql($db,
		"INSERT INTO t SELECT i, 'r' || i FROM generate_series(101, 120) i");
}
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
for my $db (qw(app plain))
{
	is($standby->pool_safe_psql($db, 'SELECT count(*), max(id) FROM t'),
		'120|120', "$db: rows inserted on the primary later are read too");
}

my @execs = $standby->pool_status("database = 'app'");
ok(@execs >= 1, 'standby: pool_status() shows the executors of the app pool');
ok( wait_until(
		sub {
			$standby->safe_psql('postgres',
				q{SELECT count(*) FROM pg_stat_activity
				  WHERE application_name = 'builtin_pool smart shutdown guard'}) eq '1';
		},
		30),
	'standby: the smart shutdown guard is connected');

###########################################################################
# 2. writes: the standby's main port and its pool port answer alike
###########################################################################

my $main_sock = $standby->host . '/.s.PGSQL.' . $standby->port;

sub summarize
{
	my ($r) = @_;
	return join("\n",
		'complete=' . ($r->{complete} ? 1 : 0),
		'status=' . ($r->{status} // 'none'),
		'tags=' . join(',', @{ $r->{tags} }),
		'rows=' . join(';', map { join('|', map { $_ // 'NULL' } @$_) } @{ $r->{rows} }),
		'errors=' . join(',',
			map { "$_->{S}:$_->{C}:$_->{M}:" . ($_->{W} // '') } @{ $r->{errors} }),
		'notices=' . join(',', map { "$_->{S}:$_->{C}:$_->{M}" } @{ $r->{notices} }),
		'params=' . join(',', map { "$_->[0]=$_->[1]" } @{ $r->{param_status} }));
}

# a main-port and a pool-port session of database db, as role app
sub raw_pair
{
	my ($node, $db, @opts) = @_;
	my $m = PoolTest::Raw->new(path => $node->host . '/.s.PGSQL.' . $node->port);
	my $p = PoolTest::Raw->new(port => $node->pool_port);
	$m->login(user => 'app', database => $db, @opts)
	  or die "main-port login to $db failed";
	$p->login(user => 'app', database => $db, @opts)
	  or die "pool login to $db failed";
	return ($m, $p);
}

# a new pair of database db, greeted with in_hot_standby = want as a
# main-port session is, and default_transaction_read_only as there
sub greeted_pair
{
	my ($db, $want) = @_;
	my ($m, $p) = raw_pair($standby, $db);
	is($p->{params}{in_hot_standby}, $want,
		"$db: a new pooled session is greeted with in_hot_standby = $want");
	for my $k (qw(in_hot_standby default_transaction_read_only))
	{
		is($p->{params}{$k}, $m->{params}{$k},
			"$db: greeting's $k as on the main port");
	}
	return ($m, $p);
}

my @writes = (
	q{INSERT INTO t VALUES (1000, 'w')},
	q{UPDATE t SET v = 'w' WHERE id = 1},
	q{DELETE FROM t WHERE id = 1},
	q{SELECT * FROM t WHERE id = 1 FOR UPDATE},
	q{COPY t FROM STDIN},
	q{TRUNCATE t},
	q{CREATE TABLE u (a int)},
	q{CREATE INDEX ON t (v)},
	q{CREATE TEMP TABLE tt (a int)},
	q{CREATE TEMP TABLE tt2 AS SELECT 1 AS a},
	q{SELECT 1 AS a INTO TEMP tt3},
	q{CREATE TEMP VIEW tv AS SELECT 1},
	q{CREATE TEMP SEQUENCE ts},
	q{DO $$BEGIN CREATE TEMP TABLE tt4 (a int); END$$},
	q{SELECT nextval('s')},
	q{SELECT setval('s', 5)},
	q{SELECT currval('s')},
	q{SELECT lastval()},
	q{SELECT txid_current()},
	q{SELECT pg_current_xact_id()},
	q{VACUUM t},
	q{ANALYZE t},
	q{LISTEN ch},
	q{NOTIFY ch},
	q{SELECT pg_notify('ch', 'x')},
	q{SELECT pg_switch_wal()},
	q{SET transaction_read_only = off},
	q{BEGIN ISOLATION LEVEL SERIALIZABLE},
	q{BEGIN; SET TRANSACTION READ WRITE},
	q{BEGIN; LOCK TABLE t IN EXCLUSIVE MODE},
	q{BEGIN; SELECT 1; PREPARE TRANSACTION 'p1'},
	q{SET default_transaction_read_only = off; INSERT INTO t VALUES (1001, 'w')},
	q{RESET default_transaction_read_only},
	q{SHOW transaction_read_only},
	q{SHOW default_transaction_read_only},
	q{SHOW in_hot_standby},
	q{SELECT pg_is_in_recovery()},
	q{SELECT count(*) FROM t},
	q{SELECT pg_advisory_lock(7), pg_advisory_unlock(7)},
	q{DECLARE c CURSOR WITH HOLD FOR SELECT id FROM t ORDER BY id},
	q{FETCH 2 FROM c},
	q{CLOSE c},
	q{SELECT pg_my_temp_schema()::int},
	q{DISCARD ALL},
	q{CREATE EXTENSION IF NOT EXISTS builtin_pool},
);

for my $db (qw(app plain))
{
	my ($m, $p) = greeted_pair($db, 'on');
	for my $sql (@writes)
	{
		my $mr = $m->query($sql);
		my $pr = $p->query($sql);
		ok($pr->{complete}, "$db: pool completes on the standby: '$sql'");
		is(summarize($pr), summarize($mr), "$db: same answer on the standby: '$sql'");
		$m->query('ROLLBACK') if ($mr->{status} // 'I') ne 'I';
		$p->query('ROLLBACK') if ($pr->{status} // 'I') ne 'I';
	}
	$m->terminate;
	$p->terminate;
}

###########################################################################
# 3. recovery conflicts: each pooled session meets them as a backend's
#    session does, and no other session of its executor notices
###########################################################################

# the error fields compared between the ports
sub error_fields
{
	my ($r) = @_;
	return join(',',
		map { my $e = $_; join(':', map { $e->{$_} // '' } qw(S C M D H)) }
		  @{ $r->{errors} });
}

# an ACCESS EXCLUSIVE lock of t, replayed on the standby: it conflicts
# with every standby session holding a lock on t
sub lock_on_primary
{
	my ($db) = @_;
	$primary->safe_psql($db, 'BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT');
	return;
}

# waits until n sessions of the standby run sql
sub wait_running
{
	my ($sql, $n) = @_;
	return wait_until(
		sub {
			$standby->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = '$sql'"
			) eq $n;
		},
		30);
}

# the pooled session p is ended with FATAL sqlstate, with the messages
# mr, what its main-port twin read
sub ended_as_main
{
	my ($p, $mr, $sqlstate, $tag) = @_;
	my $pr = $p->read_result(60);
	is(($pr->{errors}[0]{S} // '') . ' ' . pg_sqlstate($pr), "FATAL $sqlstate",
		"$tag: the pooled session gets FATAL $sqlstate");
	is(error_fields($pr), error_fields($mr),
		"$tag: the same messages as on the main port");
	ok($pr->{eof}, "$tag: the pooled session is closed");
	return;
}

sub executor_alive
{
	my ($pid) = @_;
	return scalar grep { $_->{pid} eq $pid } $standby->pool_status;
}

# a: a statement running in a transaction is cancelled (40001), the
# session carries on in its aborted transaction
{
	my ($m, $p) = raw_pair($standby, 'app');
	for my $c ($m, $p)
	{
		my $r = $c->query('BEGIN; SELECT count(*) FROM t');
		die 'BEGIN failed' unless ($r->{status} // '') eq 'T';
		$c->send_query('SELECT pg_sleep(60)');
	}
	ok(wait_running('SELECT pg_sleep(60)', 2), 'conflict a: both statements run');
	lock_on_primary('app');
	my $mr = $m->read_result(60);
	my $pr = $p->read_result(60);
	is(pg_sqlstate($pr), '40001', 'conflict a: the pooled statement is cancelled with 40001');
	is(error_fields($pr), error_fields($mr), 'conflict a: the same error as on the main port');
	is($pr->{status}, 'E', 'conflict a: the pooled session is left in its aborted transaction');
	is(summarize($p->query('ROLLBACK')), summarize($m->query('ROLLBACK')),
		'conflict a: ROLLBACK as on the main port');
	is($p->query_value('SELECT count(*) FROM t'), '120',
		'conflict a: the pooled session carries on');
	$m->terminate;
	$p->terminate;
}

# b, c: idle in a transaction, or running a statement in a subtransaction,
# a session is ended as core ends the backend (FATAL 40001); another
# session of the pool is served on, and the executor lives on
my %setup = (
	'idle in a transaction' => [ 'BEGIN; SELECT count(*) FROM t', undef ],
	'in a subtransaction' =>
	  [ 'BEGIN; SAVEPOINT a; SELECT count(*) FROM t', 'SELECT pg_sleep(61)' ],
	'idle in a subtransaction' =>
	  [ 'BEGIN; SAVEPOINT a; SELECT count(*) FROM t', undef ]);
for my $case (sort keys %setup)
{
	my ($begin, $run) = @{ $setup{$case} };
	my ($m, $p) = raw_pair($standby, 'app');
	my $other = PoolTest::Raw->new(port => $standby->pool_port);
	$other->login(user => 'app', database => 'app') or die 'login failed';
	my $pid;
	for my $c ($m, $p)
	{
		my $r = $c->query($begin);
		die 'BEGIN failed' unless ($r->{status} // '') eq 'T';
		$pid = $c->query_value('SELECT pg_backend_pid()') if $c == $p;
		$c->send_query($run) if defined $run;
	}
	ok(wait_running($run, 2), "conflict $case: both statements run") if defined $run;
	lock_on_primary('app');
	ended_as_main($p, $m->read_result(60), '40001', "conflict $case");
	is($other->query_value('SELECT 1'), '1',
		"conflict $case: another session of the pool is served");
	ok(executor_alive($pid), "conflict $case: the executor lives on");
	$other->terminate;
	$m->close;
	$p->close;
}

# d: a database dropped on the primary ends its sessions on the standby,
# pooled ones as main-port ones (57P04), and nothing else
$primary->safe_psql('postgres', 'CREATE DATABASE gone OWNER app');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
{
	my ($m, $p) = raw_pair($standby, 'gone');
	my $p2 = PoolTest::Raw->new(port => $standby->pool_port);
	$p2->login(user => 'app', database => 'gone') or die 'login failed';
	$primary->safe_psql('postgres', 'DROP DATABASE gone');
	my $mr = $m->read_result(60);
	for my $c ($p, $p2)
	{
		ended_as_main($c, $mr, '57P04', 'conflict database');
		$c->close;
	}
	$m->close;
}
# e: each login's catalog lookup in the listener meets replay of pg_authid
# rewrites, at once with max_standby_streaming_delay = 0: a login may
# fail, as a backend's would, but the listener (and every pooled session
# with it) must not
{
	my $listener = sub {
		$standby->safe_psql('postgres',
			q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
	};
	my $held = PoolTest::Raw->new(port => $standby->pool_port);
	$held->login(user => 'app', database => 'app') or die 'login failed';
	my $before = $listener->();
	$standby->append_conf('postgresql.conf', "max_standby_streaming_delay = 0\n");
	$standby->reload;
	my $select = $standby->basedir . '/select1.sql';
	append_to_file($select, "SELECT 1;\n");
	my $vacuum = $primary->basedir . '/vacuum_authid.sql';
	append_to_file($vacuum, "VACUUM FULL pg_authid;\n");
	my ($lo, $le, $vo, $ve) = ('', '', '', '');
	my $logins = IPC::Run::start(
		[ 'pgbench', '-n', '-C', '-c', '8', '-j', '2', '-T', '8', '-f', $select,
			'-h', '127.0.0.1', '-p', $standby->pool_port, '-U', 'app', 'app' ],
		'<', '/dev/null', '>', \$lo, '2>', \$le, IPC::Run::timeout(60));
	IPC::Run::run(
		[ 'pgbench', '-n', '-c', '1', '-T', '6', '-f', $vacuum,
			'-h', $primary->host, '-p', $primary->port, 'postgres' ],
		'<', '/dev/null', '>', \$vo, '2>', \$ve, IPC::Run::timeout(60));
	eval { $logins->finish; };
	note "logins through the standby's pool:\n$lo\n$le";

	# the rewrites still in the WAL conflict with any login, on the main
	# port too, until replayed: the checks below log in
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	my ($rewrites) = $vo =~ /actually processed: (\d+)/;
	my ($logged_in) = $lo =~ /actually processed: (\d+)/;
	ok(($rewrites // 0) > 10 && ($logged_in // 0) > 0,
		'listener conflicts: pg_authid rewritten ' . ($rewrites // 0)
		  . ' times during ' . ($logged_in // 0) . ' logins');
	is($listener->(), $before, 'listener conflicts: the listener lived through them');
	is($held->query_value('SELECT 1'), '1',
		'listener conflicts: a session open meanwhile is served on');
	$held->terminate;
	$standby->append_conf('postgresql.conf', "max_standby_streaming_delay = 200ms\n");
	$standby->reload;
}

pool_serves_ok($standby, 'after the conflicts the standby\'s pool serves');

###########################################################################
# 4. promotion: sessions carry on, each is told in_hot_standby = off
###########################################################################

# open across the promotion: per database one main-port session and
# several pooled ones (more than the pool has executors), some with
# settings of their own, and one of each in a transaction begun in
# recovery
my (@main, @pooled);
for my $db (qw(app plain))
{
	for my $i (1 .. 4)
	{
		my ($m, $p) = raw_pair($standby, $db, application_name => "s$i");
		push @main, { c => $m, db => $db, i => $i };
		push @pooled, { c => $p, db => $db, i => $i };
	}
}
for my $s (@main, @pooled)
{
	my $r = $s->{c}->query("SET work_mem = '${\ (1000 + $s->{i})}kB'");
	die "SET failed" unless $r->{complete} && !@{ $r->{errors} };
}
# the last of each database opens a transaction (read-only: in recovery)
for my $s (grep { $_->{i} == 4 } @main, @pooled)
{
	my $r = $s->{c}->query('BEGIN; SELECT count(*) FROM t');
	die "BEGIN failed" unless $r->{complete} && ($r->{status} // '') eq 'T';
}

$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	'f', 'the standby was promoted');

my $ref = { map { ("$_->{db}.$_->{i}" => $_) } @main };
my $id = 2000;
for my $s (@pooled)
{
	my $m = $ref->{"$s->{db}.$s->{i}"};
	my $tag = "$s->{db}, session $s->{i}";
	my $q = 'SELECT pg_is_in_recovery(), current_setting(\'work_mem\'), '
	  . 'current_setting(\'application_name\')';
	my $mr = $m->{c}->query($q);
	my $pr = $s->{c}->query($q);
	is_deeply($pr->{param_status}, [ [ 'in_hot_standby', 'off' ] ],
		"$tag: first ReadyForQuery after the promotion reports in_hot_standby = off");
	is(summarize($pr), summarize($mr),
		"$tag: first answer after the promotion as on the main port");

	# a transaction begun in recovery stays read-only until it ends
	if ($s->{i} == 4)
	{
		my $w = "INSERT INTO t VALUES ($id, 'in recovery')";
		$mr = $m->{c}->query($w);
		$pr = $s->{c}->query($w);
		is(pg_sqlstate($pr), '25006',
			"$tag: a write in the transaction begun in recovery fails with 25006");
		is(summarize($pr), summarize($mr), "$tag: as on the main port");
		$m->{c}->query('ROLLBACK');
		$s->{c}->query('ROLLBACK');
	}

	for my $sql ('SHOW in_hot_standby', 'SHOW transaction_read_only',
		'SHOW default_transaction_read_only')
	{
		$mr = $m->{c}->query($sql);
		$pr = $s->{c}->query($sql);
		is(summarize($pr), summarize($mr), "$tag: '$sql' after the promotion");
	}

	# and now it writes: rows, a sequence, a temp table
	$id++;
	$mr = $m->{c}->query("INSERT INTO t VALUES ($id, 'main')");
	$id++;
	$pr = $s->{c}->query("INSERT INTO t VALUES ($id, 'pool')");
	is(summarize($pr), summarize($mr), "$tag: INSERT after the promotion");
	is(pg_sqlstate($pr) . join(',', @{ $pr->{tags} }), 'INSERT 0 1',
		"$tag: the pooled session writes");
	$pr = $s->{c}->query("SELECT nextval('s') > 0, currval('s') = lastval()");
	is(summarize_rows($pr), 't|t', "$tag: nextval, currval and lastval work");
	$pr = $s->{c}->query(
		'CREATE TEMP TABLE tmp AS SELECT 1 AS a; SELECT count(*) FROM tmp; DROP TABLE tmp');
	is(summarize_rows($pr), '1', "$tag: a temp table works");
}
for my $s (@main, @pooled)
{
	$s->{c}->terminate;
}

# new sessions after the promotion
for my $db (qw(app plain))
{
	my ($m, $p) = greeted_pair($db, 'off');
	my $pr = $p->query("INSERT INTO t VALUES (3000, 'new') RETURNING id");
	is(summarize_rows($pr), '3000', "$db: a new pooled session writes");
	$m->terminate;
	$p->terminate;
}

is($primary->pool_safe_psql('app', "INSERT INTO t VALUES (5000, 'primary') RETURNING id"),
	'5000', 'the primary\'s pool still serves writes');

check_no_crash($primary, 'primary');
check_no_crash($standby, 'standby');

done_testing();

sub pg_sqlstate
{
	return PoolTest::Raw::sqlstate($_[0]);
}

sub summarize_rows
{
	my ($r) = @_;
	return 'error: ' . join(',', map { "$_->{C} $_->{M}" } @{ $r->{errors} })
	  if @{ $r->{errors} };
	return join(';', map { join('|', map { $_ // 'NULL' } @$_) } @{ $r->{rows} });
}
