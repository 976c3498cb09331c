
# Copyright (c) builtin_pool authors
#
# The listener's cache of login facts (auth.c): a login whose pg_hba.conf
# line checks no password takes its role and database facts from what an
# earlier login of the same pair found.  Every change committed before a
# login must count for it, as for a new backend: NOLOGIN, a rename, a drop,
# REVOKE CONNECT (from PUBLIC and through a membership), ALLOW_CONNECTIONS,
# both CONNECTION LIMITs, SUPERUSER.  Each case warms the cache (and shows
# it was used: pool_listener_stats().auth_cached grows), commits the change
# on the main port, and at once logs in through the pool: refused with the
# SQLSTATE and message the main port gives.  A reject line refuses before
# any fact is read.  CONNECT granted to
# pg_database_owner lets the owner in, as on the main port.  Then a
# pg_hba.conf naming a group: nothing is taken from the cache, and
# membership is read each time.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;

my $node = pool_node('authcache', size => 2, max_worker_processes => 30);
my $pp = $node->pool_port;
my $mp = $node->port;

sub write_hba
{
	my ($lines) = @_;
	open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $fh "local all all trust\n$lines";
	close $fh;
	return;
}
write_hba("host all rj 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 trust\n");

$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE cu LOGIN;
	CREATE ROLE grp NOLOGIN;
	CREATE ROLE gone LOGIN;
	CREATE ROLE padmin LOGIN SUPERUSER;
	CREATE ROLE rj LOGIN;
	CREATE DATABASE cdb;
});
pool_serves_ok($node);

sub login
{
	my ($user, $db, $port) = @_;
	my $c = PoolTest::Raw->new(port => $port // $pp, timeout => 10);
	$c->login(user => $user, database => $db);
	my $r = $c->{startup};
	my $res = $r->{ok} ? 'ok'
	  : (PoolTest::Raw::sqlstate($r) // '?') . ' ' . ($r->{errors}[0]{M} // '?');
	$c->terminate if $r->{ok};
	$c->close;
	return $res;
}

sub cached
{
	return $node->safe_psql('postgres',
		'SELECT auth_cached FROM pool_listener_stats()');
}

# warm(USER, DB, NAME): two pool logins; the second one is checked from the cache
sub warm
{
	my ($user, $db, $name) = @_;
	is(login($user, $db), 'ok', "$name: first login");
	my $before = cached();
	is(login($user, $db), 'ok', "$name: second login");
	cmp_ok(cached(), '>', $before, "$name: the second login was checked from the cache");
	return;
}

# refused_like_main(USER, DB, EXPECTED, NAME): the pool refuses as the main port
sub refused_like_main
{
	my ($user, $db, $expected, $name) = @_;
	is(login($user, $db), $expected, "$name: pool port refuses at once");
	is(login($user, $db, $mp), $expected, "$name: as the main port does");
	return;
}

sub main_sql { $node->safe_psql('postgres', $_[0]); return; }

# a line that refuses decides before any catalog is read, whoever is named
# (the cache must not tell existing roles apart by the time a refusal takes)
{
	my $rejected = 'pg_hba.conf rejects connection for host "127.0.0.1", user "%s", database "cdb", no encryption';
	my $before = cached();
	refused_like_main('rj', 'cdb', '28000 ' . sprintf($rejected, 'rj'), 'reject line');
	is(login('rj', 'cdb'), '28000 ' . sprintf($rejected, 'rj'), 'reject line, again');
	is(cached(), $before, 'reject line: no facts consulted');
}

# each case: [name, user, the change, the refusal, what undoes it (or undef)]
my @cases = (
	[ 'NOLOGIN', 'cu', 'ALTER ROLE cu NOLOGIN',
		'28000 role "cu" is not permitted to log in', 'ALTER ROLE cu LOGIN' ],
	[ 'role CONNECTION LIMIT 0', 'cu', 'ALTER ROLE cu CONNECTION LIMIT 0',
		'53300 too many connections for role "cu"', 'ALTER ROLE cu CONNECTION LIMIT -1' ],
	[ 'role renamed', 'cu', 'ALTER ROLE cu RENAME TO cu_renamed',
		'28000 role "cu" does not exist', 'ALTER ROLE cu_renamed RENAME TO cu' ],
	[ 'role dropped', 'gone', 'DROP ROLE gone',
		'28000 role "gone" does not exist', undef ],
	# the CONNECT privilege: from PUBLIC, through a membership, superuser
	[ 'REVOKE CONNECT FROM PUBLIC', 'cu', 'REVOKE CONNECT ON DATABASE cdb FROM PUBLIC',
		'42501 permission denied for database "cdb"',
		'GRANT CONNECT ON DATABASE cdb TO grp; GRANT grp TO cu' ],
	[ 'membership revoked', 'cu', 'REVOKE grp FROM cu',
		'42501 permission denied for database "cdb"', 'ALTER ROLE cu SUPERUSER' ],
	[ 'NOSUPERUSER', 'cu', 'ALTER ROLE cu NOSUPERUSER',
		'42501 permission denied for database "cdb"',
		'GRANT CONNECT ON DATABASE cdb TO PUBLIC' ],
	# database attributes
	[ 'ALLOW_CONNECTIONS false', 'cu', 'ALTER DATABASE cdb ALLOW_CONNECTIONS false',
		'55000 database "cdb" is not currently accepting connections',
		'ALTER DATABASE cdb ALLOW_CONNECTIONS true' ],
	[ 'database CONNECTION LIMIT 0', 'cu', 'ALTER DATABASE cdb CONNECTION LIMIT 0',
		'53300 too many connections for database "cdb"',
		'ALTER DATABASE cdb CONNECTION LIMIT -1' ],
	# a change made through the pool port counts as well
	[ 'NOLOGIN through the pool port', 'cu', 'pool: ALTER ROLE cu NOLOGIN',
		'28000 role "cu" is not permitted to log in', 'ALTER ROLE cu LOGIN' ]);

for my $case (@cases)
{
	my ($name, $user, $change, $refusal, $undo) = @$case;
	warm($user, 'cdb', $name);
	if ($change =~ /^pool: (.*)/)
	{
		$node->pool_safe_psql('postgres', $1, user => 'padmin');
	}
	else
	{
		main_sql($change);
	}
	refused_like_main($user, 'cdb', $refusal, $name);
	next unless defined $undo;
	main_sql($undo);
	is(login($user, 'cdb'), 'ok', "$name: admitted after \"$undo\"");
}
is(login('cu_renamed', 'cdb'), '28000 role "cu_renamed" does not exist',
	'the name a role had for a while is gone with it');

###########################################################################
# CONNECT granted to pg_database_owner only: a backend checks it connected
# to the database, where its owner is a member of pg_database_owner; the
# listener is connected to none
###########################################################################
main_sql('CREATE DATABASE odb OWNER cu');
main_sql('REVOKE CONNECT ON DATABASE odb FROM PUBLIC, cu');
main_sql('GRANT CONNECT ON DATABASE odb TO pg_database_owner');
is(login('cu', 'odb', $mp), 'ok', 'pg_database_owner: the owner connects to the main port');
is(login('cu', 'odb'), 'ok', 'pg_database_owner: and to the pool port');
refused_like_main('app', 'odb', '42501 permission denied for database "odb"',
	'pg_database_owner: another role');

###########################################################################
# a pg_hba.conf naming a group: membership is read at every login
###########################################################################
write_hba("host all +grp 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n");
$node->reload;
main_sql('GRANT grp TO cu');
ok(wait_until(sub { login('cu', 'cdb') eq 'ok' }, 20), '+grp line: a member logs in');
my $before = cached();
is(login('cu', 'cdb'), 'ok', '+grp line: again');
is(cached(), $before, '+grp line: nothing taken from the cache');
main_sql('REVOKE grp FROM cu');
refused_like_main('cu', 'cdb',
	'28000 pg_hba.conf rejects connection for host "127.0.0.1", user "cu", database "cdb", no encryption',
	'+grp line, membership revoked');

check_no_crash($node);
$node->stop;
done_testing();
