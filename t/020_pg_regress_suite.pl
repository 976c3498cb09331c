
# Copyright (c) builtin_pool authors
#
# PostgreSQL 15's own regression suite (src/test/regress of the source that
# scripts/test.sh fetches with apt-get source, passed as BP_PG_SRC) run with
# pg_regress --use-existing against the main port and against the pool port
# of one server, in a fresh database "regression" without the extension,
# and compared test by test (results/T.out of the main port against those
# of the pool port):
#
#   parallel  parallel_schedule as PostgreSQL's installcheck-parallel runs it
#             (groups of up to 20 tests at once), the pool having
#             session_pool_size = 3: sessions share executors, pin, move;
#   serial    the same schedule one test at a time (--max-connections=1, as
#             installcheck), session_pool_size = 1: every session runs on
#             the executor the previous test's sessions used, so state one
#             leaves behind is seen by the next.
#
# The main port runs each mode twice; a test whose output differs between
# those two runs is unstable on its own: it is reported apart and left out
# of that mode's comparison.  The set of tests whose output differs
# between the ports must be exactly the one checked in as
# test/pg_regress_known_diffs, each named in the README's Limitations: a
# new difference fails this test, and so does a listed one that is gone
# (unless listed as [sometimes]: it depends on how sessions interleave).
#
# Everything is kept in tmp_check/pg_regress_suite/: per run the pg_regress
# output dir (results/, regression.diffs against PostgreSQL's expected
# files), and per mode MODE.diffs (diff -u main pool of each differing
# test).  To regenerate the list: run this test and take the lines it
# prints after "differing tests, in the format of test/pg_regress_known_diffs"
# (a new difference gets the reason "?": write it down).
#
# The regression tests' C functions (regress.so, and refint.so/autoinc.so
# of contrib/spi) are built here with PGXS from that source.
#
# Time: one run of the suite takes 20-40 s on the main port, the serial
# pool run 60-90 s (three tests wait 10 s each, see the list); all six runs
# take about four minutes on two shared cores.  Each run is
# cut at 240 s (a hang shows pool_status() and the sessions), and
# authentication_timeout = 10s bounds what a pool client waiting in vain
# for an executor costs.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Copy qw(copy);
use File::Path qw(make_path rmtree);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time);

my $pgsrc = $ENV{BP_PG_SRC};
if (!$pgsrc || !-f "$pgsrc/src/test/regress/parallel_schedule")
{
	plan skip_all =>
	  'no PostgreSQL 15 source: BP_PG_SRC is not set (scripts/test.sh sets it; with BP_SKIP_APT=1 only when the source is cached)';
}
my $rsrc = "$pgsrc/src/test/regress";
my $known_file = "$FindBin::RealBin/../test/pg_regress_known_diffs";
my $readme = "$FindBin::RealBin/../README.md";
my $db = 'regression';

my $work = "$PostgreSQL::Test::Utils::tmp_check/pg_regress_suite";
rmtree($work);
make_path($work);

my $t0 = time();

###########################################################################
# The C functions the tests load, built with PGXS
###########################################################################
my $lib = "$work/lib";
make_path($lib);
for my $f ("$rsrc/regress.c", "$pgsrc/contrib/spi/refint.c",
	"$pgsrc/contrib/spi/autoinc.c")
{
	copy($f, $lib) or die "copy $f: $!";
}
{
	# REFINT_VERBOSE as in contrib/spi/Makefile: the triggers test's
	# expected output has refint's notices
	open my $mk, '>', "$lib/Makefile" or die "cannot write $lib/Makefile: $!";
	print $mk <<'EOM';
MODULES = regress refint autoinc
PG_CPPFLAGS = -DREFINT_VERBOSE
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
EOM
	close $mk;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'make', '-C', $lib, '-s' ], '>', \$out, '2>', \$err);
	ok($ok, 'regress.so, refint.so, autoinc.so built with PGXS')
	  or BAIL_OUT("building the regression tests' libraries failed:\n$out$err");
}

my @tests = schedule_tests("$rsrc/parallel_schedule");
cmp_ok(scalar(@tests), '>', 150, 'parallel_schedule lists ' . scalar(@tests) . ' tests');

###########################################################################
# The server, set up as PostgreSQL's installcheck expects it
###########################################################################
# authentication_timeout bounds a pool client's wait for an executor: a
# test that waits in vain (known differences) costs 10 s, not 60
my $node = pool_node(
	'pg_regress',
	size => 3,
	# executors pinned by temp tables stand outside the pool size; parallel
	# query must still get its workers as on the main port
	max_worker_processes => 64,
	conf => <<'EOC');
max_prepared_transactions = 2
log_statement = none
lc_messages = 'C'
authentication_timeout = '10s'
EOC
$node->start;
setup_app($node);
pool_serves_ok($node);

# leftover_prepared(): rolls back the prepared transactions left in the
# database by a run, returns their gids
sub leftover_prepared
{
	my @gids = split /\n/, $node->safe_psql('postgres',
		qq{SELECT gid FROM pg_prepared_xacts WHERE database = '$db' ORDER BY gid});
	$node->safe_psql($db, "ROLLBACK PREPARED '$_'") for @gids;
	return @gids;
}

# drop_leftovers(): the database and what a run cut short (or a test that
# differs) may leave in the cluster: the suite's tablespaces and roles are
# named regress_*
sub drop_leftovers
{
	$node->safe_psql('postgres', qq{DROP DATABASE IF EXISTS "$db" WITH (FORCE)});
	my @left;
	for my $q (
		[ q{SELECT spcname FROM pg_tablespace WHERE spcname LIKE 'regress\_%'}, 'TABLESPACE' ],
		[ q{SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_%'}, 'ROLE' ])
	{
		for my $name (split /\n/, $node->safe_psql('postgres', $q->[0]))
		{
			push @left, "$q->[1] $name";
			$node->psql('postgres', qq{DROP $q->[1] "$name"});
		}
	}
	note('dropped what the previous run left: ' . join(', ', @left)) if @left;
	return;
}

# suite_run(LABEL, PORT, ARGS...): pg_regress over parallel_schedule in a
# re-created database, on a freshly restarted server (so that no executor
# holds the old database and no state of the previous run remains);
# returns its results dir
my $first = 1;
my %secs;
sub suite_run
{
	my ($label, $port, @args) = @_;
	$node->restart unless $first;
	$first = 0;
	drop_leftovers();
	regress_database($node, $db);
	my $start = time();
	my ($rc, $out) = run_pg_regress(
		label => $label, port => $port, db => $db,
		schedule => "$rsrc/parallel_schedule", inputdir => $rsrc,
		outputdir => "$work/$label", timeout => 240,
		args => [ "--dlpath=$lib", '--max-concurrent-tests=20', @args ],
		diag => 0);
	$secs{$label} = time() - $start;
	note(sprintf('%s: pg_regress exit status %d after %.0f s', $label, $rc, $secs{$label}));
	if ($rc == 124)
	{
		# a hang: what the executors and their sessions were doing
		diag("$label: pool_status():\n"
			  . $node->safe_psql('postgres', 'SELECT * FROM pool_status()')
			  . "\n$label: sessions of $db:\n"
			  . $node->safe_psql('postgres',
				qq{SELECT pid, backend_type, state, wait_event, application_name, left(query, 60)
				   FROM pg_stat_activity WHERE datname = '$db'}));
	}
	my @missing = grep { !-f "$out/results/$_.out" } @tests;
	ok(!@missing, "$label: every test ran") or diag("$label: no results for @missing");
	my @left = leftover_prepared();
	if ($port == $node->port)
	{
		ok(!@left, "$label: no prepared transaction left behind")
		  or diag("$label: prepared transactions left behind: @left");
	}
	elsif (@left)
	{
		# a difference the tests' output shows (listed or not)
		diag("$label: prepared transactions left behind (rolled back): @left");
	}
	return "$out/results";
}

# The two modes.  Each runs the main port twice (to tell the tests whose
# output varies on its own) and the pool port once; the pool's size is set
# before the mode's first run.
my @modes = (
	{ mode => 'parallel', size => 3, args => [] },
	{ mode => 'serial', size => 1, args => ['--max-connections=1'] });
for my $m (@modes)
{
	my $mode = $m->{mode};
	$node->append_conf('postgresql.conf', "builtin_pool.session_pool_size = $m->{size}\n");
	$m->{main} = suite_run("main_$mode", $node->port, @{ $m->{args} });
	$m->{main2} = suite_run("main_${mode}_2", $node->port, @{ $m->{args} });
	$m->{pool} = suite_run("pool_$mode", $node->pool_port, @{ $m->{args} });
	my @st = $node->pool_status(qq{database = '$db'});
	my $served = 0;
	$served += $_->{transactions} for @st;
	note("$mode: executors of the pool: " . scalar(@st) . ", transactions served: $served");
	cmp_ok($served, '>', 1000, "$mode: the pool served the suite");
	cmp_ok(scalar(@st), '>=', 3, "$mode: several executors served the suite") if $m->{size} > 1;
	check_no_crash($node, $mode);
}

###########################################################################
# Comparison
###########################################################################
# tests whose output differs between the two runs on the main port
for my $m (@modes)
{
	my $mode = $m->{mode};
	$m->{unstable} = regress_diffs($m->{main}, $m->{main2}, \@tests);
	my @u = sort keys %{ $m->{unstable} };
	write_file("$work/$mode.unstable.diffs", join('', map { $m->{unstable}{$_} } @u));
	diag("$mode: tests whose output differs between two runs on the main port (unstable, not compared): @u")
	  if @u;
}

# the checked-in list: "MODE TEST REASON", '#' comments; a reason that
# starts with "[sometimes]" marks a difference that shows only when the
# sessions interleave so (another session ran on the executor in between):
# that test may also come out identical
my %known;
for my $line (split /\n/, slurp_file($known_file))
{
	next if $line =~ /^\s*(#|$)/;
	my ($mode, $t, $reason) = $line =~ /^(parallel|serial)\s+(\S+)\s+(.*?)\s*$/
	  or die "bad line in $known_file: $line";
	die "$known_file: $t is not a test of parallel_schedule" unless grep { $_ eq $t } @tests;
	$known{$mode}{$t} = $reason;
}

my @listing;
my %count;
for my $m (@modes)
{
	my ($mode, $ref, $got, $unstable) = @$m{qw(mode main pool unstable)};
	my $diffs = regress_diffs($ref, $got, \@tests);
	write_file("$work/$mode.diffs", join('', map { $diffs->{$_} } sort keys %$diffs));
	my @differ = sort grep { !$unstable->{$_} } keys %$diffs;
	my @want = sort grep { !$unstable->{$_} } keys %{ $known{$mode} };
	$count{$mode} = {
		run => scalar(@tests),
		unstable => scalar(keys %$unstable),
		differing => scalar(@differ),
		identical => scalar(@tests) - scalar(keys %$unstable) - scalar(@differ) };
	push @listing, map { sprintf('%-8s %-16s %s', $mode, $_, $known{$mode}{$_} // '?') } @differ;

	my %want = map { $_ => 1 } @want;
	my %differ = map { $_ => 1 } @differ;
	my @new = grep { !$want{$_} } @differ;
	my @gone = grep { !$differ{$_} } @want;
	my %sometimes = map { $_ => 1 } grep { $known{$mode}{$_} =~ /^\[sometimes\]/ } @gone;
	@want = grep { !$sometimes{$_} } @want;
	@gone = grep { !$sometimes{$_} } @gone;
	push @listing, map { sprintf('%-8s %-16s %s', $mode, $_, $known{$mode}{$_}) } sort keys %sometimes;
	note("$mode: listed as [sometimes], identical this time: " . join(' ', sort keys %sometimes))
	  if %sometimes;
	is(join(' ', @differ), join(' ', @want),
		"$mode: the tests differing between the main port and the pool port are those of test/pg_regress_known_diffs")
	  or diag("$mode: differing now but not listed: @new\n"
		  . "$mode: listed but identical now (remove them from the list): @gone\n"
		  . join('', map { my $d = $diffs->{$_}; length $d > 20000 ? substr($d, 0, 20000) . "\n[... cut, see $work/$mode.diffs ...]\n" : $d } @new));
	note("$mode: diff -u main pool of $_:\n$diffs->{$_}") for grep { $want{$_} } @differ;
}

diag(sprintf('%s: %d tests run, %d identical, %d differing, %d unstable on the main port',
		$_, @{ $count{$_} }{qw(run identical differing unstable)}))
  for qw(parallel serial);
diag("differing tests, in the format of test/pg_regress_known_diffs:\n" . join("\n", @listing));
diag(sprintf('run times: %s; total %.0f s',
		join(', ', map { sprintf('%s %.0f s', $_, $secs{$_}) } sort keys %secs), time() - $t0));

# each listed test is named in the README's Limitations
{
	my ($lim) = slurp_file($readme) =~ /^## Limitations\n(.*?)(?=^## |\z)/ms;
	$lim //= '';
	my %listed = map { %{ $known{$_} } } keys %known;
	my @absent = grep { $lim !~ /\b\Q$_\E\b/ } sort keys %listed;
	ok(!@absent, "README's Limitations name every test of test/pg_regress_known_diffs")
	  or diag("not in the README's Limitations: @absent");
}

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "cannot write $path: $!";
	print $fh $text;
	close $fh;
	return;
}
