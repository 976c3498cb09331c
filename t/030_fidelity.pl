
# Copyright (c) builtin_pool authors
#
# What a session sees through the pool is what a dedicated backend would
# show (issue 9), in a database with the extension (app) and in one without
# it, created later from template0 (plain):
#
#   1. timestamps: statement_timestamp(), now(), 'now'::timestamp advance
#      from statement to statement and from transaction to transaction of
#      one session, transaction_timestamp() stays within a block; simple,
#      extended and prepared protocol (pgbench -M ...), with another session
#      on the executor in between; a DEFAULT now() column stores the time of
#      its own transaction; pg_stat_activity's query_start and xact_start of
#      the executor are the running statement's; log_min_duration_statement
#      figures are the statement's own.
#   2. currval()/lastval() (serial, identity, setval), current_setting() of
#      another session's placeholder and pg_prepared_statements (names,
#      statements, generic_plans/custom_plans counts) with another session
#      running on the executor in between: the same answers as two
#      main-port backends given the same steps.
#   3. the temp schema as a session's own backend has it: PREPARE TRANSACTION
#      after the transaction set it up fails as in core, current_schemas(true)
#      and pg_my_temp_schema() do not show it before, also when another
#      session of the executor used temp tables first;
#   4. every kind of temporary object pins (view, sequence, function, type,
#      domain, collation, operator, text search configuration, conversion)
#      and goes with its session.
#   5. logs: log_connections and log_disconnections print a backend's lines
#      per pooled session, and log_line_prefix's %c tells two sessions of one
#      executor apart while %p is the executor's.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $node = pool_node('fidelity', size => 1,
	conf => "max_prepared_transactions = 5\n"
	  . "log_connections = on\nlog_disconnections = on\n"
	  . "log_line_prefix = '%m [%p] %c %u@%d %a: '\n");
$node->start;
setup_app($node);
$node->safe_psql('postgres',
	q{CREATE DATABASE plain OWNER app TEMPLATE template0});
pool_serves_ok($node);

###########################################################################
# 1. timestamps
###########################################################################

# Epoch seconds (float) of a timestamp expression, through a psql session
sub epoch_of
{
	my ($bg, $expr) = @_;
	return bgq($bg, "SELECT extract(epoch FROM $expr)");
}

for my $db (qw(app plain))
{
	my $a = $node->pool_bg_psql($db);
	my $b = $node->pool_bg_psql($db);

	my @stmt;
	my @now;
	for my $i (1 .. 3)
	{
		push @stmt, epoch_of($a, 'statement_timestamp()');
		push @now, epoch_of($a, "'now'::timestamptz");
		# another session's transaction on the same executor in between
		bgq($b, 'SELECT 1');
		usleep(200_000);
	}
	ok($stmt[0] < $stmt[1] && $stmt[1] < $stmt[2],
		"$db: statement_timestamp() advances across statements (@stmt)");
	ok($now[0] < $now[1] && $now[1] < $now[2],
		"$db: 'now' advances across transactions (@now)");
	ok($stmt[2] - $stmt[0] >= 0.35, "$db: and by the time that passed");

	my $out = bgq($a, q{
		BEGIN;
		SELECT extract(epoch FROM transaction_timestamp()) AS t1,
		       extract(epoch FROM statement_timestamp()) AS s1 \gset
		SELECT pg_sleep(0.2);
		SELECT extract(epoch FROM transaction_timestamp()) AS t2,
		       extract(epoch FROM statement_timestamp()) AS s2,
		       extract(epoch FROM now()) AS n2 \gset
		COMMIT;
		SELECT :t1 = :t2, :s2 > :s1, :n2 = :t1, :s1 >= :t1;
	});
	is($out, "\nt|t|t|t",
		"$db: in a block transaction_timestamp() and now() stay, statement_timestamp() moves");

	# a column default stores its own transaction's time
	bgq($a, 'CREATE TABLE IF NOT EXISTS ts_default (i int, t timestamptz DEFAULT now())');
	bgq($a, 'INSERT INTO ts_default (i) VALUES (1)');
	usleep(300_000);
	bgq($b, 'SELECT 1');
	my $before = epoch_of($a, 'clock_timestamp()');
	bgq($a, 'INSERT INTO ts_default (i) VALUES (2)');
	is( bgq($a,
			"SELECT extract(epoch FROM t) >= $before FROM ts_default WHERE i = 2"),
		't', "$db: INSERT ... DEFAULT now() stores the time of its own transaction");
	bgq($a, 'DROP TABLE ts_default');

	$a->quit;
	$b->quit;
}

# Extended and prepared protocol: pgbench stores statement_timestamp() and
# now() of each of its transactions, with a sleep in between.
$node->safe_psql('app', 'CREATE TABLE ts_log (mode text, s timestamptz, n timestamptz)');
$node->safe_psql('app', 'GRANT ALL ON ts_log TO app');
my $script = "$PostgreSQL::Test::Utils::tmp_check/ts_log.sql";
for my $mode (qw(simple extended prepared))
{
	open my $fh, '>', $script or die "cannot write $script: $!";
	print $fh "INSERT INTO ts_log VALUES ('$mode', statement_timestamp(), now());\n\\sleep 50 ms\n";
	close $fh;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[ 'pgbench', '-n', '-M', $mode, '-c', '1', '-t', '10', '-f', $script,
		  $node->pool_connstr('app') ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "pgbench -M $mode through the pool") or diag($stderr);
	is( $node->safe_psql('app',
			"SELECT count(DISTINCT s), count(DISTINCT n), count(*) FROM ts_log WHERE mode = '$mode'"),
		'10|10|10', "-M $mode: every transaction has its own timestamps");
}

# pg_stat_activity shows the running statement's start, not a stale one
{
	my $a = $node->pool_bg_psql('plain', extra => 'application_name=fidelity_a');
	my $client_port = bgq($a, 'SELECT inet_client_port()');
	sleep(2);
	$a->query_until(qr/start/, "\\echo start\nSELECT pg_sleep(3);\n");
	ok( wait_until(
			sub {
				$node->safe_psql('postgres', qq{
					SELECT count(*) FROM pg_stat_activity
					WHERE query = 'SELECT pg_sleep(3);'
					  AND now() - query_start < interval '1.5 s'
					  AND now() - xact_start < interval '1.5 s'
					  AND state = 'active'
					  AND application_name = 'fidelity_a'
					  AND client_addr = '127.0.0.1' AND client_port = $client_port}) eq '1';
			},
			3),
		"pg_stat_activity: query_start, xact_start, application_name and client of the running session");
	$a->quit;
}

# log_min_duration_statement: a quick statement logs a small duration even
# after its session sat idle
{
	$node->safe_psql('postgres',
		'GRANT SET ON PARAMETER log_min_duration_statement TO app');
	my $a = $node->pool_bg_psql('plain');
	bgq($a, 'SET log_min_duration_statement = 0');
	sleep(2);
	my $offset = -s $node->logfile;
	bgq($a, q{SELECT 'duration probe'});
	$a->quit;
	my $log = '';
	wait_until(
		sub {
			$log = slurp_file($node->logfile, $offset);
			return $log =~ /statement: SELECT 'duration probe'.*?duration: [0-9.]+ ms/s;
		},
		10);
	# log_statement = all logged the text already: the duration comes alone
	ok($log =~ /statement: SELECT 'duration probe'.*?duration: ([0-9.]+) ms/s
		  && $1 < 1000,
		'log_min_duration_statement: the statement\'s own duration')
	  or diag($log);
}

###########################################################################
# 2. per-session state without the extension: the pool against the main port
###########################################################################

# Runs the steps ([session, sql], session 'a' or 'b') on two sessions of the
# main port or of the pool port; returns each step's output and error.
sub run_steps
{
	my ($db, $via_pool, @steps) = @_;
	my %s = map {
		$_ => $via_pool
		  ? $node->pool_bg_psql($db)
		  : $node->background_psql($db, on_error_stop => 0)
	} qw(a b);
	my @out;
	for my $step (@steps)
	{
		my ($who, $sql) = @$step;
		my ($o, $e) = bgq_err($s{$who}, $sql);
		$e =~ s/^psql:<stdin>:\d+: //mg;
		push @out, "$who> $sql\n$o" . ($e ne '' ? "\n$e" : '');
	}
	$_->quit for values %s;
	return @out;
}

my @state_steps = (
	[ a => 'CREATE TABLE ser (id serial, v text)' ],
	[ a => q{INSERT INTO ser (v) VALUES ('a')} ],
	[ b => 'SELECT 1' ],
	[ a => q{SELECT currval('ser_id_seq'), lastval()} ],
	[ b => q{SELECT currval('ser_id_seq')} ],
	[ b => q{SELECT lastval()} ],
	[ a => 'CREATE TABLE idt (id int GENERATED ALWAYS AS IDENTITY, v text)' ],
	[ a => q{INSERT INTO idt (v) VALUES ('x'), ('y')} ],
	[ b => 'SELECT 2' ],
	[ a => q{SELECT currval(pg_get_serial_sequence('idt', 'id')), lastval()} ],
	[ a => q{SELECT setval('ser_id_seq', 100)} ],
	[ b => q{INSERT INTO ser (v) VALUES ('b') RETURNING id} ],
	[ a => q{SELECT currval('ser_id_seq'), lastval()} ],
	[ b => q{SELECT currval('ser_id_seq'), lastval()} ],
	[ b => q{SET myapp.x = 'b'} ],
	[ a => q{SELECT current_setting('myapp.x', true) IS NULL} ],
	[ a => q{SELECT current_setting('myapp.x')} ],
	[ a => q{PREPARE p1(int) AS SELECT $1 + 1} ],
	[ a => 'EXECUTE p1(1); EXECUTE p1(2); EXECUTE p1(3); EXECUTE p1(4); EXECUTE p1(5); EXECUTE p1(6); EXECUTE p1(7)' ],
	[ b => q{PREPARE p2 AS SELECT 'b'} ],
	[ a => 'SELECT name, statement, parameter_types, from_sql, generic_plans, custom_plans, prepare_time <= now() FROM pg_prepared_statements ORDER BY name' ],
	[ b => 'SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements' ],
	[ a => 'SELECT count(*) FROM pg_prepared_statement()' ],
	[ a => q{PREPARE q1 AS SELECT 1; PREPARE zeta AS SELECT 2; PREPARE alpha AS SELECT 3} ],
	[ b => q{PREPARE b1 AS SELECT 1; PREPARE b2 AS SELECT 2; PREPARE b3 AS SELECT 3} ],
	[ a => q{PREPARE q2 AS SELECT 4; PREPARE mm AS SELECT 5} ],
	[ a => 'SELECT name FROM pg_prepared_statements' ],
	[ a => 'DEALLOCATE ALL' ],
	[ a => 'DEALLOCATE p1' ],
	[ a => 'SELECT count(*) FROM pg_prepared_statements' ],
	[ a => q{EXPLAIN (VERBOSE, COSTS OFF) SELECT nextval('ser_id_seq'), current_setting('work_mem')} ],
	[ a => 'DROP TABLE ser, idt' ],
);

for my $db (qw(app plain))
{
	my @main = run_steps($db, 0, @state_steps);
	my @pool = run_steps($db, 1, @state_steps);
	for my $i (0 .. $#main)
	{
		is($pool[$i], $main[$i], "$db: as on the main port: $state_steps[$i][1]");
	}
}

# pg_settings of startup options: source and reset_val as core's, in a
# database without the extension, while another session changed the same
# setting on the executor
for my $via_pool (0, 1)
{
	my $where = $via_pool ? 'pool' : 'main';
	local $ENV{PGOPTIONS} = '-c work_mem=5MB -c DateStyle=German';
	my $a = $via_pool ? $node->pool_bg_psql('plain')
	  : $node->background_psql('plain', on_error_stop => 0);
	local $ENV{PGOPTIONS} = '';
	my $b = $via_pool ? $node->pool_bg_psql('plain')
	  : $node->background_psql('plain', on_error_stop => 0);
	my $q = q{SELECT name, setting, source, reset_val, boot_val = reset_val
		FROM pg_settings WHERE name IN ('work_mem', 'DateStyle', 'search_path') ORDER BY name};
	my @seen;
	push @seen, bgq($a, $q);
	bgq($b, q{SET work_mem = '7MB'});
	bgq($a, q{SET work_mem = '6MB'});
	push @seen, bgq($a, $q);
	bgq($a, 'RESET work_mem');
	push @seen, bgq($a, $q);
	push @seen, bgq($b, $q);
	$a->quit;
	$b->quit;
	$node->{"settings_$where"} = \@seen;
}
is_deeply($node->{settings_pool}, $node->{settings_main},
	'pg_settings: startup options with source client and their reset values, as on the main port')
  or diag(explain($node->{settings_pool}), explain($node->{settings_main}));

###########################################################################
# 3. the temp schema is set up per session, as core does
###########################################################################

my @temp_steps = (
	[ b => 'CREATE TEMP TABLE tt (i int)' ],
	[ b => 'DROP TABLE tt' ],
	[ a => q{SELECT pg_my_temp_schema() = 0, current_schemas(true)::text ~ 'pg_temp'} ],
	[ a => 'SET search_path = pg_temp' ],
	[ a => 'BEGIN' ],
	[ a => q{SELECT current_schema() ~ '^pg_temp_'} ],
	[ a => q{PREPARE TRANSACTION 'bp_temp_x'} ],
	[ a => q{ROLLBACK PREPARED 'bp_temp_x'} ],
	[ a => q{SELECT pg_my_temp_schema() = 0} ],
	[ a => 'BEGIN' ],
	[ a => q{SELECT current_schema() ~ '^pg_temp_'} ],
	[ a => 'COMMIT' ],
	[ a => q{SELECT pg_my_temp_schema() <> 0, current_schemas(true)::text ~ 'pg_temp'} ],
	[ a => 'BEGIN' ],
	[ a => q{SELECT current_schema() ~ '^pg_temp_'} ],
	[ a => q{PREPARE TRANSACTION 'bp_temp_y'} ],
	[ a => q{ROLLBACK PREPARED 'bp_temp_y'} ],
	[ b => q{SELECT pg_my_temp_schema() <> 0} ],
);

for my $db (qw(app plain))
{
	my @main = run_steps($db, 0, @temp_steps);
	my @pool = run_steps($db, 1, @temp_steps);
	for my $i (0 .. $#main)
	{
		is($pool[$i], $main[$i], "$db temp schema: as on the main port: $temp_steps[$i][1]");
	}
}

# An executor sets its temp schema up again for a limited number of
# sessions (core's exit-callback slots); past that it retires, and the
# sessions after still get core's answer.
for my $i (1 .. 14)
{
	$node->pool_safe_psql('plain', 'CREATE TEMP TABLE worn (i int); DROP TABLE worn');
}
ok( wait_until(
		sub {
			slurp_file($node->logfile) =~ /executor retires: its temp schema was set up again/;
		},
		20),
	'an executor that set up its temp schema for many sessions retires');
{
	my ($ret, $out, $err) = $node->pool_psql('plain', q{
		SET search_path = pg_temp;
		BEGIN;
		SELECT current_schema() ~ '^pg_temp_';
		PREPARE TRANSACTION 'bp_worn';});
	like($err, qr/cannot PREPARE a transaction that has operated on temporary objects/,
		'after 14 temp-using sessions, PREPARE TRANSACTION still fails as in core');
}

###########################################################################
# 4. every kind of temporary object pins, and goes with its session
###########################################################################

sub pinned_now
{
	return $node->safe_psql('postgres',
		q{SELECT coalesce(sum(pinned), 0) FROM pool_status() WHERE database = 'plain'});
}

my @temp_objects = (
	[ 'view', 'CREATE TEMP VIEW tv AS SELECT 1 AS x', 'DROP VIEW tv',
	  q{SELECT count(*) FROM pg_class WHERE relname = 'tv'} ],
	[ 'sequence', 'CREATE TEMP SEQUENCE tseq', 'DROP SEQUENCE tseq',
	  q{SELECT count(*) FROM pg_class WHERE relname = 'tseq'} ],
	[ 'function', 'CREATE FUNCTION pg_temp.tf() RETURNS int LANGUAGE sql AS $$SELECT 1$$',
	  'DROP FUNCTION pg_temp.tf()', q{SELECT count(*) FROM pg_proc WHERE proname = 'tf'} ],
	[ 'domain', 'CREATE DOMAIN pg_temp.tdom AS int', 'DROP DOMAIN pg_temp.tdom',
	  q{SELECT count(*) FROM pg_type WHERE typname = 'tdom'} ],
	[ 'collation', 'CREATE COLLATION pg_temp.tcoll FROM "C"', 'DROP COLLATION pg_temp.tcoll',
	  q{SELECT count(*) FROM pg_collation WHERE collname = 'tcoll'} ],
	[ 'operator', 'CREATE OPERATOR pg_temp.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)',
	  'DROP OPERATOR pg_temp.=== (int, int)', q{SELECT count(*) FROM pg_operator WHERE oprname = '==='} ],
	[ 'text search configuration', 'CREATE TEXT SEARCH CONFIGURATION pg_temp.tcfg (COPY = simple)',
	  'DROP TEXT SEARCH CONFIGURATION pg_temp.tcfg', q{SELECT count(*) FROM pg_ts_config WHERE cfgname = 'tcfg'} ],
	[ 'conversion', q{CREATE CONVERSION pg_temp.tconv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8},
	  'DROP CONVERSION pg_temp.tconv', q{SELECT count(*) FROM pg_conversion WHERE conname = 'tconv'} ],
);

for my $o (@temp_objects)
{
	my ($kind, $create, $drop, $count) = @$o;
	my $a = $node->pool_bg_psql('plain');
	my ($out, $err) = bgq_err($a, $create);
	is($err, '', "temp $kind created");
	is(pinned_now(), '1', "a temp $kind pins its session");
	bgq($a, $drop);
	is(pinned_now(), '0', "dropping the temp $kind unpins");
	bgq($a, $create);
	is(pinned_now(), '1', "pinned again");
	$a->quit;
	ok(wait_until(sub { pinned_now() eq '0' }, 10), "the session ended: unpinned");
	is($node->pool_safe_psql('plain', $count), '0', "the temp $kind went with its session");
}

###########################################################################
# 5. connection logs and session ids per pooled session
###########################################################################

{
	# executors started beyond the pool's size by the pins above retire
	# first, so that both sessions share the one left
	ok( wait_until(
			sub {
				$node->safe_psql('postgres',
					q{SELECT count(*) FROM pool_status() WHERE database = 'plain'}) eq '1';
			},
			30),
		'logs: one executor left for plain');
	my $offset = -s $node->logfile;
	my $a = $node->pool_bg_psql('plain', extra => 'application_name=logA');
	my $b = $node->pool_bg_psql('plain', extra => 'application_name=logB');
	my $a_port = bgq($a, 'SELECT inet_client_port()');
	bgq($a, q{SELECT 'logA marker'});
	bgq($b, q{SELECT 'logB marker'});
	is(bgq($a, 'SELECT pg_backend_pid()'), bgq($b, 'SELECT pg_backend_pid()'),
		'logs: both sessions on one executor');
	$a->quit;
	$b->quit;
	my $log = '';
	wait_until(
		sub {
			$log = slurp_file($node->logfile, $offset);
			return $log =~ /disconnection: .*port=$a_port/;
		},
		10);
	like($log, qr/connection received: host=127\.0\.0\.1 port=$a_port\n/,
		'log_connections: connection received');
	like($log,
		qr/connection authorized: user=app database=plain application_name=logA\n/,
		'log_connections: connection authorized');
	like($log,
		qr/disconnection: session time: \d+:\d\d:\d\d\.\d{3} user=app database=plain host=127\.0\.0\.1 port=$a_port\n/,
		'log_disconnections: disconnection with session time');
	my ($pa, $ca) = $log =~ /\[(\d+)\] (\S+) app\@plain logA: LOG:  statement: SELECT 'logA marker'/;
	my ($pb, $cb) = $log =~ /\[(\d+)\] (\S+) app\@plain logB: LOG:  statement: SELECT 'logB marker'/;
	ok(defined $ca && defined $cb, 'log_line_prefix shows each session\'s user, database, application_name');
	is($pa, $pb, '%p: the executor\'s pid for both');
	isnt($ca, $cb, '%c: each session its own');
	like($log, qr/\Q$ca\E app\@plain \S*: LOG:  disconnection: .*port=$a_port/,
		'%c: the disconnection line is the session\'s');
}

check_no_crash($node);
$node->stop;
done_testing();
