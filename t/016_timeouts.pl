# Copyright (c) builtin_pool authors
#
# Per-session timeouts through the pool: statement_timeout,
# idle_in_transaction_session_timeout and idle_session_timeout end or
# cancel only the session that set them, with core's SQLSTATE; the other
# sessions of the executor carry on.  builtin_pool.queue_wait_timeout ends a
# session whose request waited too long for its executor.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PoolTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = pool_node('timeouts', size => 1);
$node->start;
setup_app($node);

sub raw_session
{
	my $c = PoolTest::Raw->new(port => $node->pool_port, timeout => 10);
	ok($c->login(user => 'app', database => 'app'), 'login through the pool');
	return $c;
}

# error (or FATAL) fields of the next message the server sends unprompted
sub next_error
{
	my ($c, $timeout) = @_;
	my ($type, $body) = $c->read_msg($timeout);
	return undef unless defined $type && $type eq 'E';
	return PoolTest::Raw::parse_fields($body);
}

my $a = raw_session();
my $b = raw_session();
is($a->query_value('SELECT pg_backend_pid()'),
	$b->query_value('SELECT pg_backend_pid()'), 'A and B share the executor');

# statement_timeout cancels A's statement only
$a->query(q{SET statement_timeout = '200ms'});
my $r = $a->query('SELECT pg_sleep(5)', 10);
is(PoolTest::Raw::sqlstate($r), '57014', 'statement_timeout cancels A (57014)');
like($r->{errors}[0]{M}, qr/statement timeout/, "with core's message");
is($b->query_value('SHOW statement_timeout'), '0', "B keeps its own statement_timeout");
is($b->query_value('SELECT 1 FROM pg_sleep(0.3)'), '1', 'B is not cancelled');
$a->query('RESET statement_timeout');

# idle_in_transaction_session_timeout ends A alone
$a->query(q{SET idle_in_transaction_session_timeout = '500ms'});
$r = $a->query('BEGIN');
is($r->{status}, 'T', 'A is in a transaction');
my $t0 = time();
my $e = next_error($a, 10);
ok($e, 'A is told why it ends');
is($e->{C}, '25P03', 'idle-in-transaction timeout (25P03)');
is($e->{S}, 'FATAL', 'as a FATAL');
ok(time() - $t0 < 5, 'within a few seconds');
ok($a->wait_eof(5), "A's connection is closed");
is($b->query_value('SELECT 2'), '2', 'B carries on on the same executor');

# idle_session_timeout: a session idle in the scheduler
my $c = raw_session();
$c->query(q{SET idle_session_timeout = '500ms'});
$e = next_error($c, 10);
ok($e, 'C is told why it ends');
is($e->{C}, '57P05', 'idle-session timeout (57P05)');
ok($c->wait_eof(5), "C's connection is closed");
is($b->query_value('SELECT 3'), '3', 'B still carries on');

# builtin_pool.queue_wait_timeout: B's request waits behind D's transaction
# (no held executor's replacement may serve it: max_held_executors 0)
$node->safe_psql('postgres',
	'ALTER SYSTEM SET builtin_pool.queue_wait_timeout = 500; '
	  . 'ALTER SYSTEM SET builtin_pool.max_held_executors = 0; SELECT pg_reload_conf()');
my $d = raw_session();
ok(wait_until(sub {
	$d->query_value(q{SELECT current_setting('builtin_pool.queue_wait_timeout') || ' '
		|| current_setting('builtin_pool.max_held_executors')}) eq '500ms 0' }, 10),
	'the executor has reloaded');
$r = $d->query('BEGIN');
is($r->{status}, 'T', 'D holds the executor in a transaction');
$t0 = time();
$b->send_query('SELECT 4');
$r = $b->read_result(10);
is(PoolTest::Raw::sqlstate($r), '53300', 'B ends with 53300 after waiting');
like($r->{errors}[0]{M}, qr/queue_wait_timeout/, 'the message names the setting');
ok(time() - $t0 < 5, 'after about the timeout');
is($d->query_value('SELECT 5'), '5', 'D is unaffected');
$d->query('COMMIT');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET builtin_pool.queue_wait_timeout; '
	  . 'ALTER SYSTEM RESET builtin_pool.max_held_executors; SELECT pg_reload_conf()');

my $f = raw_session();
is($f->query_value('SELECT 6'), '6', 'the pool serves new sessions');

check_no_crash($node);
$node->stop;
done_testing();
