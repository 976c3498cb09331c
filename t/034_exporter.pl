
# Copyright (c) builtin_pool authors
#
# contrib/prometheus/queries.yaml with Debian's prometheus-postgres-exporter
# (in BP_PACKAGES): the exporter runs against a pooled server (loopback, a
# free port, DATA_SOURCE_NAME naming the main port and the database with
# the extension, as a role in pg_read_all_stats) and its /metrics output
# carries the pool's metrics with their labels and values: the sessions of
# a pool, its counters (pins, executors started), the listener's counters
# and the refused logins by cause; no query of the file fails.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $exporter = '/usr/bin/prometheus-postgres-exporter';
BAIL_OUT("$exporter is missing: install prometheus-postgres-exporter (scripts/common.sh BP_PACKAGES)")
  unless -x $exporter;
my $queries = "$FindBin::RealBin/../contrib/prometheus/queries.yaml";
ok(-f $queries, 'the query file is in the repository');

my $node = pool_node('exporter', size => 2);
$node->start;
setup_app($node);
$node->safe_psql('postgres', q{CREATE ROLE monitor LOGIN IN ROLE pg_read_all_stats});

# some pool traffic: two sessions, one pinned; a refused login
my $a = PoolTest::Raw->new(port => $node->pool_port);
ok($a->login(user => 'app', database => 'app'), 'session A logs in through the pool');
my $b = PoolTest::Raw->new(port => $node->pool_port);
ok($b->login(user => 'app', database => 'app'), 'session B logs in through the pool');
is($b->query_value('CREATE TEMP TABLE t (x int); SELECT 1'), '1', 'B pins its executor');
my $g = PoolTest::Raw->new(port => $node->pool_port);
ok(!$g->login(user => 'no_such_role', database => 'app'), 'a login for an unknown role is refused');
$g->close;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($out, $err) = ('', '');
my $h;
{
	local $ENV{DATA_SOURCE_NAME} =
	  'postgresql://monitor@127.0.0.1:' . $node->port . '/postgres?sslmode=disable';
	$h = IPC::Run::start(
		[
			$exporter, "--web.listen-address=127.0.0.1:$port",
			"--extend.query-path=$queries", '--log.level=warn'
		],
		'<', '/dev/null', '>', \$out, '2>', \$err);
}

my $http = HTTP::Tiny->new(timeout => 5);
my $metrics = '';
my $deadline = time() + 60;
while (time() < $deadline)
{
	$h->pump_nb;
	my $r = $http->get("http://127.0.0.1:$port/metrics");
	if ($r->{success} && $r->{content} =~ /^builtin_pool_pools_sessions\{/m)
	{
		$metrics = $r->{content};
		last;
	}
	sleep(0.5);
}
ok($metrics ne '', 'the exporter serves /metrics with the pool\'s metrics')
  or diag("exporter stderr:\n$err");

my $pp = $node->pool_port;
my $labels = qr/\{(?=[^}]*database="app")(?=[^}]*port="$pp")(?=[^}]*role="app")[^}]*\}/;
like($metrics, qr/^pg_up 1$/m, 'the exporter reached the server');
like($metrics, qr/^builtin_pool_pools_sessions$labels 2$/m, 'the app pool has 2 sessions');
like($metrics, qr/^builtin_pool_pools_pinned$labels 1$/m, 'and 1 pinned');
like($metrics, qr/^builtin_pool_pools_pins$labels [1-9]/m, 'pins are counted');
like($metrics, qr/^builtin_pool_pools_executors_started$labels [1-9]/m,
	'executors started are counted');
like($metrics, qr/^builtin_pool_pools_paused$labels 0$/m, 'the pool is not paused');
like($metrics, qr/^# TYPE builtin_pool_pools_moves counter$/m, 'counters are typed as counters');
like($metrics, qr/^builtin_pool_pools_wait_seconds$labels \S+$/m, 'the wait time is exported');
like($metrics, qr/^builtin_pool_listener_accepted(\{[^}]*\})? [1-9]/m,
	'the listener\'s accepted connections');
like($metrics, qr/^builtin_pool_refused_logins\{(?=[^}]*cause="auth")[^}]*\} [1-9]/m,
	'the refused login, by cause');
unlike($err, qr/builtin_pool|Error running query/i, 'no query of the file failed')
  or diag($err);

$h->kill_kill;
$a->terminate;
$b->terminate;
check_no_crash($node);
$node->stop;
done_testing();
