
# Copyright (c) builtin_pool authors
#
# ParameterStatus fidelity: after every ReadyForQuery, what a client was last
# told of each GUC_REPORT setting equals what SHOW returns for its session,
# and it got exactly the ParameterStatus messages a dedicated backend sends,
# while its session moves between executors.
#
#   - pinned: session_pool_size = 1; A pins its executor with a temp table,
#     B is moved to an executor the pin makes the listener start, which never
#     greeted a session of its own; B's SETs there must still be reported;
#   - random: 8 sessions on a pool of 2 (database without the extension),
#     two of them superusers that also switch session authorization and
#     role (is_superuser, session_authorization), each paired with a
#     main-port session running the same statements: seeded random SET /
#     RESET / SET LOCAL / BEGIN .. COMMIT / ROLLBACK / aborted transactions /
#     functions with SET clauses / RESET ALL / DISCARD ALL of reported
#     settings, with forced moves: one session at a time holds its
#     transaction open over several steps (the sessions queued behind it are
#     handed back after 20 ms), and one at a time pins its executor with a
#     temp table (its executor's other sessions move).  Each step compares
#     the ParameterStatus messages of the two ports and then each client's
#     view with SHOW.  PST_SEED=N replays a run (the seed is printed),
#     PST_STEPS sets its length.  Greetings, also of sessions that log in
#     after the run, carry a backend's ParameterStatus messages in its order;
#   - psycopg: the same kind of run through python3-psycopg, checking
#     conn.info.parameter_status() against SHOW after each statement
#     (test/clients/psycopg_paramstatus.py, on both ports);
#   - and the server log free of crashes.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;

# PostgreSQL 15's GUC_REPORT settings
my @REPORTED = qw(application_name client_encoding DateStyle
  default_transaction_read_only in_hot_standby integer_datetimes
  IntervalStyle is_superuser server_encoding server_version
  session_authorization standard_conforming_strings TimeZone);

my $SHOW_SQL = 'SELECT '
  . join(', ', map { "current_setting('$_')" } @REPORTED);

# Compares a client's ParameterStatus view with SHOW; returns '' if they
# agree, else what differs.  Only outside an aborted transaction.
sub view_mismatch
{
	my ($c) = @_;
	my $r = $c->query($SHOW_SQL);
	return 'SHOW failed: ' . ($r->{errors}[0]{M} // 'no answer')
	  unless $r->{complete} && !@{ $r->{errors} } && @{ $r->{rows} };
	my @bad;
	for my $i (0 .. $#REPORTED)
	{
		my $told = $c->{params}{ $REPORTED[$i] } // '(never)';
		my $shown = $r->{rows}[0][$i] // '(null)';
		push @bad, "$REPORTED[$i]: told '$told', SHOW '$shown'"
		  if $told ne $shown;
	}
	return join('; ', @bad);
}

my $seed = $ENV{PST_SEED} // (time() ^ $$) % 1000000;

sub ps_list
{
	my ($r) = @_;
	return join(' ', map { "$_->[0]=$_->[1]" } @{ $r->{param_status} });
}

# a started node whose database "plain" (no extension) has pst_german()
sub make_node
{
	my ($name, $size) = @_;
	my $n = pool_node(
		$name,
		size => $size,
		conf => "builtin_pool.reserve_pool_size = 0\n"
		  . "max_connections = 60\n");
	$n->start;
	setup_app($n);
	$n->safe_psql('postgres', 'CREATE DATABASE plain OWNER app');
	$n->safe_psql('plain', q{
		CREATE FUNCTION pst_german() RETURNS text LANGUAGE sql
		  SET "DateStyle" = 'German' SET standard_conforming_strings = off
		  AS $$ SELECT current_setting('DateStyle') $$;
		ALTER FUNCTION pst_german() OWNER TO app;
	});
	pool_serves_ok($n);
	return $n;
}

my $node;

sub login_pair
{
	my ($name, $user) = @_;
	$user //= 'app';
	my $p = PoolTest::Raw->new(port => $node->pool_port, timeout => 15);
	my $m = PoolTest::Raw->new(port => $node->port, timeout => 15);
	ok($p->login(user => $user, database => 'plain', application_name => $name),
		"$name logs in through the pool");
	ok($m->login(user => $user, database => 'plain', application_name => $name),
		"$name logs in through the main port");
	return { name => $name, pool => $p, main => $m, su => $user ne 'app' };
}

# Runs SQL on both clients of a pair; returns '' if the two ports answered
# alike (errors' SQLSTATEs, transaction status, ParameterStatus sequence).
sub run_pair
{
	my ($pair, $sql) = @_;
	my $rp = $pair->{pool}->query($sql);
	my $rm = $pair->{main}->query($sql);
	return "no ReadyForQuery on the pool port"
	  . ($rp->{timed_out} ? ' (timed out)' : '') . ($rp->{eof} ? ' (EOF)' : '')
	  unless $rp->{complete};
	return "no ReadyForQuery on the main port" unless $rm->{complete};
	my @diff;
	push @diff, 'ParameterStatus pool [' . ps_list($rp) . '] main [' . ps_list($rm) . ']'
	  if ps_list($rp) ne ps_list($rm);
	my $ep = join(',', map { $_->{C} } @{ $rp->{errors} });
	my $em = join(',', map { $_->{C} } @{ $rm->{errors} });
	push @diff, "errors pool [$ep] main [$em]" if $ep ne $em;
	push @diff, "status pool $rp->{status} main $rm->{status}"
	  if $rp->{status} ne $rm->{status};
	$pair->{status} = $rp->{status};
	return join('; ', @diff);
}

# the two ports' greetings report the same settings, values and order
sub greeting_ok
{
	my ($pair) = @_;
	is(ps_list($pair->{pool}{startup}), ps_list($pair->{main}{startup}),
		"$pair->{name}: greeting's ParameterStatus as a backend's");
	return;
}

###########################################################################
# A session moved to an executor that never greeted one
###########################################################################
{
	$node = make_node('pinned', 1);
	my $a = login_pair('pinner');
	my $b = login_pair('moved');
	greeting_ok($b);
	my $a_pid = $a->{pool}->query_value('SELECT pg_backend_pid()');
	my $b_pid = $b->{pool}->query_value('SELECT pg_backend_pid()');
	is($b_pid, $a_pid, 'B shares the only executor with A');
	is(run_pair($a, 'CREATE TEMP TABLE pst_pin (x int)'), '', 'A pins its executor');
	is(run_pair($b, 'SELECT 1'), '', 'B is served while A is pinned');
	isnt($b->{pool}->query_value('SELECT pg_backend_pid()'), $a_pid,
		'B runs on another executor than A');
	for my $sql ('SET standard_conforming_strings = off',
		"SET DateStyle = 'SQL, DMY'",
		"SET TimeZone = 'Asia/Tokyo'",
		"SET application_name = 'moved2'",
		'SET standard_conforming_strings = on',
		'BEGIN', "SET LOCAL IntervalStyle = 'iso_8601'", 'COMMIT',
		'RESET ALL')
	{
		is(run_pair($b, $sql), '', "B: $sql: ParameterStatus as on the main port");
		is(view_mismatch($b->{pool}), '', "B: $sql: view agrees with SHOW");
	}
	is(run_pair($a, 'DROP TABLE pst_pin'), '', 'A unpins');
	for my $p ($a, $b)
	{
		$p->{pool}->terminate;
		$p->{main}->terminate;
	}
	check_no_crash($node, 'pinned: no crash');
	$node->stop;
}

###########################################################################
# Random statements on 8 sessions with forced moves
###########################################################################
{
	$node = make_node('random', 2);
	my $steps = $ENV{PST_STEPS} // 1000;
	diag("t/037 random run: PST_SEED=$seed PST_STEPS=$steps");
	srand($seed);

	my %values = (
		standard_conforming_strings => [ 'on', 'off' ],
		DateStyle => [ "'ISO, MDY'", "'SQL, DMY'", "'Postgres, YMD'", "'German'" ],
		IntervalStyle => [ 'postgres', 'iso_8601', 'sql_standard', 'postgres_verbose' ],
		TimeZone => [ "'UTC'", "'Europe/Paris'", "'America/New_York'", "'Asia/Tokyo'" ],
		application_name => [ "'a1'", "'a2'", "''", "'moved'" ],
		client_encoding => [ "'UTF8'", "'LATIN1'", "'SQL_ASCII'" ],
	);
	my @names = sort keys %values;
	my $pick = sub { $_[ int(rand(@_)) ] };

	# two of them superusers: session_authorization and is_superuser change
	my $su = $node->safe_psql('postgres', 'SELECT current_user');
	my @pairs = ((map { login_pair("r$_") } 1 .. 6),
		(map { login_pair("s$_", $su) } 1 .. 2));
	greeting_ok($_) for @pairs;
	my @auth = ('SET SESSION AUTHORIZATION app', 'RESET SESSION AUTHORIZATION',
		'SET ROLE app', 'RESET ROLE', 'SET SESSION AUTHORIZATION DEFAULT');
	my $holder;			# the pair inside an open transaction
	my $pinned;			# the pair holding a temp table
	my $failures = 0;
	my $moves_seen = 0;
	my %pid_of;

	for my $step (1 .. $steps)
	{
		my $pair = $pick->(@pairs);
		my $in_xact = defined $holder && $holder == $pair;
		my $sql;
		my $r = rand();

		if ($in_xact)
		{
			my $n = $pick->(@names);
			$sql =
			    $pair->{su} && $r < 0.08 ? 'SET LOCAL ROLE app'
			  : $r < 0.30 ? "SET LOCAL $n = " . $pick->(@{ $values{$n} })
			  : $r < 0.50 ? "SET $n = " . $pick->(@{ $values{$n} })
			  : $r < 0.55 ? "RESET $n"
			  : $r < 0.60 ? 'SELECT pst_german()'
			  : $r < 0.64 ? 'SELECT 1/0'
			  : $r < 0.70 ? 'SAVEPOINT s'
			  : $r < 0.75 ? 'ROLLBACK TO SAVEPOINT s'
			  : $r < 0.88 ? 'COMMIT'
			  :             'ROLLBACK';
		}
		else
		{
			my $n = $pick->(@names);
			$sql =
			    $pair->{su} && $r < 0.15 ? $pick->(@auth)
			  : $r < 0.40 ? "SET $n = " . $pick->(@{ $values{$n} })
			  : $r < 0.50 ? "RESET $n"
			  : $r < 0.54 ? 'RESET ALL'
			  : $r < 0.57 ? 'DISCARD ALL'
			  : $r < 0.62 ? 'SELECT pst_german()'
			  : $r < 0.66 ? "SET $n TO DEFAULT"
			  : $r < 0.70 ? "SET SESSION $n = " . $pick->(@{ $values{$n} }) . '; SELECT 1'
			  : $r < 0.80 && !defined $holder ? 'BEGIN'
			  : $r < 0.84 && !defined $pinned ? 'CREATE TEMP TABLE pst_t (x int)'
			  : $r < 0.90 && defined $pinned && $pinned == $pair ? 'DROP TABLE pst_t'
			  :             'SELECT 1';
		}

		my $diff = run_pair($pair, $sql);
		if ($diff ne '')
		{
			fail("step $step, $pair->{name}: $sql");
			diag($diff);
			last if ++$failures >= 5 || $diff =~ /no ReadyForQuery/;
		}
		my $status = $pair->{status} // 'I';
		$holder = $status eq 'I' ? ($in_xact ? undef : $holder) : $pair;
		if ($sql eq 'CREATE TEMP TABLE pst_t (x int)' && $diff eq '')
		{
			$pinned = $pair;
		}
		elsif (defined $pinned && $pinned == $pair &&
			($sql eq 'DROP TABLE pst_t' || $sql eq 'DISCARD ALL'))
		{
			$pinned = undef;
		}
		next if $status eq 'E';

		for my $side ('pool', 'main')
		{
			my $m = view_mismatch($pair->{$side});
			next if $m eq '';
			fail("step $step, $pair->{name} ($side port) after $sql: view differs from SHOW");
			diag($m);
			$failures++;
		}
		last if $failures >= 5;
		if ($status eq 'I')
		{
			my $pid = $pair->{pool}->query_value('SELECT pg_backend_pid()') // '';
			$moves_seen++
			  if defined $pid_of{ $pair->{name} } && $pid_of{ $pair->{name} } ne $pid;
			$pid_of{ $pair->{name} } = $pid;
		}
	}
	is($failures, 0, "random run (PST_SEED=$seed): every step as on the main port");
	cmp_ok($moves_seen, '>', 0, "sessions moved between executors during the run ($moves_seen seen)");

	# new sessions greeted on executors whose sessions changed everything
	for my $i (1 .. 3)
	{
		my $late = login_pair("late$i");
		greeting_ok($late);
		is(view_mismatch($late->{pool}), '', "late$i: view agrees with SHOW");
		push @pairs, $late;
	}
	for my $p (@pairs)
	{
		$p->{pool}->terminate;
		$p->{main}->terminate;
	}
	check_no_crash($node, 'random: no crash');
	$node->stop;
}

###########################################################################
# The client's view through psycopg 3 (libpq)
###########################################################################
SKIP:
{
	skip 'psycopg 3 not installed (apt-get install python3-psycopg)', 4
	  unless system('python3', '-c', 'import psycopg') == 0;
	# a fresh pool: the executors a pin starts take only moved sessions
	$node = make_node('psycopg', 2);
	my $script = "$FindBin::RealBin/../test/clients/psycopg_paramstatus.py";
	for my $port ($node->pool_port, $node->port)
	{
		my $label = $port == $node->pool_port ? 'pool' : 'main';
		my ($out, $err) = ('', '');
		my $ok = IPC::Run::run(
			[ 'python3', $script, '--seed', $seed, '--steps', 300,
				'--dsn', "host=127.0.0.1 port=$port dbname=plain user=app" ],
			'>', \$out, '2>', \$err, IPC::Run::timeout(180));
		ok($ok, "psycopg on the $label port (seed $seed): parameter_status() equals SHOW")
		  or diag($out . $err);
	}

	check_no_crash($node, 'psycopg: no crash');
	$node->stop;
}

done_testing();
