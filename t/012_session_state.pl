
# Copyright (c) builtin_pool authors
#
# Session state through the pool (DESIGN.md section 4): every session must
# behave as if it had its own backend.
#
# Part 1, builtin_pool.session_pool_size = 1: sessions share the one
# executor of their pool (checked with pg_backend_pid()).
#   1. settings: SET, SET LOCAL, set_config(false/true) (also from a
#      function), RESET, RESET ALL, SET ... TO DEFAULT, SET SESSION
#      CHARACTERISTICS, formatting GUCs, custom placeholders, a SET rolled
#      back; ParameterStatus only to the session that changed something;
#  1b. ParameterStatus: after each of a series of SET / RESET / RESET ALL /
#      SET SESSION AUTHORIZATION / DISCARD ALL, the same messages as a
#      main-port backend, while another session of the executor changes the
#      same settings in between;
#   2. startup options (options=-c, PGOPTIONS with psql, application_name):
#      RESET / RESET ALL / DISCARD ALL return to the session's own values;
#   3. ALTER DATABASE / ROLE / ROLE IN DATABASE ... SET defaults, their
#      precedence, and RESET returning to them;
#   4. SET ROLE, SET LOCAL ROLE, set_config('role'), RESET ROLE: private;
#      SET SESSION AUTHORIZATION in a superuser pool: private, undone by
#      RESET and DISCARD ALL, not inherited by the next session;
#   5. prepared statements (SQL and protocol level) private, gone with
#      their session;
#   6. currval / lastval: never another session's, its own kept across other
#      sessions' transactions as on its own backend (nextval, setval, serial
#      and identity defaults, COPY, PL/pgSQL, prepared statements), core's
#      privilege checks, DISCARD SEQUENCES / ALL forget them;
#   7. DISCARD PLANS / SEQUENCES / TEMP / ALL act on the caller only;
#   8. pinning with one executor: a session holding a temp table, an
#      advisory lock, LISTEN or a WITH HOLD cursor has the executor alone
#      (the other waits); unpinning lets the other run; at its end (Terminate)
#      the next session finds nothing of it (temp table, lock, channel,
#      cursor, statements, settings);
#   9. temp objects that are not relations (function, domain in pg_temp):
#      pinned or dropped, never visible to another session;
#  10. session end by kill -9 of the client and by an error (idle in
#      transaction timeout) while pinned: state released, waiting session
#      served;
#  11. builtin_pool.dedicated_databases: each session its own executor.
#
# Part 2, session_pool_size = 2 (restart): pinning moves the other sessions.
#  12. A pins (temp table) -> B, which shared A's executor, moves to the
#      other executor: new pg_backend_pid(), same SET values (work_mem,
#      DateStyle, client_encoding, TimeZone), startup values for RESET, SQL
#      and protocol prepared statements, no spurious ParameterStatus, its
#      cancel key still works; new clients go elsewhere; pool_status shows
#      pinned; DROP TABLE unpins;
#  13. advisory lock / LISTEN / WITH HOLD cursor pin and unpin each; a
#      LISTENing idle session receives NOTIFYs (from the main port and from
#      another pool session) without sending anything;
#  13b. a session with a temp function that is moved keeps it, and the
#      pinned session cannot call it;
#  14. both executors pinned: a session sent back waits, and is served as
#      soon as one executor unpins;
#  15. kill -9 of a pinned client: temp table gone, lock released (pg_locks
#      from the main port), executor unpinned.
#
# pg_settings shows startup options as the main port does (source
# "client", reset_val the startup value).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(usleep time);

###########################################################################
# Helpers
###########################################################################

# Pinned executors count in the pool's size here (max_pinned_executors = 0)
# and no reserve starts, so that B waiting shows A pinned; t/031_scheduling.pl
# covers pins outside the pool's size and reserve executors.
my $node = pool_node('session_state', size => 1,
	conf => "builtin_pool.dedicated_databases = 'postgres, ded'\n"
	  . "builtin_pool.max_pinned_executors = 0\n"
	  . "builtin_pool.reserve_pool_size = 0\n");
$node->start;
setup_app($node);
my $pp = $node->pool_port;

$node->safe_psql('postgres', q{
	CREATE ROLE su LOGIN SUPERUSER;
	CREATE ROLE r_limited NOLOGIN;
	GRANT r_limited TO app;
	CREATE DATABASE ded OWNER app;
});
$node->safe_psql('app', q{
	CREATE TABLE app_only (x int);
	INSERT INTO app_only VALUES (1);
	ALTER TABLE app_only OWNER TO app;
	CREATE SEQUENCE seq1;
	ALTER SEQUENCE seq1 OWNER TO app;
	CREATE FUNCTION set_wm(text) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN RETURN set_config('work_mem', $1, false); END $f$;
	CREATE TABLE w (x int);
	ALTER TABLE w OWNER TO app;
});

sub pool_serves
{
	return wait_until(
		sub {
			my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 10);
			return $ret == 0 && $out eq '1';
		},
		30);
}
ok(pool_serves(), 'pool port serves');

# conn(%startup): a logged-in raw session through the pool port
sub conn
{
	my (%o) = @_;
	my $port = delete $o{port} // $pp;
	my $c = PoolTest::Raw->new(port => $port, timeout => 15);
	my %kv = (user => 'app', database => 'app', %o);
	$c->login(%kv)
	  or die 'login failed: '
	  . join(', ', map { $_->{M} // '' } @{ $c->{startup}{errors} || [] });
	return $c;
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

# result of a finished Query: rows, or "SQLSTATE: message" on error
sub res_str
{
	my ($r) = @_;
	return 'NO REPLY' unless $r->{complete};
	return err_str($r) if @{ $r->{errors} };
	return rows_str($r);
}

sub sq
{
	my ($c, $sql, $timeout) = @_;
	return res_str($c->query($sql, $timeout));
}

# "name=value,..." of the ParameterStatus messages of a result
sub pstat
{
	my ($r) = @_;
	return join(',', map { "$_->[0]=$_->[1]" } @{ $r->{param_status} });
}

sub fe_msg
{
	my ($type, $payload) = @_;
	return $type . pack('N', 4 + length $payload) . $payload;
}

sub Parse
{
	my ($name, $query) = @_;
	return fe_msg('P', "$name\0$query\0" . pack('n', 0));
}

sub Bind
{
	my ($portal, $stmt, @params) = @_;
	my $b = "$portal\0$stmt\0" . pack('n', 0) . pack('n', scalar @params);
	$b .= pack('N', length $_) . $_ for @params;
	return fe_msg('B', $b . pack('n', 0));
}
sub Exec { return fe_msg('E', "$_[0]\0" . pack('N', 0)); }
sub Sync { return fe_msg('S', ''); }

sub ext
{
	my ($c, $bytes) = @_;
	$c->send_bytes($bytes)
	  or return { complete => 0, errors => [], rows => [], types => '' };
	return $c->read_result;
}

# runs the protocol-level statement NAME with text parameters
sub ext_exec
{
	my ($c, $name, @params) = @_;
	return res_str(ext($c, Bind('', $name, @params) . Exec('') . Sync()));
}

sub main_val
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

sub pid_of
{
	my ($c) = @_;
	return $c->query_value('SELECT pg_backend_pid()') // 'none';
}

# pinned count of the executor PID (undef if not listed)
sub pinned_of
{
	my ($pid) = @_;
	my @s = $node->pool_status("pid = $pid");
	return @s ? $s[0]{pinned} : undef;
}

sub wait_pinned
{
	my ($pid, $want, $timeout) = @_;
	return wait_until(sub { (pinned_of($pid) // -1) == $want }, $timeout // 10);
}

# a query sent by C gets no answer within SECONDS (the session waits)
sub waits
{
	my ($c, $sql, $seconds) = @_;
	$c->send_query($sql);
	my $r = $c->read_result($seconds);
	return $r->{complete} ? res_str($r) : undef;
}

###########################################################################
# 1. Settings of two sessions on one executor
###########################################################################
{
	my $A = conn(application_name => 'sa');
	my $B = conn(application_name => 'sb');
	my $pid = pid_of($A);
	is(pid_of($B), $pid, '1: A and B share the executor');

	my $wm0 = sq($B, 'SHOW work_mem');
	is(sq($A, q{SET work_mem = '7MB'}), '', 'A: SET work_mem');
	is(sq($B, 'SHOW work_mem'), $wm0, "B does not see A's SET");
	is(sq($B, q{SELECT set_config('work_mem', '9MB', false)}), '9MB',
		'B: set_config(..., false)');
	is(sq($A, 'SHOW work_mem'), '7MB', "A does not see B's set_config");
	is(sq($B, 'SHOW work_mem'), '9MB', 'B keeps its set_config value');

	is(sq($A, q{BEGIN; SET LOCAL work_mem = '12MB'; SHOW work_mem; COMMIT}),
		'12MB', 'A: SET LOCAL inside its transaction');
	is(sq($A, 'SHOW work_mem'), '7MB', 'A: SET LOCAL gone after COMMIT');
	is( sq($A, q{BEGIN; SELECT set_config('work_mem', '13MB', true); COMMIT; SHOW work_mem}),
		'13MB;7MB', 'A: set_config(..., true) is transaction local');
	is(sq($A, q{BEGIN; SET work_mem = '14MB'; ROLLBACK; SHOW work_mem}),
		'7MB', 'A: SET in a rolled back transaction undone');
	is(sq($B, 'SHOW work_mem'), '9MB', 'B unaffected by all of it');

	is(sq($A, q{SELECT set_wm('15MB')}), '15MB', 'A: set_config() from a function');
	is(sq($B, 'SHOW work_mem'), '9MB', "B does not see A's function's setting");
	is(sq($A, 'SHOW work_mem'), '15MB', 'A keeps it');

	# formatting settings change what each client receives
	is( sq($A,
			q{SET extra_float_digits = -3; SET TimeZone = 'Asia/Tokyo'; SET IntervalStyle = 'sql_standard'; SET bytea_output = 'escape'; SET DateStyle = 'SQL, DMY'}
		),
		'',
		'A: formatting settings');
	my $fmt = q{SELECT 1.0/3.0::float8, '2024-01-02 00:00:00+00'::timestamptz, interval '1 day 2 hours', 'ab'::bytea};
	my $fmtB0 = sq($B, $fmt);
	is( sq($A, $fmt),
		'0.333333333333,02/01/2024 09:00:00 JST,1 2:00:00,ab',
		'A formats with its settings');
	is(sq($B, $fmt), $fmtB0, "B's formatting unchanged by A's settings");
	my $F = conn();
	is($fmtB0, sq($F, $fmt), "B formats like a fresh session");
	$F->terminate;

	# transaction characteristics
	is( sq($A,
			q{SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE; SET default_transaction_read_only = on}
		),
		'',
		'A: SET SESSION CHARACTERISTICS, default_transaction_read_only');
	is(sq($B, 'SHOW transaction_isolation'), 'read committed', 'B: read committed');
	is(sq($B, 'INSERT INTO w VALUES (1)'), '', 'B can write');
	is(sq($A, 'SHOW transaction_isolation'), 'serializable', 'A: serializable');
	like(sq($A, 'INSERT INTO w VALUES (2)'), qr/^25006: /, 'A: read-only transaction');
	is(sq($A, 'SET default_transaction_read_only = off'), '', 'A: read-write again');

	# custom placeholders
	is(sq($A, q{SET myapp.tenant = 'tenantA'}), '', 'A: SET a custom placeholder');
	my $ph = sq($B, q{SELECT current_setting('myapp.tenant', true)});
	isnt($ph, 'tenantA', "B does not see A's placeholder value");
	is(sq($A, 'SHOW myapp.tenant'), 'tenantA', 'A keeps its placeholder value');
	is(sq($B, q{SET myapp.tenant = 'tenantB'}), '', 'B: SET the same placeholder');
	is(sq($A, 'SHOW myapp.tenant'), 'tenantA', "A's value unchanged by B");
	is(sq($B, 'SHOW myapp.tenant'), 'tenantB', "B's own value");
	is($ph, 'NULL',
		"current_setting('myapp.tenant', true) in B before B set it: NULL as in a fresh backend");
	{
		my $C = conn();
		is(sq($C, 'SHOW myapp.tenant'), '42704: unrecognized configuration parameter "myapp.tenant"',
			"C: SHOW of another session's placeholder: unrecognized, as core");
		is(sq($C, q{SELECT current_setting('myapp.tenant')}),
			'42704: unrecognized configuration parameter "myapp.tenant"',
			"C: current_setting() of another session's placeholder: unrecognized");
		is(sq($C, q{DO $$BEGIN RAISE NOTICE '%', coalesce(current_setting('myapp.tenant', true), 'none'); END$$; SELECT set_config('myapp.tenant', 'tenantC', false); SELECT current_setting('myapp.tenant')}),
			'tenantC;tenantC', 'C: set_config() then current_setting() of its own');
		$C->terminate;
	}

	# ParameterStatus goes only to the session that changed something
	my $r = $A->query(q{SET TimeZone = 'Europe/Paris'});
	is(pstat($r), 'TimeZone=Europe/Paris', 'A: ParameterStatus for its SET TimeZone');
	$r = $B->query('SELECT 1');
	is(pstat($r), '', "B: no ParameterStatus after A's SET");
	$r = $A->query('SELECT 1');
	is(pstat($r), '', 'A: no repeated ParameterStatus after a switch');
	$r = $B->query(q{SET application_name = 'sb2'});
	is(pstat($r), 'application_name=sb2', 'B: ParameterStatus application_name');
	$r = $A->query(q{SET application_name = 'sa'});
	is(pstat($r), '', 'A: SET to its current value reports nothing (as core)');

	# RESET, SET TO DEFAULT, RESET ALL: own startup values
	is(sq($A, 'RESET work_mem; SHOW work_mem'), $wm0, 'A: RESET work_mem');
	is(sq($B, 'SHOW work_mem'), '9MB', "A's RESET leaves B's value");
	is(sq($B, 'SET work_mem TO DEFAULT; SHOW work_mem'), $wm0, 'B: SET TO DEFAULT');
	$r = $A->query('RESET ALL');
	is( join(',', sort map { $_->[0] } @{ $r->{param_status} }),
		'DateStyle,IntervalStyle,TimeZone',
		'A: RESET ALL reports the GUC_REPORT settings it changed back');
	is(sq($A, 'SELECT current_setting(\'application_name\'), current_setting(\'transaction_isolation\')'),
		'sa,read committed', 'A: RESET ALL keeps its startup application_name');
	is(sq($A, $fmt), $fmtB0, 'A: formatting back to defaults');
	is(sq($B, 'SHOW application_name'), 'sb2', "B keeps its application_name");
	is(sq($B, 'SHOW myapp.tenant'), 'tenantB', "B keeps its placeholder after A's RESET ALL");
	$r = $B->query('RESET ALL');
	is(pstat($r), 'application_name=sb', 'B: RESET ALL back to its own startup application_name');
	$A->terminate;
	$B->terminate;
}

###########################################################################
# 1b. ParameterStatus: the same messages as a backend of the main port,
#     while another session on the executor changes the same settings
###########################################################################
{
	my %login = (user => 'su', application_name => 'ps_cmp',
		options => '-c DateStyle=SQL,DMY');
	my $M = conn(port => $node->port, %login);
	my $P = conn(%login);
	my $Q = conn(user => 'su');
	is(pid_of($Q), pid_of($P), '1b: P and Q share the executor');
	my $sorted = sub { join(',', sort map { "$_->[0]=$_->[1]" } @{ $_[0]{param_status} }) };
	my $i = 0;
	for my $op (
		q{SET DateStyle = 'German'},
		q{SET DateStyle = 'German'},
		q{SET TimeZone = 'Asia/Tokyo'},
		q{SET IntervalStyle = 'iso_8601'},
		q{SET application_name = 'changed'},
		q{SET standard_conforming_strings = off},
		q{SET client_encoding = 'LATIN1'},
		q{SET default_transaction_read_only = on},
		q{BEGIN; SET LOCAL DateStyle = 'ISO'; COMMIT},
		q{BEGIN; SET DateStyle = 'Postgres'; ROLLBACK},
		q{SELECT set_config('TimeZone', 'UTC', false)},
		'RESET ALL',
		'SET SESSION AUTHORIZATION app',
		q{SET DateStyle = 'ISO'},
		'RESET SESSION AUTHORIZATION',
		'SET SESSION AUTHORIZATION app',
		'DISCARD ALL',
		q{SET application_name = 'again'},
		'RESET application_name')
	{
		$i++;
		my $want = $sorted->($M->query($op));
		my $got = $sorted->($P->query($op));
		is($got, $want, "ParameterStatus after '$op' as on the main port ($want)");
		# Q changes the same settings in between
		my $q = $Q->query($i % 2
			? q{SET DateStyle = 'Postgres, YMD'; SET TimeZone = 'America/Caracas'; SET application_name = 'Q'; SET client_encoding = 'SQL_ASCII'; SET IntervalStyle = 'postgres_verbose'; SET standard_conforming_strings = off}
			: 'RESET ALL');
		ok($q->{complete} && !@{ $q->{errors} }, "Q ran in between ($i)");
	}
	is(sq($P, q{SELECT current_setting('DateStyle'), current_setting('application_name')}),
		sq($M, q{SELECT current_setting('DateStyle'), current_setting('application_name')}),
		'P ends with the settings of the main-port session');
	$_->terminate for ($M, $P, $Q);
}

###########################################################################
# 2. Startup options
###########################################################################
{
	my $A = conn(options => '-c work_mem=5MB -c search_path=foo,public -c DateStyle=German',
		application_name => 'optA');
	my $B = conn();
	is(pid_of($B), pid_of($A), '2: A and B share the executor');
	my $wm0 = sq($B, 'SHOW work_mem');
	my $opts_q = q{SELECT current_setting('work_mem'), current_setting('search_path'), current_setting('DateStyle'), current_setting('application_name')};
	my $M = conn(port => $node->port,
		options => '-c work_mem=5MB -c search_path=foo,public -c DateStyle=German',
		application_name => 'optA');
	my $want_opts = sq($M, $opts_q);
	$M->terminate;
	like($want_opts, qr/^5MB,.*foo.*public.*,German, DMY,optA$/, 'main port: startup options applied');
	is(sq($A, $opts_q), $want_opts, 'A: startup options applied as on the main port');
	my ($sp0) = $want_opts =~ /^5MB,(.*),German/;
	is( sq($B, q{SELECT current_setting('work_mem'), current_setting('search_path'), current_setting('DateStyle')}),
		qq{$wm0,"\$user", public,ISO, MDY},
		"B: none of A's startup options");
	is($A->{params}{DateStyle}, 'German, DMY', 'A: greeting ParameterStatus DateStyle');
	is($B->{params}{DateStyle}, 'ISO, MDY', 'B: greeting ParameterStatus DateStyle');

	sq($A, q{SET work_mem = '6MB'; SET search_path = public; SET DateStyle = ISO});
	is(sq($A, 'RESET work_mem; SHOW work_mem'), '5MB', 'A: RESET to its startup value');
	sq($B, q{SET work_mem = '8MB'});
	is(sq($A, 'RESET ALL; SELECT current_setting(\'search_path\'), current_setting(\'DateStyle\')'),
		"$sp0,German, DMY", 'A: RESET ALL to its startup values');
	is(sq($B, 'SHOW work_mem'), '8MB', "B keeps its SET after A's RESET ALL");
	sq($A, q{SET work_mem = '6MB'; SET DateStyle = ISO});
	is(sq($A, 'DISCARD ALL'), '', 'A: DISCARD ALL');
	is( sq($A, q{SELECT current_setting('work_mem'), current_setting('DateStyle'), current_setting('application_name')}),
		'5MB,German, DMY,optA', 'A: DISCARD ALL back to its startup values');
	is(sq($B, 'SHOW work_mem'), '8MB', "B keeps its SET after A's DISCARD ALL");
	is(sq($B, 'RESET work_mem; SHOW work_mem'), $wm0, 'B: RESET to the default');

	{
		my $M = conn(port => $node->port, options => '-c work_mem=5MB');
		my $want = sq($M,
			q{SELECT reset_val, source FROM pg_settings WHERE name = 'work_mem'});
		is( sq($A, q{SELECT reset_val, source FROM pg_settings WHERE name = 'work_mem'}),
			$want, 'pg_settings shows a startup option as the main port does ('
			  . $want . ')');
		$M->terminate;
	}
	$A->terminate;
	$B->terminate;

	# PGOPTIONS with psql
	my $P;
	{
		local $ENV{PGOPTIONS} = '-c work_mem=5MB';
		$P = $node->pool_bg_psql('app');
	}
	my $Q = $node->pool_bg_psql('app');
	is(bgq($P, 'SELECT pg_backend_pid()'), bgq($Q, 'SELECT pg_backend_pid()'),
		'psql with PGOPTIONS shares the executor');
	is(bgq($P, 'SHOW work_mem'), '5MB', "PGOPTIONS='-c work_mem=5MB' applied");
	is(bgq($Q, 'SHOW work_mem'), $wm0, 'other psql: default work_mem');
	bgq($P, q{SET work_mem = '6MB'});
	is(bgq($P, 'SHOW work_mem'), '6MB', 'SET over the startup option');
	bgq($Q, 'SELECT 1');
	bgq($P, 'RESET work_mem');
	is(bgq($P, 'SHOW work_mem'), '5MB', 'RESET returns to the PGOPTIONS value');
	bgq($P, q{SET work_mem = '6MB'});
	bgq($P, 'RESET ALL');
	is(bgq($P, 'SHOW work_mem'), '5MB', 'RESET ALL returns to the PGOPTIONS value');
	is(bgq($Q, 'SHOW work_mem'), $wm0, 'other psql still at the default');
	$P->quit;
	$Q->quit;
}

###########################################################################
# 3. ALTER DATABASE / ROLE ... SET
###########################################################################
{
	my $old = conn();    # started before the ALTERs (executor running)
	my $wm0 = sq($old, 'SHOW work_mem');
	$node->safe_psql('postgres', q{
		ALTER DATABASE app SET lock_timeout = '17s';
		ALTER DATABASE app SET work_mem = '3MB';
		ALTER ROLE app SET statement_timeout = '19s';
		ALTER ROLE app IN DATABASE app SET work_mem = '6MB';
	});
	my $A = conn();
	is(pid_of($A), pid_of($old), '3: new session on the running executor');
	is(sq($A, 'SHOW lock_timeout'), '17s',
		'ALTER DATABASE ... SET made on a running executor applies to a new session');
	is(sq($A, 'SHOW statement_timeout'), '19s',
		'ALTER ROLE ... SET made on a running executor applies to a new session');
	is(sq($A, 'SHOW work_mem'), '6MB',
		'ALTER ROLE ... IN DATABASE ... SET applies and wins over ALTER DATABASE');
	is( sq($old, q{SELECT current_setting('lock_timeout'), current_setting('work_mem')}),
		"0,$wm0", 'a session started before keeps its values (as in core)');
	sq($A, q{SET lock_timeout = '1s'; SET statement_timeout = '2s'; SET work_mem = '1MB'});
	is(sq($old, 'SHOW work_mem'), $wm0, "the old session does not see A's SET");
	is(sq($A, 'RESET lock_timeout; SHOW lock_timeout'), '17s', 'RESET returns to the database setting');
	is(sq($A, 'RESET ALL; SELECT current_setting(\'statement_timeout\'), current_setting(\'work_mem\')'),
		'19s,6MB', 'RESET ALL returns to the role settings');
	my $S = conn(user => 'su');
	is( sq($S, q{SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), current_setting('work_mem')}),
		'17s,0,3MB', "another role's new session (its executor also running) gets the database's settings only");
	$S->terminate;
	$node->safe_psql('postgres', q{
		ALTER DATABASE app RESET ALL;
		ALTER ROLE app RESET ALL;
		ALTER ROLE app IN DATABASE app RESET ALL;
	});
	my $N = conn();
	is(sq($N, q{SELECT current_setting('lock_timeout'), current_setting('work_mem')}),
		"0,$wm0", 'after ALTER ... RESET ALL new sessions get the defaults');
	$N->terminate;
	$A->terminate;
	$old->terminate;
}

###########################################################################
# 4. SET ROLE, SET SESSION AUTHORIZATION
###########################################################################
{
	my $A = conn();
	my $B = conn();
	is(pid_of($B), pid_of($A), '4: A and B share the executor');
	is(sq($A, 'SET ROLE r_limited'), '', 'A: SET ROLE r_limited');
	is(sq($B, 'SELECT current_user, session_user'), 'app,app', "B: current_user app");
	is(sq($B, 'SELECT x FROM app_only'), '1', 'B reads its table');
	is(sq($A, 'SELECT current_user, session_user'), 'r_limited,app', 'A: current_user r_limited');
	like(sq($A, 'SELECT x FROM app_only'), qr/^42501: permission denied/,
		'A: privileges of r_limited');
	is(sq($B, 'SELECT current_user'), 'app', 'B again: app');
	is(sq($A, 'BEGIN; SET LOCAL ROLE NONE; SELECT current_user; COMMIT'), 'app',
		'A: SET LOCAL ROLE NONE inside a transaction');
	is(sq($A, 'SELECT current_user'), 'r_limited', 'A: back to r_limited after COMMIT');
	is(sq($A, 'RESET ALL; SELECT current_user'), 'r_limited',
		'A: RESET ALL does not reset the role (as in core)');
	is(sq($A, 'RESET ROLE; SELECT current_user'), 'app', 'A: RESET ROLE');
	is(sq($B, q{SELECT set_config('role', 'r_limited', false)}), 'r_limited',
		"B: set_config('role')");
	is(sq($A, 'SELECT current_user'), 'app', "A does not get B's role");
	is(sq($B, 'SELECT current_user'), 'r_limited', 'B keeps its role');
	is(sq($B, 'DISCARD ALL'), '', 'B: DISCARD ALL');
	is(sq($B, 'SELECT current_user'), 'app', 'B: DISCARD ALL reset the role');
	$A->terminate;
	$B->terminate;

	# superuser pool: SET SESSION AUTHORIZATION
	my $S1 = conn(user => 'su');
	my $S2 = conn(user => 'su');
	my $spid = pid_of($S1);
	is(pid_of($S2), $spid, 'S1 and S2 share the executor of the su pool');
	is(sq($S1, 'SET SESSION AUTHORIZATION app'), '', 'S1: SET SESSION AUTHORIZATION app');
	is(sq($S2, 'SELECT session_user, current_user, current_setting(\'is_superuser\')'),
		'su,su,on', 'S2: still su, superuser');
	is(sq($S2, 'SELECT count(*) > 0 FROM pg_authid'), 't', 'S2 reads pg_authid');
	is(sq($S1, 'SELECT session_user, current_user, current_setting(\'is_superuser\')'),
		'app,app,off', 'S1: app, not superuser');
	like(sq($S1, 'SELECT count(*) FROM pg_authid'), qr/^42501: /, 'S1 cannot read pg_authid');
	sq($S1, 'CREATE TABLE owned_s1 (x int)');
	sq($S2, 'CREATE TABLE owned_s2 (x int)');
	is( main_val('app',
			q{SELECT string_agg(relname || ':' || relowner::regrole::text, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE 'owned_s%'}
		),
		'owned_s1:app,owned_s2:su',
		'objects are owned by each session\'s own user');
	is(sq($S1, 'RESET SESSION AUTHORIZATION; SELECT session_user, current_user'),
		'su,su', 'S1: RESET SESSION AUTHORIZATION');
	sq($S1, 'SET SESSION AUTHORIZATION app; SET ROLE r_limited');
	is(sq($S2, 'SELECT current_user'), 'su', 'S2 unaffected');
	is(sq($S1, 'SELECT session_user, current_user'), 'app,r_limited',
		'S1: SET ROLE after SET SESSION AUTHORIZATION');
	is(sq($S1, 'DISCARD ALL'), '', 'S1: DISCARD ALL');
	is(sq($S1, 'SELECT session_user, current_user, current_setting(\'is_superuser\')'), 'su,su,on',
		'S1: DISCARD ALL reset the session authorization');
	sq($S1, 'SET SESSION AUTHORIZATION app');
	$S1->terminate;
	my $S3 = conn(user => 'su');
	is(pid_of($S3), $spid, 'S3 on the same executor');
	is(sq($S3, 'SELECT session_user, current_user, current_setting(\'is_superuser\')'),
		'su,su,on', "S3 does not inherit S1's session authorization");
	$S2->terminate;
	$S3->terminate;
	$node->safe_psql('app', 'DROP TABLE owned_s1, owned_s2');
}

###########################################################################
# 5. Prepared statements private, gone with their session
###########################################################################
{
	my $A = conn();
	my $B = conn();
	my $pid = pid_of($A);
	is(pid_of($B), $pid, '5: A and B share the executor');
	is(sq($A, q{PREPARE a_ps AS SELECT 'a_ps of A'}), '', 'A: PREPARE a_ps');
	is(res_str(ext($A, Parse('a_proto', q{SELECT 'proto ' || $1::text}) . Sync())), '',
		'A: Parse named statement a_proto');
	like(sq($B, 'EXECUTE a_ps'), qr/^26000: prepared statement "a_ps" does not exist/,
		"B cannot EXECUTE A's a_ps");
	like(ext_exec($B, 'a_proto', 'x'), qr/^26000: /, "B cannot Bind A's a_proto");
	is(sq($A, 'EXECUTE a_ps'), 'a_ps of A', 'A: EXECUTE a_ps');
	is(ext_exec($A, 'a_proto', 'x'), 'proto x', 'A: Bind/Execute a_proto');
	is(sq($B, 'SELECT count(*) FROM pool_prepared_statements'), '0',
		'B: pool_prepared_statements empty');
	$A->terminate;
	my $C = conn();
	is(pid_of($C), $pid, 'C: on the same executor after A ended');
	is(sq($C, 'SELECT count(*) FROM pg_prepared_statements'), '0',
		"the executor holds none of A's statements (pg_prepared_statements)");
	like(sq($C, 'EXECUTE a_ps'), qr/^26000: /, 'C: a_ps does not exist');
	like(ext_exec($C, 'a_proto', 'x'), qr/^26000: /, 'C: a_proto does not exist');
	$B->terminate;
	$C->terminate;
}

###########################################################################
# 6. currval / lastval
###########################################################################
{
	my $A = conn();
	my $B = conn();
	is(pid_of($B), pid_of($A), '6: A and B share the executor');
	my $nv = sq($A, q{BEGIN; SELECT nextval('seq1'); SELECT currval('seq1') = nextval('seq1') - 1, lastval() = currval('seq1'); COMMIT});
	like($nv, qr/^\d+;t,t$/, 'A: currval/lastval within its transaction');
	my $cur = sq($A, q{SELECT currval('seq1')});
	like($cur, qr/^\d+$/, 'A: currval kept while no other session ran');
	is(sq($B, q{SELECT currval('seq1')}),
		'55000: currval of sequence "seq1" is not yet defined in this session',
		"B: no currval (A's is not revealed)");
	is(sq($B, 'SELECT lastval()'), '55000: lastval is not yet defined in this session',
		"B: no lastval");
	is(sq($A, q{SELECT currval('seq1'), lastval()}), "$cur,$cur",
		'A: its own currval and lastval after B ran on the executor, as on its own backend');
	is(sq($B, q{SELECT nextval('seq1')}), $cur + 1, 'B: nextval');
	is(sq($A, q{SELECT currval('seq1')}), $cur, "A: currval unchanged by B's nextval");
	is(sq($B, q{SELECT currval('seq1'), lastval()}), ($cur + 1) . ',' . ($cur + 1),
		'B: its own currval and lastval');
	is(sq($B, q{SELECT setval('seq1', 1000)}), '1000', 'B: setval');
	sq($A, 'SELECT 1');
	is(sq($B, q{SELECT currval('seq1')}), '1000', 'B: currval is its setval value after A ran');
	is(sq($B, 'SELECT lastval()'), '1000', 'B: lastval follows setval of its last sequence, as core');
	is(sq($B, q{SELECT setval('seq1', 5000, false)}), '5000', 'B: setval(..., false)');
	sq($A, 'SELECT 1');
	is(sq($B, q{SELECT currval('seq1')}), '1000', 'B: setval(..., false) leaves currval, as core');
	is(sq($A, q{SELECT nextval('seq1'); SELECT currval('seq1')}), '5000;5000',
		'A: nextval/currval in one query string');

	# values drawn where no call shows: serial and identity defaults, COPY,
	# a PL/pgSQL function, a prepared statement
	sq($A, q{CREATE TABLE ser_t (id serial, v text); CREATE TABLE idn_t (id int GENERATED ALWAYS AS IDENTITY, v text); CREATE TABLE big_idn_t (id bigint GENERATED BY DEFAULT AS IDENTITY, v text)});
	sq($A, q{INSERT INTO ser_t (v) VALUES ('a1')});
	sq($B, q{INSERT INTO ser_t (v) VALUES ('b1'), ('b2')});
	is(sq($A, q{SELECT currval('ser_t_id_seq'), lastval()}), '1,1', 'A: serial default: own currval/lastval');
	is(sq($B, q{SELECT lastval()}), '3', 'B: serial default: own lastval');
	sq($B, q{INSERT INTO idn_t (v) VALUES ('b')});
	sq($A, q{INSERT INTO idn_t (v) VALUES ('a'); INSERT INTO big_idn_t (v) VALUES ('a')});
	sq($B, 'SELECT 1');
	is(sq($A, q{SELECT lastval(), currval(pg_get_serial_sequence('idn_t', 'id'))}), '1,2',
		'A: identity columns: own lastval and currval');
	is(sq($B, q{SELECT lastval()}), '1', 'B: identity: own lastval');
	is(sq($A, q{SELECT id FROM idn_t WHERE v = 'a'}), '2', 'identity values still unique and in order');
	my $r = $A->query('COPY ser_t (v) FROM STDIN');
	ok($r->{copy_in}, 'A: COPY FROM STDIN into the serial table');
	$A->send_bytes(PoolTest::Raw::msg('d', "c1\nc2\nc3\n") . PoolTest::Raw::msg('c', ''));
	$r = $A->read_result;
	is_deeply($r->{tags}, ['COPY 3'], 'A: COPY 3');
	sq($B, 'SELECT 1');
	is(sq($A, q{SELECT currval('ser_t_id_seq'), lastval()}), '6,6', 'A: currval/lastval after COPY and a switch');
	sq($A, q{CREATE FUNCTION draw() RETURNS bigint LANGUAGE plpgsql AS $$BEGIN RETURN nextval('seq1'); END$$});
	my $drawn = sq($A, 'SELECT draw()');
	sq($B, 'SELECT 1');
	is(sq($A, q{SELECT currval('seq1')}), $drawn, 'A: nextval inside a PL/pgSQL function');
	sq($B, q{PREPARE nv AS SELECT nextval('seq1')});
	my $bdrawn = sq($B, 'EXECUTE nv');
	sq($A, 'SELECT 1');
	is(sq($B, q{SELECT currval('seq1')}), $bdrawn, 'B: nextval in a prepared statement');
	is(sq($A, q{SELECT currval('seq1')}), $drawn, "A: still its own after B's prepared nextval");

	# privileges: as core
	$node->safe_psql('postgres', q{CREATE ROLE seq_r LOGIN});
	$node->safe_psql('app', q{CREATE SEQUENCE priv_seq; GRANT INSERT ON idn_t TO seq_r; GRANT SELECT ON idn_t TO seq_r});
	my $R = conn(user => 'seq_r');
	like(sq($R, q{SELECT nextval('priv_seq')}), qr/^42501: permission denied for sequence priv_seq/,
		'no USAGE: nextval refused as core');
	is(sq($R, q{INSERT INTO idn_t (v) VALUES ('r') RETURNING id}), '3',
		'INSERT privilege alone draws an identity value, as core');
	$R->terminate;

	is(sq($A, q{BEGIN; SELECT nextval('seq1'); DISCARD SEQUENCES; SELECT currval('seq1')}),
		'55000: currval of sequence "seq1" is not yet defined in this session',
		'A: DISCARD SEQUENCES inside a transaction');
	sq($A, 'ROLLBACK');
	is(sq($A, 'DISCARD SEQUENCES; SELECT lastval()'), '55000: lastval is not yet defined in this session',
		'A: DISCARD SEQUENCES forgets its values');
	is(sq($B, q{SELECT currval('seq1')}), $bdrawn, "B: keeps its values after A's DISCARD SEQUENCES");
	sq($B, 'DISCARD ALL');
	is(sq($B, 'SELECT lastval()'), '55000: lastval is not yet defined in this session',
		'B: DISCARD ALL forgets its values');
	sq($A, 'DROP TABLE ser_t, idn_t, big_idn_t; DROP FUNCTION draw()');
	$A->terminate;
	$B->terminate;
}

###########################################################################
# 7. DISCARD variants act on the caller only
###########################################################################
{
	my $A = conn();
	my $B = conn(options => '-c work_mem=5MB');
	is(pid_of($B), pid_of($A), '7: A and B share the executor');
	sq($A, q{PREPARE pa AS SELECT 'pa'; SET work_mem = '7MB'});
	sq($B, q{PREPARE pb AS SELECT 'pb'; SET work_mem = '9MB'});
	is(sq($B, 'DISCARD PLANS'), '', 'B: DISCARD PLANS');
	is(sq($A, 'EXECUTE pa'), 'pa', "A's statement still works");
	is(sq($B, 'EXECUTE pb'), 'pb', "B's statement still works (DISCARD PLANS keeps statements)");
	is(sq($B, 'DISCARD ALL'), '', 'B: DISCARD ALL');
	like(sq($B, 'EXECUTE pb'), qr/^26000: /, "B's statement gone");
	is(sq($B, 'SHOW work_mem'), '5MB', "B back to its startup work_mem");
	is(sq($A, 'EXECUTE pa'), 'pa', "A's statement survives B's DISCARD ALL");
	is(sq($A, 'SHOW work_mem'), '7MB', "A's setting survives B's DISCARD ALL");
	like(sq($A, 'BEGIN; DISCARD ALL'), qr/^25001: DISCARD ALL cannot run inside a transaction block/,
		'DISCARD ALL in a transaction block: core error');
	sq($A, 'ROLLBACK');
	is(sq($A, 'DISCARD SEQUENCES'), '', 'A: DISCARD SEQUENCES');
	is(sq($B, 'SHOW work_mem'), '5MB', 'B still 5MB');

	# DISCARD TEMP unpins (B waits meanwhile: one executor)
	is(sq($A, 'CREATE TEMP TABLE dt (x int)'), '', 'A: temp table');
	ok(wait_pinned(pid_of($A), 1), 'A pinned');
	ok(!defined waits($B, 'SELECT 42', 1.5), 'B waits while A is pinned');
	is(sq($A, 'DISCARD TEMP'), '', 'A: DISCARD TEMP');
	is(res_str($B->read_result(10)), '42', 'B served once A discarded its temp table');
	is(pinned_of(pid_of($A)), 0, 'executor unpinned');
	$A->terminate;
	$B->terminate;
}

###########################################################################
# 8. Pinning with one executor; session end releases everything
###########################################################################
{
	my $A = conn(application_name => 'pinA');
	my $B = conn(application_name => 'pinB');
	my $pid = pid_of($A);
	is(pid_of($B), $pid, '8: A and B share the executor');

	# each kind of state pins, and unpins when it is gone
	for my $case (
		[ 'temp table', 'CREATE TEMP TABLE p_tmp (x int)', 'DROP TABLE p_tmp' ],
		[ 'temp table from SELECT INTO', 'SELECT 1 AS x INTO TEMP p_into', 'DROP TABLE p_into' ],
		[ 'temp view', 'CREATE TEMP VIEW p_view AS SELECT 1', 'DROP VIEW p_view' ],
		[ 'temp sequence', 'CREATE TEMP SEQUENCE p_seq', 'DROP SEQUENCE p_seq' ],
		[ 'session advisory lock', 'SELECT pg_advisory_lock(4242)', 'SELECT pg_advisory_unlock(4242)' ],
		[ 'shared session advisory lock', 'SELECT pg_advisory_lock_shared(4243)', 'SELECT pg_advisory_unlock_all()' ],
		[ 'LISTEN', 'LISTEN p_chan', 'UNLISTEN p_chan' ],
		[ 'WITH HOLD cursor', 'DECLARE p_cur CURSOR WITH HOLD FOR SELECT 1', 'CLOSE p_cur' ],
		[ 'WITH HOLD cursor in a committed block', 'BEGIN; DECLARE p_cur2 CURSOR WITH HOLD FOR SELECT 1; COMMIT', 'CLOSE ALL' ])
	{
		my ($what, $pin, $unpin) = @$case;
		unlike(sq($A, $pin), qr/^[0-9A-Z]{5}: /, "A: $what");
		ok(wait_pinned($pid, 1), "$what: pool_status shows the executor pinned");
		ok(!defined waits($B, 'SELECT 7', 1), "$what: B waits while A is pinned");
		unlike(sq($A, $unpin), qr/^[0-9A-Z]{5}: /, "A: $what released");
		is(res_str($B->read_result(10)), '7', "$what: B served once A unpinned");
		is(pinned_of($pid), 0, "$what: pinned = 0");
	}

	# state that does not pin
	for my $case (
		[ 'transaction advisory lock', 'SELECT pg_advisory_xact_lock(4244)' ],
		[ 'temp table rolled back', 'BEGIN; CREATE TEMP TABLE p_rb (x int); ROLLBACK' ],
		[ 'temp table ON COMMIT DROP', 'CREATE TEMP TABLE p_ocd (x int) ON COMMIT DROP' ],
		[ 'WITH HOLD cursor rolled back', 'BEGIN; DECLARE p_rbc CURSOR WITH HOLD FOR SELECT 1; ROLLBACK' ],
		[ 'cursor without hold', 'BEGIN; DECLARE p_nh CURSOR FOR SELECT 1; COMMIT' ])
	{
		my ($what, $sql) = @$case;
		unlike(sq($A, $sql), qr/^[0-9A-Z]{5}: /, "A: $what");
		is(sq($B, 'SELECT 8', 5), '8', "$what: does not pin (B served)");
	}
	sq($A, 'BEGIN; LISTEN p_rolled_back; ROLLBACK');
	is(sq($A, 'SELECT count(*) FROM pg_listening_channels()'), '0',
		'LISTEN rolled back: not listening (as in core)');
	{
		my $got = waits($B, 'SELECT 9', 2);
		is($got, '9', 'LISTEN rolled back: does not pin');
		if (!defined $got)
		{
			sq($A, 'UNLISTEN *');
			$B->read_result(10);
		}
	}

	# A holds all of it, then ends with Terminate
	my $setup = q{
		SET work_mem = '11MB';
		PREPARE end_ps AS SELECT 'A statement';
		CREATE TEMP TABLE end_tmp AS SELECT 'A row' AS x;
		SELECT pg_advisory_lock(5151);
		LISTEN end_chan;
		DECLARE end_cur CURSOR WITH HOLD FOR SELECT 'A cursor';
	};
	unlike(sq($A, $setup), qr/^[0-9A-Z]{5}: /, 'A: settings, statement, temp table, lock, LISTEN, cursor');
	is(res_str(ext($A, Parse('end_proto', q{SELECT 'A proto'}) . Sync())), '', 'A: protocol statement');
	ok(wait_pinned($pid, 1), 'A pinned');
	is( main_val('app', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 5151 AND granted}),
		'1', 'main port: A holds the advisory lock');
	$B->send_query(q{SELECT current_setting('work_mem') <> '11MB', count(*) FILTER (WHERE relpersistence = 't') FROM pg_class WHERE relname = 'end_tmp'});
	my $r = $B->read_result(1);
	ok(!$r->{complete}, 'B waits while A holds it');
	$A->terminate;
	$r = $B->read_result(10);
	is(res_str($r), 't,0', "B served after A ended: A's work_mem and temp table gone");
	is(pid_of($B), $pid, 'B on the same executor');
	is(sq($B, 'SELECT pg_try_advisory_lock(5151), pg_advisory_unlock(5151)'), 't,t',
		"A's advisory lock released");
	is( main_val('app', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 5151}),
		'0', 'main port: no advisory lock left');
	is(sq($B, 'SELECT count(*) FROM pg_listening_channels()'), '0', 'no channel listened');
	like(sq($B, 'FETCH end_cur'), qr/^34000: cursor "end_cur" does not exist/, "A's cursor gone");
	like(sq($B, 'EXECUTE end_ps'), qr/^26000: /, "A's SQL statement gone");
	like(ext_exec($B, 'end_proto'), qr/^26000: /, "A's protocol statement gone");
	is(sq($B, 'SELECT count(*) FROM pg_prepared_statements'), '0', 'executor holds no statement');
	like(sq($B, 'SELECT * FROM end_tmp'), qr/^42P01: /, 'end_tmp does not exist for B');
	is( main_val('app', q{SELECT count(*) FROM pg_class WHERE relname = 'end_tmp'}),
		'0', 'main port: temp table dropped');
	$node->safe_psql('app', q{NOTIFY end_chan, 'after A'});
	$r = $B->query('SELECT 1');
	is(scalar @{ $r->{notifies} || [] }, 0, "B gets no notification for A's channel");
	is(pinned_of($pid), 0, 'executor unpinned');
	$B->terminate;
}

###########################################################################
# 9. Temp objects that are not relations
###########################################################################
{
	my $A = conn();
	my $B = conn();
	my $pid = pid_of($A);
	is(pid_of($B), $pid, '9: A and B share the executor');
	for my $case (
		[ 'temp function',
			q{CREATE FUNCTION pg_temp.a_secret() RETURNS text LANGUAGE sql AS 'SELECT ''A secret'''},
			'SELECT pg_temp.a_secret()', 'A secret' ],
		[ 'temp domain', q{CREATE DOMAIN pg_temp.a_dom AS text CHECK (VALUE <> 'x')},
			q{SELECT 'A domain'::pg_temp.a_dom}, 'A domain' ],
		[ 'temp enum type', q{CREATE TYPE pg_temp.a_enum AS ENUM ('A enum')},
			q{SELECT 'A enum'::pg_temp.a_enum}, 'A enum' ])
	{
		my ($what, $create, $use, $secret) = @$case;
		is(sq($A, $create), '', "A: $what");
		is(sq($A, $use), $secret, "A uses its $what");
		# B either waits (A pinned) or runs: it must never reach A's object
		my $got = waits($B, $use, 2);
		if (defined $got)
		{
			isnt($got, $secret, "B cannot use A's $what");
		}
		else
		{
			pass("B waits while A holds a $what (pinned)");
			$A->terminate;
			$got = res_str($B->read_result(10));
			isnt($got, $secret, "B cannot use A's $what after A ended");
			$A = conn();
			is(pid_of($A), $pid, 'new A on the same executor');
		}
	}
	$A->terminate;
	my $C = conn();
	is(pid_of($C), $pid, 'C on the same executor after A ended');
	unlike(sq($C, 'SELECT pg_temp.a_secret()'), qr/^A secret$/,
		"C (next session) cannot call A's temp function");
	unlike(sq($C, q{SELECT 'A domain'::pg_temp.a_dom}), qr/^A domain$/,
		"C (next session) cannot use A's temp domain");
	ok( wait_until(
			sub {
				main_val('app',
					q{SELECT count(*) FROM pg_proc WHERE proname = 'a_secret'}) eq '0';
			},
			5),
		"A's temp function dropped at its end");
	ok( wait_until(
			sub {
				main_val('app',
					q{SELECT count(*) FROM pg_type WHERE typname IN ('a_dom', 'a_enum')}) eq '0';
			},
			5),
		"A's temp domain and enum dropped at its end");
	$B->terminate;
	$C->terminate;
}

###########################################################################
# 10. Session end by kill -9 and by an error while pinned
###########################################################################
{
	my $B = conn();
	my $pid = pid_of($B);
	my $bg = $node->pool_bg_psql('app');
	is(bgq($bg, 'SELECT pg_backend_pid()'), $pid, '10: psql on the executor');
	bgq($bg, q{CREATE TEMP TABLE k_tmp AS SELECT 1 AS x; SELECT pg_advisory_lock(9191); SET work_mem = '21MB'});
	ok(wait_pinned($pid, 1), 'psql session pinned');
	ok(!defined waits($B, q{SELECT current_setting('work_mem') <> '21MB'}, 1),
		'B waits');
	$bg->{run}->signal('KILL');
	eval { $bg->{run}->finish; };
	is(res_str($B->read_result(15)), 't', 'B served after the pinned client was killed (kill -9)');
	ok( wait_until(
			sub {
				main_val('app',
					q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 9191}) eq '0';
			},
			15),
		'advisory lock of the killed client released (pg_locks)');
	is(main_val('app', q{SELECT count(*) FROM pg_class WHERE relname = 'k_tmp'}),
		'0', 'temp table of the killed client dropped');
	is(sq($B, 'SELECT pg_try_advisory_lock(9191), pg_advisory_unlock(9191)'), 't,t',
		'B can take the lock');
	is(pinned_of($pid), 0, 'executor unpinned');

	# an error ends the session: idle_in_transaction_session_timeout
	my $A = conn();
	is(pid_of($A), $pid, 'A on the executor');
	sq($A, q{CREATE TEMP TABLE e_tmp (x int); SELECT pg_advisory_lock(9292); LISTEN e_chan; SET idle_in_transaction_session_timeout = '1s'});
	ok(wait_pinned($pid, 1), 'A pinned');
	sq($A, 'BEGIN; INSERT INTO e_tmp VALUES (1)');
	my $r = $A->read_result(10);
	is(err_str($r), '25P03: terminating connection due to idle-in-transaction timeout',
		'A ended by idle_in_transaction_session_timeout');
	ok($A->wait_eof(5), 'A disconnected');
	ok( wait_until(
			sub {
				main_val('app',
					q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 9292}) eq '0';
			},
			15),
		'advisory lock of the timed out session released');
	is(main_val('app', q{SELECT count(*) FROM pg_class WHERE relname = 'e_tmp'}),
		'0', 'temp table of the timed out session dropped');
	is(sq($B, 'SELECT count(*) FROM pg_listening_channels()'), '0', 'its channel unlistened');
	is(sq($B, 'SHOW idle_in_transaction_session_timeout'), '0', "B does not get A's timeout");
	is(pid_of($B), $pid, 'B still on the executor');
	$B->terminate;
}

###########################################################################
# 11. Dedicated databases
###########################################################################
{
	my $D1 = conn(database => 'ded');
	my $D2 = conn(database => 'ded');
	my ($p1, $p2) = (pid_of($D1), pid_of($D2));
	isnt($p1, $p2, '11: each session of a dedicated database has its own executor');
	my @st = $node->pool_status(q{database = 'ded'});
	is(scalar(@st), 2, 'pool_status: two executors for ded');
	is(join(',', map { $_->{dedicated} } @st), 't,t', 'both dedicated');
	sq($D1, q{SET work_mem = '7MB'; CREATE TEMP TABLE d_tmp (x int); SELECT pg_advisory_lock(1)});
	is(sq($D2, 'SELECT 1', 5), '1', 'D2 is not held up by D1\'s temp table (own executor)');
	isnt(sq($D2, 'SHOW work_mem'), '7MB', "D2 does not see D1's setting");
	$D1->terminate;
	ok(wait_until(sub { !$node->pool_status("pid = $p1") }, 15),
		"D1's executor leaves once D1 ended");
	my $D3 = conn(database => 'ded');
	isnt(pid_of($D3), $p2, "a new session does not join D2's executor");
	is(sq($D3, 'SELECT pg_try_advisory_lock(1)'), 't', "D1's lock released");
	$D2->terminate;
	$D3->terminate;
}

check_no_crash($node, 'one executor');

###########################################################################
# Part 2: two executors
###########################################################################
$node->append_conf('postgresql.conf', 'builtin_pool.session_pool_size = 2');
$node->restart;
ok(pool_serves(), 'pool port serves after restart with session_pool_size = 2');

# two sessions on one executor: open four, keep a pair
sub pair
{
	my (%o) = @_;
	my @c = map { conn(%o) } 1 .. 4;
	my %by;
	push @{ $by{ pid_of($_) } }, $_ for @c;
	my ($p) = grep { @{ $by{$_} } >= 2 } sort keys %by;
	my ($x, $y, @rest) = @{ $by{$p} };
	return ($x, $y, $p, grep { $_ != $x && $_ != $y } @c);
}

sub other_pid
{
	my ($pid) = @_;
	my @s = $node->pool_status(q{database = 'app' AND role = 'app'} . " AND pid <> $pid");
	return @s ? $s[0]{pid} : undef;
}

###########################################################################
# 12. A pins: B moves with its state
###########################################################################
{
	my ($A, $B, $pid, @rest) = pair(options => '-c statement_timeout=77s');
	my $other = other_pid($pid);
	ok(defined $other, '12: the pool has a second executor');
	is(pid_of($B), $pid, 'B shares the executor of A');

	my $r = $B->query(q{SET work_mem = '3MB'; SET DateStyle = 'German'; SET client_encoding = 'LATIN1'; SET TimeZone = 'Asia/Tokyo'; SET application_name = 'movedB'});
	is( join(',', sort map { "$_->[0]=$_->[1]" } @{ $r->{param_status} }),
		'DateStyle=German, DMY,TimeZone=Asia/Tokyo,application_name=movedB,client_encoding=LATIN1',
		'B: ParameterStatus for its SETs');
	is(sq($B, q{PREPARE b_ps(int) AS SELECT 'b_ps ' || $1;}), '', 'B: PREPARE b_ps');
	is(res_str(ext($B, Parse('b_proto', q{SELECT 'b_proto ' || $1::text}) . Sync())), '',
		'B: Parse b_proto');
	is(ext_exec($B, 'b_proto', 'before'), 'b_proto before', 'B: b_proto runs');
	my $b_seq = sq($B, q{SELECT nextval('seq1')});
	my $stmts_q = q{SELECT name, statement, parameter_types, from_sql FROM pool_prepared_statements ORDER BY name};
	my $stmts_before = sq($B, $stmts_q);

	is(sq($A, 'CREATE TEMP TABLE mv_tmp (x int)'), '', 'A: temp table');
	ok(wait_pinned($pid, 1), 'pool_status: pinned = 1 for A\'s executor');
	ok( wait_until(sub { my @s = $node->pool_status("pid = $pid"); @s && $s[0]{sessions} == 1 }, 10),
		"A's executor keeps A alone (sessions = 1)");

	$r = $B->query(q{SELECT pg_backend_pid(), current_setting('work_mem'), current_setting('DateStyle'), current_setting('TimeZone'), current_setting('application_name'), current_setting('statement_timeout'), chr(233)});
	ok($r->{complete} && !@{ $r->{errors} }, 'B served after A pinned');
	my @v = @{ $r->{rows}[0] || [] };
	isnt($v[0], $pid, "B's pg_backend_pid() changed (moved)");
	is($v[0], $other, 'B now on the other executor');
	is(join('|', @v[ 1 .. 5 ]), '3MB|German, DMY|Asia/Tokyo|movedB|77s',
		'B keeps its SET and startup values after the move');
	is($v[6], "\xe9", 'B still receives LATIN1');
	is(pstat($r), '', 'no ParameterStatus sent by the move');
	is(sq($B, q{EXECUTE b_ps(5)}), 'b_ps 5', 'B: SQL prepared statement moved');
	is(sq($B, q{SELECT currval('seq1'), lastval()}), "$b_seq,$b_seq",
		'B: currval and lastval moved with it');
	is(ext_exec($B, 'b_proto', 'after'), 'b_proto after', 'B: protocol statement moved');
	is(sq($B, 'SELECT name FROM pool_prepared_statements ORDER BY name'), 'b_proto;b_ps',
		'B: pool_prepared_statements lists its two statements');
	is(sq($B, $stmts_q), $stmts_before,
		'B: pool_prepared_statements shows the same statements as before the move');
	$r = $B->query(q{SET DateStyle = 'German'});
	is(pstat($r), '', 'B: SET to its current DateStyle reports nothing (bookkeeping moved)');
	$r = $B->query('RESET statement_timeout; SHOW statement_timeout');
	is(res_str($r), '77s', 'B: RESET returns to its startup option on the new executor');
	$r = $B->query('RESET ALL');
	is( join(',', sort map { "$_->[0]=$_->[1]" } @{ $r->{param_status} }),
		'DateStyle=ISO, MDY,TimeZone=' . sq($A, 'SHOW TimeZone') . ',application_name=,client_encoding=UTF8',
		'B: RESET ALL reports what it changes back');

	# the cancel key B got at login still works
	$B->send_query('SELECT pg_sleep(30)');
	usleep(500_000);
	my $t0 = time();
	PoolTest::Raw->cancel(port => $pp, pid => $B->{pid}, key => $B->{key});
	$r = $B->read_result(15);
	is(err_str($r), '57014: canceling statement due to user request',
		"B's original cancel key cancels it on its new executor");
	cmp_ok(time() - $t0, '<', 10, 'cancel within seconds');

	# new clients go elsewhere
	my $N = conn();
	is(pid_of($N), $other, 'a new client goes to the unpinned executor');
	is(sq($A, 'SELECT count(*) FROM mv_tmp'), '0', 'A keeps its temp table');
	is(sq($A, 'DROP TABLE mv_tmp'), '', 'A: DROP TABLE');
	ok(wait_pinned($pid, 0), 'pool_status: pinned = 0 after DROP TABLE');
	$_->terminate for ($A, $B, $N, @rest);
}

###########################################################################
# 13. Each pinning state moves the others; LISTEN receives while idle
###########################################################################
{
	for my $case (
		[ 'advisory lock', 'SELECT pg_advisory_lock(31)', 'SELECT pg_advisory_unlock(31)' ],
		[ 'LISTEN', 'LISTEN mv_chan', 'UNLISTEN *' ],
		[ 'WITH HOLD cursor', 'DECLARE mv_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 3) g', 'CLOSE mv_cur' ])
	{
		my ($what, $pin, $unpin) = @$case;
		my ($A, $B, $pid, @rest) = pair();
		sq($B, q{SET work_mem = '2MB'; PREPARE mp AS SELECT 'mp'});
		unlike(sq($A, $pin), qr/^[0-9A-Z]{5}: /, "13 $what: A pins");
		ok(wait_pinned($pid, 1), "$what: pinned = 1");
		is(sq($B, q{SELECT pg_backend_pid() <> } . $pid . q{, current_setting('work_mem')}),
			't,2MB', "$what: B moved, keeps its work_mem");
		is(sq($B, 'EXECUTE mp'), 'mp', "$what: B keeps its statement");

		if ($what eq 'LISTEN')
		{
			# idle A receives notifications without sending anything
			$node->safe_psql('app', q{NOTIFY mv_chan, 'from main'});
			my $t0 = time();
			my ($type, $body) = $A->read_msg(5);
			is($type // 'nothing', 'A', 'LISTEN: idle A receives the NOTIFY from the main port');
			like($body // '', qr/mv_chan\0from main\0$/, 'LISTEN: channel and payload');
			cmp_ok(time() - $t0, '<', 5, 'LISTEN: within seconds');
			is(sq($B, q{NOTIFY mv_chan, 'from B'}), '', 'B: NOTIFY');
			($type, $body) = $A->read_msg(5);
			is($type // 'nothing', 'A', 'LISTEN: idle A receives the NOTIFY of another pool session');
			like($body // '', qr/mv_chan\0from B\0$/, 'LISTEN: payload from B');
		}
		if ($what eq 'WITH HOLD cursor')
		{
			is(sq($A, 'FETCH mv_cur'), '1', 'cursor: FETCH 1');
			is(sq($B, 'SELECT 1'), '1', 'B runs in between');
			is(sq($A, 'BEGIN; FETCH mv_cur; COMMIT'), '2', 'cursor: FETCH 2 in another transaction');
		}
		unlike(sq($A, $unpin), qr/^[0-9A-Z]{5}: /, "$what: A unpins");
		ok(wait_pinned($pid, 0), "$what: pinned = 0");
		$_->terminate for ($A, $B, @rest);
	}
}

###########################################################################
# 13b. A temp function of a session that is moved
###########################################################################
{
	my ($A, $B, $pid, @rest) = pair();
	is( sq($B, q{CREATE FUNCTION pg_temp.b_fn() RETURNS text LANGUAGE sql AS 'SELECT ''B temp fn'''}),
		'', '13b: B creates a temp function');
	is(sq($B, 'SELECT pg_temp.b_fn()'), 'B temp fn', 'B calls it');
	sq($A, 'CREATE TEMP TABLE a_pin (x int)');
	ok(wait_pinned($pid, 1), 'A pinned');
	my $bpid = pid_of($B);
	if ($bpid ne $pid)
	{
		note('B was moved to the other executor');
		is(sq($B, 'SELECT pg_temp.b_fn()'), 'B temp fn',
			'B still has its temp function after the move');
	}
	else
	{
		pass('B was not moved (kept on its executor, pinned with its temp function)');
	}
	isnt(sq($A, 'SELECT pg_temp.b_fn()'), 'B temp fn', "A cannot call B's temp function");
	sq($A, 'DROP TABLE a_pin');
	$_->terminate for ($A, $B, @rest);
}

###########################################################################
# 14. Both executors pinned: the waiting session runs once one unpins
###########################################################################
{
	my ($A, $C, $pid, @rest) = pair();
	my $other = other_pid($pid);
	my ($B) = grep { pid_of($_) ne $pid } @rest;
	$B //= conn();
	is(pid_of($B), $other, '14: B on the other executor');
	sq($B, 'SELECT pg_advisory_lock(41)');
	ok(wait_pinned($other, 1), 'B pins the other executor');
	sq($A, 'SELECT pg_advisory_lock(42)');
	ok(wait_pinned($pid, 1), 'A pins its executor');
	ok(!defined waits($C, 'SELECT 14', 1.5), 'C waits while both executors are pinned');
	is(sq($B, 'SELECT pg_advisory_unlock(41)'), 't', 'B unpins');
	ok(wait_pinned($other, 0), 'B\'s executor unpinned');
	my $r = $C->read_result(10);
	is(res_str($r), '14', 'C served while A is still pinned (an executor is free)');
	if (!$r->{complete})
	{
		diag('pool_status: ' . join('; ', map { "pid $_->{pid} sessions $_->{sessions} waiting $_->{waiting} pinned $_->{pinned}" } $node->pool_status(q{database = 'app'})));
		sq($A, 'SELECT pg_advisory_unlock_all()');
		$r = $C->read_result(10);
		is(res_str($r), '14', 'C served once A unpinned too');
	}
	sq($A, 'SELECT pg_advisory_unlock_all()');
	$_->terminate for ($A, $C, @rest);
	$B->terminate unless grep { $_ == $B } @rest;
}

###########################################################################
# 15. kill -9 of a pinned client (two executors)
###########################################################################
{
	my $bg = $node->pool_bg_psql('app');
	my $pid = bgq($bg, 'SELECT pg_backend_pid()');
	bgq($bg, q{CREATE TEMP TABLE k2_tmp (x int); SELECT pg_advisory_lock(9393); LISTEN k2_chan});
	ok(wait_pinned($pid, 1), '15: psql session pinned');
	$bg->{run}->signal('KILL');
	eval { $bg->{run}->finish; };
	ok( wait_until(
			sub {
				main_val('app',
					q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 9393}) eq '0';
			},
			15),
		'lock of the killed client released');
	ok(wait_pinned($pid, 0), 'executor unpinned');
	is(main_val('app', q{SELECT count(*) FROM pg_class WHERE relname = 'k2_tmp'}),
		'0', 'temp table dropped');
	my $N = conn();
	is(sq($N, 'SELECT pg_try_advisory_lock(9393)'), 't', 'a new session takes the lock');
	$N->terminate;
}

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
