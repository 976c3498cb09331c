
# Copyright (c) builtin_pool authors
#
# t/PoolTest.pm -- helpers shared by the builtin_pool TAP tests.
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use PoolTest;
#
#   my $node = pool_node('main', size => 2);   # a PoolTest::Node (a Cluster)
#   $node->start;
#   setup_app($node);                          # role app, database app, extension
#   $node->pool_safe_psql('app', 'SELECT 1');  # psql through the pool port
#   my $c = PoolTest::Raw->new(port => $node->pool_port);   # raw protocol client
#   check_no_crash($node);
#
# PoolTest::Node adds to PostgreSQL::Test::Cluster: pool_port, pool_connstr,
# pool_psql, pool_safe_psql, pool_bg_psql (a BackgroundPsql connected through
# the pool port), pool_status rows and the like.
#
# PoolTest::Raw is a tiny frontend/backend protocol 3.0 client (simple query
# protocol, COPY, cancel) working on raw sockets, for what psql cannot show:
# malformed packets, ParameterStatus, BackendKeyData, exact SQLSTATEs, clients
# that vanish at awkward moments.

package PoolTest;

use strict;
use warnings;

use Exporter 'import';
use File::Path ();
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(pool_node setup_app check_no_crash wait_until run_bounded pgbench_init pgbench_bg
  pgbench_bg_done bgq bgq_err
  free_port_range crash_lines pool_serves_ok regress_database run_pg_regress
  schedule_tests regress_diffs);

# Writing to a socket the server closed must give EPIPE, not kill the test.
$SIG{PIPE} = 'IGNORE';

# Lines that must never appear in a server log: a bgworker (or backend)
# killed by a signal, a PANIC, a crash-restart cycle.
our $CRASH_RE = qr/terminated by signal|was terminated by|PANIC|all server processes terminated; reinitializing|terminating any other active server processes|shutting down because restart_after_crash is off/;

# free_port_range(N): a free TCP port P such that P .. P+N-1 are all free.
# P itself is reserved through Cluster's port reservation.
sub free_port_range
{
	my ($n) = @_;
	$n //= 1;
	for (my $try = 0; $try < 100; $try++)
	{
		my $p = PostgreSQL::Test::Cluster::get_free_port();
		my $ok = 1;
		for my $i (1 .. $n - 1)
		{
			$ok = 0
			  unless PostgreSQL::Test::Cluster::can_bind('127.0.0.1', $p + $i);
		}
		return $p if $ok;
	}
	die "no range of $n free ports found";
}

# pool_node(NAME, %opts): init (not start) a node that preloads builtin_pool.
#   size    => builtin_pool.session_pool_size (default 2)
#   ports   => builtin_pool.session_pool_ports (default: not set, i.e. 1)
#   max_worker_processes => (default 20)
#   conf    => extra postgresql.conf text
#   init    => { options of Cluster::init, e.g. allows_streaming => 1 }
sub pool_node
{
	my ($name, %o) = @_;
	my $node = PoolTest::Node->new($name);
	$node->init(%{ $o{init} // {} });
	my $nports = $o{ports} // 1;
	my $pp = $o{pool_port} // free_port_range($nports);
	$node->{_pool_port} = $pp;
	my $conf = "shared_preload_libraries = 'builtin_pool'\n"
	  . "listen_addresses = '127.0.0.1'\n"
	  . "max_worker_processes = " . ($o{max_worker_processes} // 20) . "\n"
	  . "builtin_pool.port = $pp\n"
	  . "builtin_pool.session_pool_size = " . ($o{size} // 2) . "\n";
	$conf .= "builtin_pool.session_pool_ports = $o{ports}\n" if $o{ports};
	$conf .= $o{conf} if defined $o{conf};
	$node->append_conf('postgresql.conf', $conf);
	return $node;
}

# setup_app(NODE): role "app" (login, no superuser), database "app" owned by
# it, the extension in "postgres" and "app", app may read pool statistics.
sub setup_app
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		CREATE ROLE app LOGIN;
		GRANT pg_read_all_stats TO app;
		CREATE EXTENSION builtin_pool;
	});
	$node->safe_psql('postgres',
		q{CREATE DATABASE app OWNER app ENCODING 'UTF8' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'});
	$node->safe_psql('app', 'CREATE EXTENSION builtin_pool');
	return;
}

# regress_database(NODE, DB, %opts): a fresh database set up as pg_regress's
# create_database does (template0, UTF8, C locale, the C message and
# formatting settings), created through the main port.
#   owner     => role owning it (default: the bootstrap superuser)
#   extension => 1 to CREATE EXTENSION builtin_pool in it
#   drop      => 1 to drop an existing one first (WITH (FORCE))
sub regress_database
{
	my ($node, $db, %o) = @_;
	$node->safe_psql('postgres', qq{DROP DATABASE IF EXISTS "$db" WITH (FORCE)})
	  if $o{drop};
	my $owner = defined $o{owner} ? qq{ OWNER "$o{owner}"} : '';
	$node->safe_psql('postgres',
		qq{CREATE DATABASE "$db"$owner TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'});
	$node->safe_psql('postgres', qq{
		ALTER DATABASE "$db" SET lc_messages TO 'C';
		ALTER DATABASE "$db" SET lc_monetary TO 'C';
		ALTER DATABASE "$db" SET lc_numeric TO 'C';
		ALTER DATABASE "$db" SET lc_time TO 'C';
		ALTER DATABASE "$db" SET bytea_output TO 'hex';
		ALTER DATABASE "$db" SET timezone_abbreviations TO 'Default';
	});
	$node->safe_psql($db, 'CREATE EXTENSION builtin_pool') if $o{extension};
	return;
}

# schedule_tests(SCHEDULE): the tests a pg_regress schedule runs, in order
# ("test:" lines; "ignore:" lines only mark tests whose failure is ignored).
sub schedule_tests
{
	my ($schedule) = @_;
	my @tests;
	for my $line (split /\n/, slurp_file($schedule))
	{
		next unless $line =~ /^test:\s*(.*?)\s*$/;
		push @tests, split /\s+/, $1;
	}
	return @tests;
}

# run_pg_regress(%opts): runs $PG_REGRESS --use-existing (libpq's PGOPTIONS
# and PGAPPNAME of the caller removed, as pg_regress sets its own) and
# returns (exit status, output dir); 124 if it did not finish in time.
#   label, port, db, inputdir, schedule: as the names say
#   outputdir => where results/ goes
#   user      => role to connect as (default: libpq's default)
#   args      => [ further pg_regress arguments ]
#   timeout   => seconds (default 240)
#   diag      => 0: on failure only note() the output and diffs (for runs
#                whose failure against the inputdir's expected files is
#                not itself a test failure); default 1, diag()
sub run_pg_regress
{
	my (%o) = @_;
	die 'PG_REGRESS is not set' unless $ENV{PG_REGRESS};
	my ($label, $out) = ($o{label}, $o{outputdir});
	File::Path::make_path($out);
	my @cmd = (
		$ENV{PG_REGRESS}, '--use-existing',
		'--host=127.0.0.1', "--port=$o{port}",
		"--dbname=$o{db}",
		"--inputdir=$o{inputdir}", "--outputdir=$out",
		"--schedule=$o{schedule}", '--bindir=');
	push @cmd, "--user=$o{user}" if defined $o{user};
	push @cmd, @{ $o{args} } if $o{args};
	my ($stdout, $stderr) = ('', '');
	my $rc;
	{
		local $ENV{PGOPTIONS};
		delete $ENV{PGOPTIONS};
		local $ENV{PGAPPNAME};
		delete $ENV{PGAPPNAME};
		eval {
			IPC::Run::run(\@cmd, '<', \undef, '>', \$stdout, '2>', \$stderr,
				IPC::Run::timeout($o{timeout} // 240));
			$rc = $? >> 8;
		};
		if ($@)
		{
			Test::More::diag("pg_regress ($label) did not finish: $@");
			$rc = 124;
		}
	}
	note("pg_regress ($label):\n$stdout$stderr");
	if ($rc != 0)
	{
		my $say = ($o{diag} // 1) ? \&Test::More::diag : \&Test::More::note;
		$say->("pg_regress ($label) exit status $rc:\n$stdout$stderr");
		if (-f "$out/regression.diffs")
		{
			my $d = slurp_file("$out/regression.diffs");
			$d = substr($d, 0, 60000) . "\n[... cut ...]\n" if length $d > 60000;
			$say->("regression.diffs ($label):\n$d");
		}
	}
	return ($rc, $out);
}

# regress_diffs(REFDIR, GOTDIR, TESTS): compares GOTDIR/T.out with
# REFDIR/T.out for each test T; returns a hash ref test => `diff -u` text
# of those that differ (a missing file counts as a difference, its text
# saying which).
sub regress_diffs
{
	my ($ref, $got, $tests) = @_;
	my %diffs;
	for my $t (@$tests)
	{
		my ($want, $have) = ("$ref/$t.out", "$got/$t.out");
		if (!-f $want || !-f $have)
		{
			$diffs{$t} = "missing:" . (-f $want ? '' : " $want") . (-f $have ? '' : " $have") . "\n";
			next;
		}
		next if slurp_file($want) eq slurp_file($have);
		my ($d, $e) = ('', '');
		IPC::Run::run([ 'diff', '-u', $want, $have ], '>', \$d, '2>', \$e);
		$diffs{$t} = "$d$e";
	}
	return \%diffs;
}

# Lines of the node's log matching $CRASH_RE.
sub crash_lines
{
	my ($node) = @_;
	my $log = slurp_file($node->logfile);
	return grep { /$CRASH_RE/ } split /\n/, $log;
}

# check_no_crash(NODE [, NAME]): one test, passing when the server log holds
# no crash line.
sub check_no_crash
{
	my ($node, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @bad = crash_lines($node);
	ok(!@bad, 'no crash in the server log' . (defined $name ? " ($name)" : ''))
	  or diag("crash lines:\n" . join("\n", @bad));
	return !@bad;
}

# pool_serves_ok(NODE [, NAME]): one test, passing once a query through the pool
# port of NODE (database app) succeeds, within 30 s.
sub pool_serves_ok
{
	my ($node, $name) = @_;
	return Test::More::ok(
		wait_until(
			sub {
				my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 10);
				return $ret == 0 && $out eq '1';
			},
			30),
		$name // 'pool port serves');
}

# wait_until(CODE, TIMEOUT_S [, INTERVAL_S]): calls CODE until it returns
# true or TIMEOUT_S elapsed; returns CODE's last value.
sub wait_until
{
	my ($code, $timeout, $interval) = @_;
	$interval //= 0.1;
	my $deadline = time() + $timeout;
	while (1)
	{
		my $r = $code->();
		return $r if $r;
		return $r if time() >= $deadline;
		usleep(int($interval * 1_000_000));
	}
}

# pgbench_init(NODE): pgbench -i (scale 1) of database app as role app,
# through the main port, as a test
sub pgbench_init
{
	my ($node) = @_;
	$node->command_ok(
		[
			'pgbench', '-i', '-q', '-s', '1', '-h', $node->host, '-p', $node->port,
			'-U', 'app', 'app'
		],
		'pgbench -i through the main port');
}

# pgbench_bg(NODE, clients => N, seconds => S, sql => 'one statement;' |
# args => [...]): pgbench as role app in database app through the pool
# port, in the background (sql: a script of that one statement, written in
# the node's directory; args: pgbench's own, -S say).  pgbench_bg_done(RUN,
# NAME) waits for it and checks, as tests, that it ran with no failed
# transaction; returns its stdout.
sub pgbench_bg
{
	my ($node, %o) = @_;
	my @args = ('-n', '-c', $o{clients}, '-j', '2', '-T', $o{seconds});
	if (defined $o{sql})
	{
		my $script = $node->basedir . '/pgbench_bg.sql';
		open my $fh, '>', $script or die $!;
		print $fh "$o{sql}\n";
		close $fh;
		push @args, '-f', $script;
	}
	push @args, @{ $o{args} // [] };
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', @args, '-h', '127.0.0.1', '-p', $node->pool_port, '-U', 'app', 'app' ],
		'<', '/dev/null', '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub pgbench_bg_done
{
	my ($run, $name) = @_;
	$run->{h}->finish;
	my $out = ${ $run->{out} };
	note "$name: pgbench stderr: " . substr(${ $run->{err} }, 0, 2000);
	like($out, qr/number of transactions actually processed: [1-9]/, "$name: pgbench ran");
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($failed // 0, 0, "$name: no transaction failed");
	unlike(${ $run->{err} }, qr/error|FATAL|aborted/i, "$name: no client error");
	return $out;
}

# run_bounded(CMD_ARRAYREF, SECONDS): runs a command (pgbench, say) with
# stdin from /dev/null, killed if it has not ended after SECONDS (by the
# clock: IPC::Run's own timer is checked only while pumping).  Returns
# (stdout, stderr, timed_out).
sub run_bounded
{
	my ($cmd, $seconds) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start($cmd, '<', '/dev/null', '>', \$out, '2>', \$err);
	my $deadline = time() + $seconds;
	while ($h->pumpable && time() < $deadline)
	{
		$h->pump_nb;
		usleep(100_000);
	}
	my $timed_out = $h->pumpable;
	$h->kill_kill if $timed_out;
	$h->finish unless $timed_out;
	return ($out, $err, $timed_out);
}

# bgq(BG, SQL): run SQL in a BackgroundPsql session; returns its stdout (in
# any context).  bgq_err(BG, SQL) returns (stdout, stderr), stderr being
# that of this query only.
sub bgq
{
	my ($bg, $sql) = @_;
	my ($out) = bgq_err($bg, $sql);
	return $out;
}

sub bgq_err
{
	my ($bg, $sql) = @_;
	$bg->{stderr} = '';
	my ($out) = $bg->query($sql);
	my $err = $bg->{stderr};
	$bg->{stderr} = '';
	return ($out, $err);
}

##########################################################################

package PoolTest::Node;

use strict;
use warnings;

use parent -norequire, 'PostgreSQL::Test::Cluster';
use PostgreSQL::Test::BackgroundPsql;

sub pool_port
{
	my ($self) = @_;
	return $self->{_pool_port};
}

# pool_connstr(DB, user => ROLE (default app), unix => 1, port => P,
#              host => H, extra => 'key=value ...')
sub pool_connstr
{
	my ($self, $db, %o) = @_;
	my $host = $o{host} // ($o{unix} ? $self->host : '127.0.0.1');
	my $port = $o{port} // $self->pool_port;
	my $user = $o{user} // 'app';
	my $cs = "host=$host port=$port dbname=$db user=$user";
	$cs .= " $o{extra}" if defined $o{extra};
	return $cs;
}

sub _split_conn_opts
{
	my ($p) = @_;
	my %c;
	for my $k (qw(user unix port host extra))
	{
		$c{$k} = delete $p->{$k} if exists $p->{$k};
	}
	return %c;
}

# pool_psql(DB, SQL, %params): Cluster::psql through the pool port; params
# as Cluster::psql plus user/unix/port/host/extra of pool_connstr.
# On timeout the exit code is 124 (Cluster::psql would die, or return 0
# when given timed_out).
sub pool_psql
{
	my ($self, $db, $sql, %p) = @_;
	my %c = _split_conn_opts(\%p);
	$p{timeout} //= 60;
	my $to = 0;
	my $caller_to = delete $p{timed_out};
	my ($out, $err) = ('', '');
	$p{stdout} //= \$out;
	$p{stderr} //= \$err;
	my $ret;
	{
		no warnings 'uninitialized';
		$ret = $self->psql($db, $sql,
			connstr => $self->pool_connstr($db, %c),
			timed_out => \$to, %p);
	}
	$$caller_to = $to if $caller_to;
	$ret = 124 if $to;
	return wantarray ? ($ret, ${ $p{stdout} }, ${ $p{stderr} }) : $ret;
}

sub pool_safe_psql
{
	my ($self, $db, $sql, %p) = @_;
	my %c = _split_conn_opts(\%p);
	$p{timeout} //= 60;
	return $self->safe_psql($db, $sql,
		connstr => $self->pool_connstr($db, %c), %p);
}

# pool_bg_psql(DB, %params): a PostgreSQL::Test::BackgroundPsql session
# through the pool port.  on_error_stop defaults to 0 here; timeout (whole
# session) defaults to 60 s.
sub pool_bg_psql
{
	my ($self, $db, %p) = @_;
	my %c = _split_conn_opts(\%p);
	local %ENV = $self->_get_env();
	my @cmd = (
		$self->installed_command('psql'),
		'-XAtq', '-d', $self->pool_connstr($db, %c), '-f', '-');
	push @cmd, '-v', 'ON_ERROR_STOP=1' if $p{on_error_stop};
	push @cmd, @{ $p{extra_params} } if $p{extra_params};
	return PostgreSQL::Test::BackgroundPsql->new(0, \@cmd,
		$p{timeout} // 60, $p{wait} // 1);
}

# Result of a query through the main port, as a list of rows, each an array
# ref of the '|'-separated columns.
sub main_rows
{
	my ($self, $db, $sql) = @_;
	my $out = $self->safe_psql($db, $sql);
	return map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/, $out;
}

# pool_status() rows (hash refs) read through the main port, optionally
# restricted by a WHERE clause.
sub pool_status
{
	my ($self, $where) = @_;
	my @cols =
	  qw(port database role pid state dedicated sessions active waiting pinned transactions bytes_in bytes_out);
	my $sql = 'SELECT ' . join(', ', @cols) . ' FROM pool_status()';
	$sql .= " WHERE $where" if defined $where;
	$sql .= ' ORDER BY port, database, role, pid';
	my @rows;
	for my $r ($self->main_rows('postgres', $sql))
	{
		my %h;
		@h{@cols} = @$r;
		push @rows, \%h;
	}
	return @rows;
}

# pool_pools row (hash ref) for one (port, database, role), or undef.
sub pool_pool
{
	my ($self, $db, $role, $port) = @_;
	$port //= $self->pool_port;
	my @cols = qw(port database role executors sessions active waiting pinned transactions);
	my @r = $self->main_rows('postgres',
		    'SELECT ' . join(', ', @cols)
		  . " FROM pool_pools WHERE port = $port AND database = '$db' AND role = '$role'"
	);
	return undef unless @r;
	my %h;
	@h{@cols} = @{ $r[0] };
	return \%h;
}

##########################################################################

package PoolTest::Raw;

# A raw frontend/backend protocol client.
#
#   my $c = PoolTest::Raw->new(port => $port);      # or path => unix socket
#   $c->login(user => 'app', database => 'app') or die;
#   my $r = $c->query('SELECT 1');   # { rows, errors, notices, tags, ... }
#   $c->close;

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Socket;
use Time::HiRes qw(time);

use constant PROTO_3_0 => 196608;
use constant CANCEL_CODE => 80877102;
use constant SSL_CODE => 80877103;
use constant GSSENC_CODE => 80877104;

# new(port => P [, host => H] | path => UNIX_SOCKET_PATH [, timeout => S])
# Dies if the connection cannot be made.
sub new
{
	my ($class, %a) = @_;
	my $sock;
	if ($a{path})
	{
		$sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $a{path})
		  or die "cannot connect to $a{path}: $!";
	}
	else
	{
		$sock = IO::Socket::INET->new(
			PeerHost => $a{host} // '127.0.0.1',
			PeerPort => $a{port},
			Proto => 'tcp',
			Timeout => 10)
		  or die "cannot connect to port $a{port}: $!";
	}
	binmode $sock;
	return bless {
		sock => $sock,
		buf => '',
		eof => 0,
		timed_out => 0,
		params => {},
		timeout => $a{timeout} // 10,
	}, $class;
}

sub sock { return $_[0]->{sock}; }

# send_bytes(DATA): writes everything; false if the peer is gone.
sub send_bytes
{
	my ($self, $data) = @_;
	my $off = 0;
	while ($off < length $data)
	{
		my $n = syswrite($self->{sock}, $data, length($data) - $off, $off);
		return 0 unless defined $n;
		$off += $n;
	}
	return 1;
}

# Message builders (class methods, also usable as functions).
sub startup_packet
{
	my (@kv) = @_;
	shift @kv if @kv && defined $kv[0] && $kv[0] eq __PACKAGE__;
	my $version = PROTO_3_0;
	my $body = '';
	while (@kv)
	{
		my ($k, $v) = splice(@kv, 0, 2);
		if ($k eq '_version') { $version = $v; next; }
		$body .= "$k\0$v\0";
	}
	$body = pack('N', $version) . $body . "\0";
	return pack('N', 4 + length $body) . $body;
}

sub msg
{
	my ($type, $payload) = @_[ -2, -1 ];
	return $type . pack('N', 4 + length $payload) . $payload;
}

sub query_msg
{
	my ($sql) = @_;
	return 'Q' . pack('N', 4 + length($sql) + 1) . $sql . "\0";
}

# Reads more input until DEADLINE.  0 on EOF or timeout (flags set).
sub _fill
{
	my ($self, $deadline) = @_;
	my $left = $deadline - time();
	if ($left <= 0)
	{
		$self->{timed_out} = 1;
		return 0;
	}
	my $sel = IO::Select->new($self->{sock});
	if (!$sel->can_read($left))
	{
		$self->{timed_out} = 1;
		return 0;
	}
	my $chunk;
	my $n = sysread($self->{sock}, $chunk, 262144);
	if (!defined $n || $n == 0)
	{
		$self->{eof} = 1;
		$self->{read_error} = $! unless defined $n;
		return 0;
	}
	$self->{buf} .= $chunk;
	$self->{bytes_read} += $n;
	return 1;
}

# read_msg([TIMEOUT]): (type, body), or () on EOF / timeout ($c->{eof},
# $c->{timed_out} tell which).
sub read_msg
{
	my ($self, $timeout) = @_;
	$timeout //= $self->{timeout};
	my $deadline = time() + $timeout;
	$self->{timed_out} = 0;
	while (1)
	{
		if (length($self->{buf}) >= 5)
		{
			my ($type, $len) = unpack('a N', $self->{buf});
			if ($len < 4)
			{
				$self->{bad_message} = 1;
				return ();
			}
			if (length($self->{buf}) >= 1 + $len)
			{
				my $body = substr($self->{buf}, 5, $len - 4);
				substr($self->{buf}, 0, 1 + $len, '');
				return ($type, $body);
			}
		}
		return () if $self->{eof};
		return () unless $self->_fill($deadline);
	}
}

# read_byte([TIMEOUT]): one byte (answer to SSLRequest / GSSENCRequest).
sub read_byte
{
	my ($self, $timeout) = @_;
	my $deadline = time() + ($timeout // $self->{timeout});
	$self->{timed_out} = 0;
	while (length($self->{buf}) < 1)
	{
		return undef if $self->{eof};
		return undef unless $self->_fill($deadline);
	}
	return substr($self->{buf}, 0, 1, '');
}

# wait_eof([TIMEOUT]): discards input until the server closes: 1 on EOF,
# 0 on timeout.
sub wait_eof
{
	my ($self, $timeout) = @_;
	my $deadline = time() + ($timeout // $self->{timeout});
	$self->{timed_out} = 0;
	while (!$self->{eof})
	{
		$self->{buf} = '';
		last unless $self->_fill($deadline);
	}
	$self->{buf} = '';
	return $self->{eof} ? 1 : 0;
}

# ErrorResponse / NoticeResponse body -> { S => 'FATAL', C => '08P01', ... }
sub parse_fields
{
	my $body = $_[-1];
	my %f;
	while ($body =~ /\G([^\0])([^\0]*)\0/gcs)
	{
		$f{$1} = $2;
	}
	return \%f;
}

# DataRow body -> [ values ] (undef for NULL)
sub parse_datarow
{
	my ($body) = @_;
	my $n = unpack('n', $body);
	my $pos = 2;
	my @vals;
	for (1 .. $n)
	{
		my $len = unpack('l>', substr($body, $pos, 4));
		$pos += 4;
		if ($len < 0)
		{
			push @vals, undef;
		}
		else
		{
			push @vals, substr($body, $pos, $len);
			$pos += $len;
		}
	}
	return \@vals;
}

sub _note_common
{
	my ($self, $r, $type, $body) = @_;
	if ($type eq 'S')
	{
		my ($name, $value) = split /\0/, $body, 3;
		$self->{params}{$name} = $value;
		push @{ $r->{param_status} }, [ $name, $value ];
	}
	elsif ($type eq 'N')
	{
		push @{ $r->{notices} }, parse_fields($body);
	}
	elsif ($type eq 'E')
	{
		push @{ $r->{errors} }, parse_fields($body);
	}
	elsif ($type eq 'A')
	{
		push @{ $r->{notifies} }, $body;
	}
	return;
}

# send_startup(key => value, ...): sends a StartupMessage (protocol 3.0
# unless _version => N is given).
sub send_startup
{
	my ($self, @kv) = @_;
	return $self->send_bytes(startup_packet(@kv));
}

# read_startup_response([TIMEOUT]): reads until ReadyForQuery, an
# ErrorResponse, EOF or timeout; returns a hash ref: ok (ReadyForQuery seen),
# types (message type letters), errors, auth (AuthenticationRequest codes),
# negotiate (NegotiateProtocolVersion body), pid/key (BackendKeyData).
sub read_startup_response
{
	my ($self, $timeout) = @_;
	my $deadline = time() + ($timeout // $self->{timeout});
	my $r = { ok => 0, types => '', errors => [], auth => [],
		param_status => [], notices => [] };
	while (1)
	{
		my $left = $deadline - time();
		my ($type, $body) = $self->read_msg($left > 0 ? $left : 0.001);
		if (!defined $type)
		{
			$r->{eof} = $self->{eof};
			$r->{timed_out} = $self->{timed_out};
			last;
		}
		$r->{types} .= $type;
		$self->_note_common($r, $type, $body);
		if ($type eq 'R')
		{
			push @{ $r->{auth} }, unpack('N', $body);
		}
		elsif ($type eq 'K')
		{
			($r->{pid}, $r->{key}) = unpack('N N', $body);
			($self->{pid}, $self->{key}) = ($r->{pid}, $r->{key});
		}
		elsif ($type eq 'v')
		{
			my ($minor, $n) = unpack('N N', $body);
			my @opts = split /\0/, substr($body, 8);
			$r->{negotiate} = { minor => $minor, count => $n,
				options => \@opts };
		}
		elsif ($type eq 'Z')
		{
			$r->{ok} = 1;
			$r->{status} = $body;
			last;
		}
		elsif ($type eq 'E')
		{
			last;
		}
	}
	return $r;
}

# login(user => U, database => D, ...): StartupMessage + response; returns
# true when the session is ready.  Response in $c->{startup}.
sub login
{
	my ($self, @kv) = @_;
	my $timeout = $self->{timeout};
	$self->send_startup(@kv) or return 0;
	$self->{startup} = $self->read_startup_response($timeout);
	return $self->{startup}{ok};
}

# send_query(SQL): sends a Query message, does not wait.
sub send_query
{
	my ($self, $sql) = @_;
	return $self->send_bytes(query_msg($sql));
}

# read_result([TIMEOUT]): reads the response to a Query until ReadyForQuery
# (or CopyInResponse, EOF, timeout).  Returns a hash ref:
#   complete   ReadyForQuery seen; status its transaction status
#   types      message type letters in order
#   rows       DataRows of all result sets (array refs)
#   sets       [ { rows => [...], tag => ... } ] one per result set
#   tags       CommandComplete tags
#   errors / notices  parsed fields; param_status [ [name, value] ]
#   copy_in    CopyInResponse seen (the caller sends CopyData/Done/Fail)
#   copy_data  CopyData received (COPY TO STDOUT), concatenated
#   empty      EmptyQueryResponse count
sub read_result
{
	my ($self, $timeout) = @_;
	my $deadline = time() + ($timeout // $self->{timeout});
	my $r = {
		complete => 0, types => '', rows => [], sets => [], tags => [],
		errors => [], notices => [], param_status => [], copy_data => '',
		empty => 0, copy_in => 0 };
	my $cur;
	while (1)
	{
		my $left = $deadline - time();
		my ($type, $body) = $self->read_msg($left > 0 ? $left : 0.001);
		if (!defined $type)
		{
			$r->{eof} = $self->{eof};
			$r->{timed_out} = $self->{timed_out};
			last;
		}
		$r->{types} .= $type;
		$self->_note_common($r, $type, $body);
		if ($type eq 'T')
		{
			$cur = { rows => [] };
			push @{ $r->{sets} }, $cur;
		}
		elsif ($type eq 'D')
		{
			my $row = parse_datarow($body);
			push @{ $r->{rows} }, $row;
			if (!$cur)
			{
				$cur = { rows => [] };
				push @{ $r->{sets} }, $cur;
			}
			push @{ $cur->{rows} }, $row;
		}
		elsif ($type eq 'C')
		{
			(my $tag = $body) =~ s/\0$//;
			push @{ $r->{tags} }, $tag;
			$cur->{tag} = $tag if $cur;
			$cur = undef;
		}
		elsif ($type eq 'I')
		{
			$r->{empty}++;
		}
		elsif ($type eq 'd')
		{
			$r->{copy_data} .= $body;
		}
		elsif ($type eq 'G')
		{
			$r->{copy_in} = 1;
			last;
		}
		elsif ($type eq 'Z')
		{
			$r->{complete} = 1;
			$r->{status} = $body;
			last;
		}
	}
	return $r;
}

# query(SQL [, TIMEOUT]): send_query + read_result.
sub query
{
	my ($self, $sql, $timeout) = @_;
	$self->send_query($sql) or return { complete => 0, send_failed => 1,
		types => '', rows => [], errors => [], notices => [], tags => [],
		param_status => [], sets => [] };
	return $self->read_result($timeout);
}

# scalar result of a one-row one-column query, or undef
sub query_value
{
	my ($self, $sql, $timeout) = @_;
	my $r = $self->query($sql, $timeout);
	return undef unless $r->{complete} && !@{ $r->{errors} } && @{ $r->{rows} };
	return $r->{rows}[0][0];
}

# first error's SQLSTATE of a result, or ''
sub sqlstate
{
	my ($r) = @_;
	return '' unless $r && $r->{errors} && @{ $r->{errors} };
	return $r->{errors}[0]{C} // '';
}

# cancel(port => P, pid => PID, key => KEY [, path => ...]): sends a
# CancelRequest on a new connection and waits (bounded) for the server to
# close it.
sub cancel
{
	my ($class, %a) = @_;
	my $c = PoolTest::Raw->new(%a);
	$c->send_bytes(pack('N N N N', 16, CANCEL_CODE, $a{pid}, $a{key}));
	$c->wait_eof(5);
	$c->close;
	return 1;
}

# terminate(): sends Terminate ('X') and closes.
sub terminate
{
	my ($self) = @_;
	$self->send_bytes("X\0\0\0\4");
	return $self->close;
}

sub close
{
	my ($self) = @_;
	close($self->{sock}) if $self->{sock};
	$self->{sock} = undef;
	return 1;
}

1;
