
# Copyright (c) builtin_pool authors
#
# The pool's Unix socket cannot be taken over.  It belongs to the
# postmaster, with a lock file ".s.PGSQL.<port>.lock" naming it, as core's
# sockets: while the listener restarts the file never goes away (same
# inode), nobody can bind its path, and clients connecting meanwhile (Unix
# and TCP) wait in the backlog and are served by the next listener.  A lock
# file of a live process keeps the pool off that path (logged, retried
# until it goes); a stale one (dead pid) is replaced.  At shutdown the
# socket and its lock file go.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IO::Socket::UNIX;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(time usleep);

my $node = pool_node('socket', size => 1);
my $pp = $node->pool_port;
my $sock = $node->host . "/.s.PGSQL.$pp";
my $lock = "$sock.lock";

# a stale lock file left by a server that is gone: replaced
{
	my $dead = fork() // die "fork: $!";
	POSIX::_exit(0) if $dead == 0;    # no END blocks in the child
	waitpid($dead, 0);
	open my $fh, '>', $lock or die $!;
	print $fh "$dead\n/nowhere\n";
	close $fh;
}
$node->start;
setup_app($node);
pool_serves_ok($node);

sub first_line
{
	my ($file) = @_;
	open my $fh, '<', $file or return '';
	my $l = <$fh>;
	close $fh;
	chomp $l if defined $l;
	return $l // '';
}

sub listener_pid
{
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
}

my $pm_pid = first_line($node->data_dir . '/postmaster.pid');
ok(-S $sock, 'the pool socket exists');
is(first_line($lock), $pm_pid, 'its lock file names the postmaster (a stale one was replaced)');
my $ino = (stat $sock)[1];

###########################################################################
# a listener restart: the file stays, nobody can take the path
###########################################################################
{
	my $lpid = listener_pid();
	like($lpid, qr/^\d+$/, 'listener pid');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($lpid)");
	my ($gone, $taken) = (0, 0);
	my $t_end = time() + 3;
	while (time() < $t_end)
	{
		$gone++ unless -S $sock;
		my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $sock, Listen => 1);
		if ($s)
		{
			$taken++;
			close $s;
			unlink $sock;
		}
		usleep(2000);
	}
	is($gone, 0, 'the socket file never went away while the listener restarted');
	is($taken, 0, 'nobody could bind its path meanwhile');
	is((stat $sock)[1], $ino, 'the same socket file after the restart');
	ok(wait_until(sub { my $p = listener_pid(); $p =~ /^\d+$/ && $p ne $lpid }, 20),
		'a new listener runs');
	is($node->pool_safe_psql('app', 'SELECT 1', unix => 1), '1', 'it serves the Unix socket');
}

###########################################################################
# clients arriving while the listener restarts wait and are served
###########################################################################
for my $unix (1, 0)
{
	my $name = $unix ? 'Unix socket' : 'TCP';
	my $lpid;
	ok(wait_until(sub { ($lpid = listener_pid()) =~ /^\d+$/ }, 20), "$name: a listener runs");
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($lpid)");
	ok(wait_until(sub { listener_pid() eq '' }, 10, 0.01), "$name: listener gone");
	my ($ret, $out, $err) = $node->pool_psql('app', 'SELECT 42', unix => $unix,
		timeout => 30);
	is($out, '42', "$name: a client that came while no listener ran is served");
	is($err, '', "$name: without an error");
}

###########################################################################
# a lock file of a live process: the pool keeps off that path, logs it and
# tries again until the lock goes
###########################################################################
$node->stop;
ok(!-e $sock, 'shutdown removes the socket file');
ok(!-e $lock, 'shutdown removes the lock file');
{
	open my $fh, '>', $lock or die $!;
	print $fh "$$\n/elsewhere\n";
	close $fh;
}
$node->start;
ok(!-e $sock, 'a live lock holder keeps the pool off its path');
ok( wait_until(sub { slurp_file($node->logfile) =~ /lock file "\Q$lock\E" already exists/ }, 10),
	'the refusal is logged');
is($node->pool_safe_psql('app', 'SELECT 2'), '2', 'TCP serves meanwhile');
unlink $lock;
ok(wait_until(sub { -S $sock }, 30), 'once the lock is gone, the socket is opened');
is(first_line($lock), first_line($node->data_dir . '/postmaster.pid'),
	'with a lock file naming the postmaster');
is($node->pool_safe_psql('app', 'SELECT 3', unix => 1), '3', 'and served');

check_no_crash($node);
$node->stop;
ok(!-e $sock && !-e $lock, 'shutdown removes both files again');
check_no_crash($node, 'after stop');

done_testing();
