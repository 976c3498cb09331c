# Copyright (c) builtin_pool authors
#
# A pool is bound to the OIDs of its role and database, never to their
# names.  A role renamed (and made superuser) while its pool lives, or
# dropped and re-created, must never serve a new login of the name: the new
# login gets a pool of the new role.  The old pool is retired: its idle
# sessions end (57P01), a session in a transaction finishes it first.  The
# same for ALTER ROLE ... NOLOGIN.  A database renamed and re-created under
# the old name: logins reach the database the name now names.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PoolTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = pool_node('identity', size => 2, max_worker_processes => 30,
	conf => "builtin_pool.idle_executor_timeout = 1\n");
$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE victim LOGIN SUPERUSER;
	CREATE ROLE dropme LOGIN SUPERUSER;
	CREATE ROLE nl LOGIN;
	GRANT pg_read_all_stats TO victim;
});
pool_serves_ok($node);

sub raw_login
{
	my ($user, $db) = @_;
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	$c->login(user => $user, database => $db // 'app');
	return $c;
}

# whoami(C): "session_user|is_superuser" as the session sees it
sub whoami
{
	my ($c) = @_;
	my $r = $c->query(q{SELECT session_user || '|' || current_setting('is_superuser')});
	return $r->{complete} && !@{ $r->{errors} } ? $r->{rows}[0][0] : undef;
}

# retired_ok(ROLE, OFFSET): the listener retires ROLE's pool (it checks the
# catalogs every second) after log OFFSET
sub retired_ok
{
	my ($role, $off) = @_;
	ok( wait_until(
			sub {
				substr(slurp_file($node->logfile), $off) =~
				  /retires the pool for database "app", user "$role"/;
			},
			10),
		"the pool of $role is retired");
}

# replaced_ok(ROLE, DDL): runs DDL, which makes ROLE name a new,
# unprivileged role; a new login of ROLE runs as that role, and the old
# pool is retired
sub replaced_ok
{
	my ($role, $ddl) = @_;
	my $off = -s $node->logfile;
	$node->safe_psql('postgres', $ddl);
	my $new = raw_login($role);
	ok($new->{startup}{ok}, "the new role $role logs in through the pool");
	is(whoami($new), "$role|off", 'as itself, not as the old superuser');
	$new->close;
	retired_ok($role, $off);
}

# ended_ok(C, NAME): the server ends C's session with 57P01 when it next
# speaks (or has already told it)
sub ended_ok
{
	my ($c, $name) = @_;
	my $r = $c->query('SELECT 1', 15);
	ok(!$r->{complete}, "$name: the session is ended");
	is(PoolTest::Raw::sqlstate($r), '57P01', "$name: with 57P01");
	like($r->{errors}[0]{M} // '', qr/pool was retired/, "$name: saying why");
	$c->close;
}

###########################################################################
# rename: ALTER ROLE victim RENAME TO victim_old; CREATE ROLE victim
###########################################################################
{
	my $idle = raw_login('victim');
	ok($idle->{startup}{ok}, 'victim logs in through the pool');
	is(whoami($idle), 'victim|on', 'as the superuser victim');
	my $inx = raw_login('victim');
	ok($inx->{startup}{ok}, 'a second victim session');
	is($inx->query('BEGIN')->{status}, 'T', 'which opens a transaction');
	is($inx->query_value('SELECT 41 + 1'), '42', 'and works in it');

	replaced_ok('victim', q{
		ALTER ROLE victim RENAME TO victim_old;
		CREATE ROLE victim LOGIN;
	});

	# the session in a transaction finishes it, then ends
	my $r = $inx->query('SELECT 7', 15);
	is($r->{rows}[0][0], '7', 'the session in a transaction goes on');
	is($inx->query('COMMIT')->{status}, 'I', 'and commits');
	ended_ok($inx, 'renamed role, session that was in a transaction');
	ended_ok($idle, 'renamed role, idle session');

	my $old = raw_login('victim_old');
	ok($old->{startup}{ok}, 'victim_old logs in through the pool');
	is(whoami($old), 'victim_old|on', 'as victim_old');
	$old->close;
}

###########################################################################
# drop and re-create
###########################################################################
{
	my $idle = raw_login('dropme');
	is(whoami($idle), 'dropme|on', 'dropme (superuser) logs in through the pool');
	replaced_ok('dropme', q{
		DROP ROLE dropme;
		CREATE ROLE dropme LOGIN;
	});
	ended_ok($idle, 'dropped role, idle session');
}

###########################################################################
# NOLOGIN: new logins refused as core, idle sessions ended
###########################################################################
{
	my $idle = raw_login('nl');
	is(whoami($idle), 'nl|off', 'nl logs in through the pool');
	my $off = -s $node->logfile;
	$node->safe_psql('postgres', 'ALTER ROLE nl NOLOGIN');
	my $c = raw_login('nl');
	ok(!$c->{startup}{ok}, 'a NOLOGIN role is refused');
	is(PoolTest::Raw::sqlstate($c->{startup}), '28000', 'with 28000');
	is($c->{startup}{errors}[0]{M}, 'role "nl" is not permitted to log in', "core's message");
	$c->close;
	retired_ok('nl', $off);
	ended_ok($idle, 'NOLOGIN, idle session');
	$node->safe_psql('postgres', 'ALTER ROLE nl LOGIN');
	$c = raw_login('nl');
	is(whoami($c), 'nl|off', 'nl logs in again once LOGIN');
	$c->close;
}

###########################################################################
# ALTER DATABASE ... RENAME, and a new database of the old name
###########################################################################
{
	$node->safe_psql('postgres', q{
		CREATE DATABASE d1;
	});
	$node->safe_psql('d1', 'CREATE TABLE marker AS SELECT 1 AS first; GRANT SELECT ON marker TO PUBLIC');
	my $c = raw_login('app', 'd1');
	is($c->query_value('SELECT first FROM marker'), '1', 'd1 through the pool');
	$c->close;

	# executors hold a connection: the rename waits for them to leave
	ok( wait_until(
			sub {
				my ($ret) = $node->psql('postgres', 'ALTER DATABASE d1 RENAME TO d1_old');
				return $ret == 0;
			},
			30, 0.5),
		'd1 renamed to d1_old once its idle executors left');
	$node->safe_psql('postgres', 'CREATE DATABASE d1');
	$node->safe_psql('d1', 'CREATE TABLE marker AS SELECT 2 AS second; GRANT SELECT ON marker TO PUBLIC');
	$c = raw_login('app', 'd1');
	ok($c->{startup}{ok}, 'login to the new d1');
	is($c->query_value('SELECT second FROM marker'), '2', 'reaches the new d1');
	$c->close;
	$c = raw_login('app', 'd1_old');
	is($c->query_value('SELECT first FROM marker'), '1', 'd1_old reaches the old one');
	$c->close;
}

is($node->pool_safe_psql('app', 'SELECT current_user'), 'app', 'the pool serves app');
check_no_crash($node);
$node->stop;
done_testing();
