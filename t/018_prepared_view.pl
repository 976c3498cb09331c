# Copyright (c) builtin_pool authors
#
# pg_prepared_statements through the pool: a session sees its own
# statements under the names it gave them, as on its own backend, not the
# executor's whole table.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PoolTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = pool_node('pview', size => 1);
$node->start;
setup_app($node);
pool_serves_ok($node);

sub session
{
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	ok($c->login(user => 'app', database => 'app'), 'login');
	return $c;
}

sub rows
{
	my ($c, $sql) = @_;
	my $r = $c->query($sql);
	is(scalar @{ $r->{errors} }, 0, "no error: $sql");
	return join(';', map { join('|', map { $_ // '' } @$_) } @{ $r->{rows} });
}

my $a = session();
my $b = session();
is($a->query_value('SELECT pg_backend_pid()'),
	$b->query_value('SELECT pg_backend_pid()'), 'A and B share the executor');

$a->query(q{PREPARE same AS SELECT 'a'});
$b->query(q{PREPARE same AS SELECT 'b'});
$b->query(q{PREPARE only_b(int) AS SELECT $1});

is(rows($a, 'SELECT name, statement, from_sql FROM pg_prepared_statements ORDER BY name'),
	q{same|PREPARE same AS SELECT 'a'|t}, 'A sees its own statement, under its name');
is(rows($b, 'SELECT name, parameter_types::text FROM pg_prepared_statements ORDER BY name'),
	'only_b|{integer};same|{}', 'B sees its own two');
is(rows($a, q{SELECT count(*) FROM pg_catalog.pg_prepared_statements p JOIN pg_class c ON c.relname = 'pg_class'}),
	'1', 'also qualified and joined');

my $long = 'n' x 70;
$a->query(qq{PREPARE $long AS SELECT 1});
is(rows($a, q{SELECT name FROM pg_prepared_statements WHERE name LIKE 'n%'}),
	'n' x 63, 'a long name shows as core shows it (63 bytes)');

$b->query('DEALLOCATE ALL');
is(rows($a, 'SELECT count(*) FROM pg_prepared_statements'), '2',
	"B's DEALLOCATE ALL leaves A's statements");
is(rows($b, 'SELECT count(*) FROM pg_prepared_statements'), '0', 'B has none left');

# the main port is untouched
is($node->safe_psql('app', q{PREPARE m AS SELECT 1; SELECT name FROM pg_prepared_statements}),
	'm', 'main port: pg_prepared_statements as in core');

$a->terminate;
$b->terminate;
check_no_crash($node);
$node->stop;
done_testing();
