
# Copyright (c) builtin_pool authors
#
# A pg_regress schedule of session-state tests (test/session_regress:
# settings, prepared statements, temp tables, cursors incl. WITH HOLD,
# advisory locks, sequences, COPY, transactions and savepoints, errors,
# LISTEN, and a last test checking that nothing of the others is left)
# run with pg_regress --use-existing:
#
#   1. against the main port (plain backends), compared with the checked-in
#      test/session_regress/expected/*.out: catches a change of behaviour of
#      the tests themselves or of the server;
#   2. through the pool port with builtin_pool.session_pool_size = 1, one
#      test after the other (every test on the same executor, each new
#      session after the previous one ended);
#   3. through the pool port with session_pool_size = 2 and the parallel
#      groups of the schedule (sessions share executors, pin, move);
#
# each pool run compared with the main port's results of step 1, file by
# file (pg_regress's regression.diffs is shown on failure).  Each run uses
# a fresh database set up as pg_regress would (C locale and messages).
#
# To regenerate the expected files after an intended change: run this test,
# then copy tmp_check/session_regress/main/results/*.out to
# test/session_regress/expected/ and review the diff.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Path qw(make_path rmtree);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;

my $src = "$FindBin::RealBin/../test/session_regress";
my $schedule = "$src/schedule";
die "no $schedule" unless -f $schedule;
die 'PG_REGRESS is not set' unless $ENV{PG_REGRESS};

my @tests = schedule_tests($schedule);
ok(@tests >= 6, 'schedule lists ' . scalar(@tests) . ' tests');

my $work = "$PostgreSQL::Test::Utils::tmp_check/session_regress";
rmtree($work);
make_path($work);

# the same tests one after the other
my $serial_schedule = "$work/serial_schedule";
open my $fh, '>', $serial_schedule or die "cannot write $serial_schedule: $!";
print $fh "test: $_\n" for @tests;
close $fh;

my $node = pool_node('regress_pool', size => 1);
$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE regress_pool_role NOLOGIN;
	GRANT regress_pool_role TO app;
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

# a fresh database, set up as pg_regress's create_database does
sub make_db
{
	my ($db) = @_;
	regress_database($node, $db, owner => 'app', extension => 1);
	return;
}

# run_regress(LABEL, PORT, DB, SCHEDULE, INPUTDIR): runs pg_regress, returns
# (exit status, output dir); shows pg_regress's output and diffs on failure
sub run_regress
{
	my ($label, $port, $db, $sched, $indir) = @_;
	return run_pg_regress(
		label => $label, port => $port, db => $db, user => 'app',
		schedule => $sched, inputdir => $indir,
		outputdir => "$work/$label");
}

# compare_results(LABEL, OUTDIR, REFDIR): every test's results file must be
# identical to the reference one
sub compare_results
{
	my ($label, $out, $ref) = @_;
	my $diffs = regress_diffs($ref, "$out/results", \@tests);
	for my $t (@tests)
	{
		ok(!exists $diffs->{$t}, "$label: $t.out identical to the main port's")
		  or diag("diff -u main $label ($t):\n"
			  . (length $diffs->{$t} > 30000 ? substr($diffs->{$t}, 0, 30000) . "\n[... cut ...]\n" : $diffs->{$t}));
	}
	return;
}

# an input dir whose expected/ is the main port's results
sub pool_inputdir
{
	my ($label, $main_results) = @_;
	my $dir = "$work/in_$label";
	make_path($dir);
	symlink("$src/sql", "$dir/sql") or die "symlink: $!";
	symlink($main_results, "$dir/expected") or die "symlink: $!";
	return $dir;
}

###########################################################################
# 1. Main port, against the checked-in expected output
###########################################################################
make_db('sr_main');
my ($rc, $main_out) = run_regress('main', $node->port, 'sr_main', $schedule, $src);
is($rc, 0, 'main port: pg_regress output matches test/session_regress/expected');
my $main_results = "$main_out/results";
ok(-f "$main_results/$_.out", "main port: $_ ran") for @tests;
compare_results('main port vs checked-in', $main_out, "$src/expected");

###########################################################################
# 2. Pool port, one executor, serially
###########################################################################
make_db('sr_pool_serial');
my $in = pool_inputdir('pool_serial', $main_results);
my ($rc2, $out2) =
  run_regress('pool_serial', $node->pool_port, 'sr_pool_serial', $serial_schedule, $in);
is($rc2, 0, 'pool port, session_pool_size = 1, serial: same output as the main port');
compare_results('pool serial', $out2, $main_results);
{
	my @st = $node->pool_status(q{database = 'sr_pool_serial'});
	is(scalar(@st), 1, 'serial run: one executor served the database');
	cmp_ok($st[0]{transactions} // 0, '>', 100, 'serial run: the executor served the tests')
	  if @st;
}
check_no_crash($node, 'serial run');

###########################################################################
# 3. Pool port, two executors, parallel groups
###########################################################################
$node->append_conf('postgresql.conf', 'builtin_pool.session_pool_size = 2');
$node->restart;
ok(pool_serves(), 'pool port serves after restart with session_pool_size = 2');
make_db('sr_pool_parallel');
$in = pool_inputdir('pool_parallel', $main_results);
my ($rc3, $out3) =
  run_regress('pool_parallel', $node->pool_port, 'sr_pool_parallel', $schedule, $in);
is($rc3, 0, 'pool port, session_pool_size = 2, parallel groups: same output as the main port');
compare_results('pool parallel', $out3, $main_results);
{
	# tests that pin get executors beyond the size; those retire once idle
	ok( wait_until(
			sub { scalar($node->pool_status(q{database = 'sr_pool_parallel'})) <= 2 },
			30),
		'parallel run: at most two executors once the extra ones retired');
	my @st = $node->pool_status(q{database = 'sr_pool_parallel'});
	is(scalar(grep { $_->{pinned} } @st), 0, 'parallel run: nothing left pinned');
}

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
