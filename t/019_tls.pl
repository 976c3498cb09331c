
# Copyright (c) builtin_pool authors
#
# TLS on the pool port (ssl = on, the server's own certificate settings):
# sslmode=require and verify-full clients; hostssl / hostnossl lines; client
# certificates (the cert method, clientcert=verify-ca and verify-full);
# SCRAM over TLS; a TLS session kept across transaction switches with plain
# sessions on one executor, and moved to another executor when its own pins;
# large results and a large COPY FROM STDIN through the TLS relay; cancel,
# statement_timeout, a client killed mid-transaction; pgbench over TLS
# (also with -C); TLSv1.2 clients (AES-GCM), TLSv1.1 and a garbage
# handshake refused; a bounded, seeded fuzz of protocol streams over TLS
# (BP_TLS_FUZZ_N, default 150; BP_TLS_FUZZ_SEED) leaves no relay, session
# or lock behind; nothing in plaintext inside a TLS session (a GSSENCRequest
# after TLS, the listener's message when it ends), close_notify at every
# end of a TLS session, a session ended before its key's record limit
# (builtin_pool.tls_record_limit); ssl = off by reload answers 'N' again.
# No crash in the server log.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(usleep);

# ---------------------------------------------------------------------
# Certificates: a CA, the server (CN and SAN localhost / 127.0.0.1),
# clients certuser and fulluser signed by it, and one by another CA.
# ---------------------------------------------------------------------
my $cdir = PostgreSQL::Test::Utils::tempdir;

sub openssl
{
	my @cmd = ('openssl', @_);
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err)
	  or die "openssl @_ failed: $err";
	return;
}

sub make_ca
{
	my ($name) = @_;
	openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes',
		'-keyout', "$cdir/$name.key", '-out', "$cdir/$name.crt",
		'-days', '2', '-subj', "/CN=builtin_pool test $name");
	return;
}

sub make_cert
{
	my ($name, $cn, $ca, $ext) = @_;
	openssl('req', '-newkey', 'rsa:2048', '-nodes',
		'-keyout', "$cdir/$name.key", '-out', "$cdir/$name.csr",
		'-subj', "/CN=$cn");
	my @x = ('x509', '-req', '-in', "$cdir/$name.csr",
		'-CA', "$cdir/$ca.crt", '-CAkey', "$cdir/$ca.key",
		'-CAcreateserial', '-out', "$cdir/$name.crt", '-days', '2');
	if ($ext)
	{
		open my $fh, '>', "$cdir/$name.ext" or die $!;
		print $fh $ext;
		close $fh;
		push @x, '-extfile', "$cdir/$name.ext";
	}
	openssl(@x);
	chmod 0600, "$cdir/$name.key";
	return;
}

make_ca('ca');
make_ca('otherca');
make_cert('server', 'localhost', 'ca',
	"subjectAltName=DNS:localhost,IP:127.0.0.1\n");
make_cert('certuser', 'certuser', 'ca');
make_cert('fulluser', 'fulluser', 'ca');
make_cert('stranger', 'certuser', 'otherca');

my $node = pool_node('tls', size => 2, max_worker_processes => 30,
	conf => "max_connections = 100\nauthentication_timeout = '3s'\n"
	  . "log_connections = on\n");
my $pp = $node->pool_port;
my $mp = $node->port;
my $pgdata = $node->data_dir;
copy("$cdir/$_", "$pgdata/$_") or die $!
  for qw(server.crt server.key ca.crt);
chmod 0600, "$pgdata/server.key";
$node->append_conf('postgresql.conf', qq{
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
});

open my $fh, '>', "$pgdata/pg_hba.conf" or die $!;
print $fh <<'EOF';
local all all trust
hostssl all certuser 127.0.0.1/32 cert
hostssl all fulluser 127.0.0.1/32 trust clientcert=verify-full
hostssl all causer 127.0.0.1/32 trust clientcert=verify-ca
hostssl all sslonly 127.0.0.1/32 scram-sha-256
hostnossl all sslonly 127.0.0.1/32 reject
hostnossl all nossl 127.0.0.1/32 trust
host all app 127.0.0.1/32 trust
EOF
close $fh;

$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	SET password_encryption = 'scram-sha-256';
	CREATE ROLE certuser LOGIN;
	CREATE ROLE fulluser LOGIN;
	CREATE ROLE causer LOGIN;
	CREATE ROLE sslonly LOGIN PASSWORD 'tls_secret';
	CREATE ROLE nossl LOGIN;
});
$node->safe_psql('app', q{
	CREATE TABLE big (id int, t text);
	GRANT ALL ON big TO PUBLIC;
	CREATE TABLE lockme (id int);
	GRANT ALL ON lockme TO PUBLIC;
});

my $require = 'sslmode=require';
my $verify = "sslmode=verify-full sslrootcert=$cdir/ca.crt";

sub tls_psql
{
	my ($sql, %o) = @_;
	my $extra = $o{extra} // $require;
	return $node->pool_psql('app', $sql, %o, extra => $extra);
}

# ---------------------------------------------------------------------
# Plain TLS clients
# ---------------------------------------------------------------------
my ($ret, $out, $err) = tls_psql("SELECT 'tls ok'; \\conninfo");
is($ret, 0, 'sslmode=require through the pool port');
like($out, qr/^tls ok/, 'sslmode=require: query answered');
like($out, qr/SSL connection \(protocol: TLSv1\.3/, 'psql reports a TLSv1.3 connection');

# pool_sessions shows the TLS version and cipher a backend's pg_stat_ssl shows
my $main_ssl = $node->safe_psql('app',
	'SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
	connstr => "host=127.0.0.1 port=$mp dbname=app user=app $require");
($ret, $out) = tls_psql(
	q{SELECT tls_version, tls_cipher FROM pool_sessions WHERE query LIKE '%tls-self%'});
is($out, $main_ssl, "pool_sessions: TLS version and cipher as pg_stat_ssl's ($main_ssl)");
($ret, $out) = tls_psql(
	q{SELECT tls_version IS NULL AND tls_cipher IS NULL FROM pool_sessions WHERE query LIKE '%plain-self%'},
	extra => 'sslmode=disable');
is($out, 't', 'pool_sessions: no TLS columns for a plain session');

# log_connections: "connection authorized" says "SSL enabled (...)" as core's
{
	my $from = -s $node->logfile;
	$node->safe_psql('app', 'SELECT 1',
		connstr => "host=127.0.0.1 port=$mp dbname=app user=app application_name=tlslog $require");
	tls_psql('SELECT 1', extra => "$require application_name=tlslog");
	my @auth;
	wait_until(sub {
			@auth = grep { /connection authorized: user=app database=app application_name=tlslog/ }
			  split /\n/, substr(slurp_file($node->logfile), $from);
			@auth == 2 }, 10);
	s/^.*LOG:  // for @auth;
	is(scalar @auth, 2, 'log_connections: both TLS connections logged');
	like($auth[0] // '', qr/ SSL enabled \(protocol=TLSv1\.3, cipher=\S+, bits=\d+\)$/,
		'log_connections: the main port says SSL enabled');
	is($auth[1], $auth[0], 'log_connections: the pool port\'s line is the same');
}

($ret, $out, $err) = tls_psql('SELECT 42', host => 'localhost', extra => $verify);
is($ret, 0, 'sslmode=verify-full (host localhost, our CA) works') or diag($err);
is($out, '42', 'verify-full: query answered');

($ret, $out, $err) = tls_psql('SELECT 1', host => 'localhost',
	extra => "sslmode=verify-full sslrootcert=$cdir/otherca.crt");
isnt($ret, 0, 'verify-full against another CA fails on the client');
like($err, qr/certificate verify failed/, 'verify-full: client reports the bad certificate');

($ret, $out) = tls_psql('SELECT 7', extra => 'sslmode=disable');
is($out, '7', 'sslmode=disable still served in the clear');

($ret, $out) = tls_psql(q{SELECT setting FROM pg_settings WHERE name = 'ssl'});
is($out, 'on', 'server has ssl = on');

# ---------------------------------------------------------------------
# hostssl / hostnossl and client certificates
# ---------------------------------------------------------------------
($ret, $out, $err) = tls_psql('SELECT current_user', user => 'sslonly',
	extra => "$require password=tls_secret");
is($out, 'sslonly', 'hostssl scram-sha-256: SCRAM over TLS');
($ret, $out, $err) = tls_psql('SELECT current_user', user => 'sslonly',
	extra => "$require password=tls_secret channel_binding=require");
is($out, 'sslonly', 'SCRAM-SHA-256-PLUS: channel_binding=require over TLS') or diag($err);
($ret, $out, $err) = tls_psql('SELECT 1', user => 'sslonly',
	extra => "$require password=wrong channel_binding=require");
like($err, qr/password authentication failed for user "sslonly"/,
	'SCRAM-SHA-256-PLUS: wrong password refused');
($ret, $out, $err) = tls_psql('SELECT 1', user => 'sslonly',
	extra => 'sslmode=disable password=tls_secret');
isnt($ret, 0, 'hostnossl reject: the same role without TLS refused');
like($err, qr/pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "sslonly", database "app", no encryption/,
	'hostnossl reject: core\'s message');
($ret, $out, $err) = tls_psql('SELECT 1', user => 'sslonly',
	extra => "$require password=wrong");
like($err, qr/password authentication failed for user "sslonly"/, 'SCRAM over TLS: wrong password refused');

($ret, $out) = tls_psql('SELECT current_user', user => 'nossl', extra => 'sslmode=disable');
is($out, 'nossl', 'hostnossl trust: served without TLS');
($ret, $out, $err) = tls_psql('SELECT 1', user => 'nossl');
isnt($ret, 0, 'hostnossl: a TLS client does not match');
like($err, qr/no pg_hba\.conf entry for host "127\.0\.0\.1", user "nossl", database "app", SSL encryption/,
	'hostnossl: core\'s message naming SSL encryption');

my $cert = "sslcert=$cdir/certuser.crt sslkey=$cdir/certuser.key";
($ret, $out, $err) = tls_psql('SELECT current_user', user => 'certuser',
	extra => "$require $cert");
is($out, 'certuser', 'cert method: certificate with CN = user name accepted') or diag($err);
($ret, $out, $err) = tls_psql('SELECT 1', user => 'certuser');
isnt($ret, 0, 'cert method: no certificate refused');
like($err, qr/connection requires a valid client certificate/, 'cert method: core\'s message');
($ret, $out, $err) = tls_psql('SELECT 1', user => 'certuser',
	extra => "$require sslcert=$cdir/stranger.crt sslkey=$cdir/stranger.key");
isnt($ret, 0, 'a certificate of another CA fails the handshake');

($ret, $out, $err) = tls_psql('SELECT current_user', user => 'fulluser',
	extra => "$require sslcert=$cdir/fulluser.crt sslkey=$cdir/fulluser.key");
is($out, 'fulluser', 'clientcert=verify-full: matching CN accepted') or diag($err);
($ret, $out, $err) = tls_psql('SELECT 1', user => 'fulluser', extra => "$require $cert");
isnt($ret, 0, 'clientcert=verify-full: CN of another user refused');
like($err, qr/certificate authentication failed for user "fulluser"/,
	'clientcert=verify-full: message names the user');
($ret, $out) = tls_psql('SELECT current_user', user => 'causer', extra => "$require $cert");
is($out, 'causer', 'clientcert=verify-ca: any certificate of our CA accepted');
($ret, $out, $err) = tls_psql('SELECT 1', user => 'causer');
like($err, qr/connection requires a valid client certificate/,
	'clientcert=verify-ca: no certificate refused');

# ---------------------------------------------------------------------
# TLS sessions across transaction switches, next to plain sessions
# ---------------------------------------------------------------------
my @s;
push @s, $node->pool_bg_psql('app', extra => $require) for 1 .. 3;
push @s, $node->pool_bg_psql('app', extra => 'sslmode=disable') for 1 .. 3;
for my $i (0 .. $#s)
{
	bgq($s[$i], "SET application_name = 'sess$i'");
}
my $ok = 1;
for my $round (1 .. 20)
{
	for my $i (0 .. $#s)
	{
		my $got = bgq($s[$i],
			"BEGIN; SELECT current_setting('application_name') || ':' || $round || ':' || length(repeat('y', 20000 + $round)); COMMIT;");
		my $want = "sess$i:$round:" . (20000 + $round);
		if ($got ne $want)
		{
			$ok = 0;
			diag("session $i round $round: got '$got', want '$want'");
		}
	}
}
ok($ok, '3 TLS and 3 plain sessions on 2 executors: 20 rounds of transactions each, private settings');
my %pids;
$pids{ bgq($_, 'SELECT pg_backend_pid()') }++ for @s;
ok(scalar(keys %pids) <= 2, 'the six sessions share the two executors');

# a TLS session moved to the other executor when its neighbour pins
{
	my %by;
	push @{ $by{ bgq($_, 'SELECT pg_backend_pid()') } }, $_ for @s[0 .. 2];
	my ($pid) = grep { @{ $by{$_} } >= 2 } keys %by;
  SKIP:
	{
		skip 'no two TLS sessions on one executor', 4 unless defined $pid;
		my ($A, $B) = @{ $by{$pid} };
		bgq($B, q{SET work_mem = '5MB'});
		bgq($A, 'CREATE TEMP TABLE pin_me (x int)');
		ok( wait_until(sub { bgq($B, 'SELECT pg_backend_pid()') ne $pid }, 20),
			'TLS session B moved off the executor A pinned');
		is(bgq($B, q{SELECT current_setting('work_mem')}), '5MB', 'moved TLS session keeps its setting');
		is(bgq($B, q{SELECT length(repeat('z', 300000))}), '300000',
			'moved TLS session: a 300kB result after the move');
		is(bgq($A, 'SELECT count(*) FROM pin_me'), '0', 'pinned TLS session keeps its temp table');
		bgq($A, 'DROP TABLE pin_me');
	}
}
$_->quit for @s;

# ---------------------------------------------------------------------
# Volume through the relay and the writer
# ---------------------------------------------------------------------
my $copy_in = join('', map { "$_\t" . ('c' x 200) . "\n" } 1 .. 20000);
($ret, $out, $err) = $node->pool_psql('app',
	"COPY big FROM STDIN;\n$copy_in\\.\nSELECT count(*), sum(length(t)) FROM big;",
	extra => $require);
is($out, '20000|4000000', 'COPY FROM STDIN of 4 MB over TLS') or diag($err);
($ret, $out) = tls_psql('SELECT md5(string_agg(t, \'\' ORDER BY id)) = (SELECT md5(string_agg(t, \'\' ORDER BY id)) FROM big) FROM big');
is($out, 't', 'a 4 MB aggregate over TLS');
($ret, $out) = tls_psql('COPY big TO STDOUT');
is(length($out), length($copy_in) - 1, 'COPY TO STDOUT of 4 MB over TLS arrives whole');

# ---------------------------------------------------------------------
# Cancel, timeouts, a client killed mid-transaction
# ---------------------------------------------------------------------
{
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->pool_connstr('app', extra => $require),
		  '-c', 'SELECT pg_sleep(60)' ],
		'<', \$in, '>', \$o, '2>', \$e);
	ok( wait_until(sub {
				$node->safe_psql('postgres',
					q{SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'}) eq '1';
			}, 20),
		'TLS session runs pg_sleep(60)');
	$h->signal('INT');
	$h->finish;
	like($e, qr/canceling statement due to user request/, 'psql Ctrl-C cancels the TLS session\'s statement');
}

($ret, $out, $err) = tls_psql("SET statement_timeout = '200ms'; SELECT pg_sleep(5); SELECT 'after'",
	on_error_stop => 0);
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout over TLS');
is($out, 'after', 'the TLS session goes on after the timeout');

{
	my ($in, $o, $e) = ("BEGIN;\nLOCK TABLE lockme IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n", '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->pool_connstr('app', extra => $require) ],
		'<', \$in, '>', \$o, '2>', \$e);
	ok(wait_until(sub { $h->pump_nb; $o =~ /locked/ }, 20), 'TLS client holds a lock in an open transaction');
	$h->kill_kill;
	($ret, $out) = tls_psql("SET lock_timeout = '20s'; BEGIN; LOCK TABLE lockme; COMMIT; SELECT 'got it'");
	is($out, 'got it', 'lock of the killed TLS client released');
}

# ---------------------------------------------------------------------
# pgbench over TLS
# ---------------------------------------------------------------------
$node->command_ok([ 'pgbench', '-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', $mp, '-U', 'app', 'app' ],
	'pgbench -i');
{
	local $ENV{PGSSLMODE} = 'require';
	my ($o, $e);
	IPC::Run::run(
		[ 'pgbench', '-n', '-S', '-c', '20', '-j', '2', '-T', '3',
		  '-h', '127.0.0.1', '-p', $pp, '-U', 'app', 'app' ],
		'>', \$o, '2>', \$e);
	like($o, qr/number of failed transactions: 0 /, 'pgbench -S, 20 TLS clients: no failure');
	like($o, qr/tps = [1-9]/, 'pgbench -S over TLS makes progress');
	IPC::Run::run(
		[ 'pgbench', '-n', '-c', '8', '-j', '2', '-T', '3',
		  '-h', '127.0.0.1', '-p', $pp, '-U', 'app', 'app' ],
		'>', \$o, '2>', \$e);
	like($o, qr/number of failed transactions: 0 /, 'pgbench TPC-B, 8 TLS clients: no failure');
	IPC::Run::run(
		[ 'pgbench', '-n', '-S', '-C', '-c', '4', '-j', '2', '-t', '50',
		  '-h', '127.0.0.1', '-p', $pp, '-U', 'app', 'app' ],
		'>', \$o, '2>', \$e);
	like($o, qr/number of transactions actually processed: 200/, 'pgbench -C: 200 TLS connections, one transaction each');
}

# ---------------------------------------------------------------------
# Refused handshakes
# ---------------------------------------------------------------------
# TLS 1.2 (AES-GCM from ssl_ciphers): the same split by direction
my $tls12 = "$require ssl_max_protocol_version=TLSv1.2";
($ret, $out, $err) = tls_psql("SELECT length(repeat('q', 500000)); \\conninfo", extra => $tls12);
like($out, qr/^500000\n.*SSL connection \(protocol: TLSv1\.2, cipher: [A-Z0-9-]*GCM/s,
	'TLSv1.2 client: AES-GCM session, a 500 kB result') or diag($err);
($ret, $out) = tls_psql('COPY big TO STDOUT', extra => $tls12);
is(length($out), length($copy_in) - 1, 'TLSv1.2: COPY TO STDOUT of 4 MB arrives whole');
($ret, $out, $err) = $node->pool_psql('app',
	"CREATE TEMP TABLE big12 (LIKE big);\nCOPY big12 FROM STDIN;\n$copy_in\\.\nSELECT count(*) FROM big12;",
	extra => $tls12);
is($out, '20000', 'TLSv1.2: COPY FROM STDIN of 4 MB') or diag($err);
{
	my $t12 = $node->pool_bg_psql('app', extra => $tls12);
	my $t13 = $node->pool_bg_psql('app', extra => $require);
	my $pl = $node->pool_bg_psql('app', extra => 'sslmode=disable');
	bgq($t12, q{SET application_name = 't12'});
	bgq($t13, q{SET application_name = 't13'});
	my $good = 1;
	for my $round (1 .. 15)
	{
		for my $c ([ $t12, 't12' ], [ $t13, 't13' ], [ $pl, '' ])
		{
			my $got = bgq($c->[0], "SELECT current_setting('application_name') || ':' || $round");
			$good = 0 if $c->[1] ne '' && $got ne "$c->[1]:$round";
		}
	}
	ok($good, 'TLSv1.2, TLSv1.3 and plain sessions take turns on the pool, 15 rounds');
	ok( wait_until(sub {
				$node->safe_psql('postgres',
					'SELECT tls_sessions, tls_handshakes > 10 FROM pool_listener_stats()') eq '2|t';
			}, 10),
		'pool_listener_stats(): two TLS sessions relayed now, handshakes counted');
	$_->quit for ($t12, $t13, $pl);
}

# each cipher the writer seals, through openssl s_client speaking the
# protocol: startup, a query answered in several records, Terminate
sub raw_tls_query
{
	my (@opts) = @_;
	my $startup = pack('N', 196608) . "user\0app\0database\0app\0\0";
	my $sql = "SELECT 'cipher ok ' || repeat('x', 40000)\0";
	my $in = pack('N', 4 + length $startup) . $startup
	  . 'Q' . pack('N', 4 + length $sql) . $sql . 'X' . pack('N', 4);
	my ($o, $e) = ('', '');
	IPC::Run::run(
		[ 'openssl', 's_client', '-quiet', '-ign_eof', '-starttls', 'postgres',
		  '-connect', "127.0.0.1:$pp", @opts ],
		'<', \$in, '>', \$o, '2>', \$e, IPC::Run::timeout(20));
	return ($o =~ /cipher ok (x+)/ && length($1) == 40000) ? 1 : 0;
}
for my $c (
	[ 'TLSv1.3 TLS_AES_128_GCM_SHA256', '-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256' ],
	[ 'TLSv1.3 TLS_AES_256_GCM_SHA384', '-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384' ],
	[ 'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256', '-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256' ],
	[ 'TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256', '-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256' ],
	[ 'TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384', '-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384' ],
	[ 'TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305', '-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305' ])
{
	my ($name, @opts) = @$c;
	ok(raw_tls_query(@opts), "$name: a 40 kB answer decrypts");
}

($ret, $out, $err) = tls_psql('SELECT 1', extra => "$require ssl_max_protocol_version=TLSv1.1");
isnt($ret, 0, 'a client that stops at TLSv1.1 is refused');
{
	# a TLSv1.2 client that offers only a CBC cipher: no shared cipher
	my ($o, $e);
	IPC::Run::run(
		[ 'openssl', 's_client', '-starttls', 'postgres', '-connect', "127.0.0.1:$pp",
		  '-tls1_2', '-cipher', 'AES128-SHA256' ],
		'<', \'', '>', \$o, '2>', \$e, IPC::Run::timeout(20));
	unlike($o // '', qr/Cipher is AES128-SHA256/, 'a CBC-only TLSv1.2 client gets no session');
	ok(wait_until(sub { slurp_file($node->logfile) =~ /The pool port accepts TLSv1\.2 and TLSv1\.3 with AES-GCM or ChaCha20-Poly1305/ }, 10),
		'the log says why');
}

{
	my $c = PoolTest::Raw->new(port => $pp);
	$c->send_bytes(pack('N N', 8, 80877103));
	is($c->read_byte, 'S', "SSLRequest answered 'S'");
	$c->send_bytes("\x16\x03\x01\x00\x05hello, this is not a ClientHello");
	ok($c->wait_eof(10), 'a garbage handshake closes the connection');
	$c->close;

	# a client that stalls in the handshake is dropped at authentication_timeout
	my $stall = PoolTest::Raw->new(port => $pp);
	$stall->send_bytes(pack('N N', 8, 80877103));
	is($stall->read_byte, 'S', 'stalling client: SSLRequest answered');
	($ret, $out) = tls_psql('SELECT 5');
	is($out, '5', 'a stalled handshake delays nobody');
	ok($stall->wait_eof(15), 'the stalled handshake is dropped at authentication_timeout');
	$stall->close;
}

# ---------------------------------------------------------------------
# TLS hygiene: nothing in plaintext inside a TLS session, close_notify at
# its end, and an end before the sending key's record limit.  openssl
# s_client -msg shows the records it receives ("<<< ... close_notify"); a
# plaintext byte in the stream would be a TLS error at the client.
# ---------------------------------------------------------------------
my $close_notify = qr/<<< TLS 1\.[23], Alert \[length 0002\], warning close_notify/;
my $tls_error = qr/wrong version number|record layer failure|bad record mac|decrypt|unexpected message|packet length too long/i;

sub s_client
{
	my ($in, @opts) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run(
		[ 'openssl', 's_client', '-quiet', '-msg', '-ign_eof', '-starttls', 'postgres',
		  '-connect', "127.0.0.1:$pp", @opts ],
		'<', \$in, '>', \$o, '2>', \$e, IPC::Run::timeout(30));
	return $o . $e;
}

{
	# as core: once TLS is on, a GSSENCRequest is an unsupported protocol
	# version, refused inside TLS (it was answered with a plaintext 'N')
	my $o = s_client(pack('N N', 8, 80877104));
	like($o, qr/C0A000\0Munsupported frontend protocol 1234\.5680/,
		'GSSENCRequest inside TLS: FATAL 0A000, sealed');
	like($o, $close_notify, 'GSSENCRequest inside TLS: then close_notify');
	unlike($o, $tls_error, 'GSSENCRequest inside TLS: no TLS error at the client');

	# a pooled session that ends (Terminate) ends its TLS session with
	# close_notify, after the answer, in both protocol versions (one record:
	# -msg writes its notes between records)
	my $startup = pack('N', 196608) . "user\0app\0database\0app\0\0";
	my $sql = "SELECT 'goodbye ' || repeat('y', 2000)\0";
	my $in = pack('N', 4 + length $startup) . $startup
	  . 'Q' . pack('N', 4 + length $sql) . $sql . 'X' . pack('N', 4);
	for my $v ('-tls1_3', '-tls1_2')
	{
		$o = s_client($in, $v);
		like($o, qr/goodbye y{2000}/, "$v: the answer decrypts");
		like($o, $close_notify, "$v: the session's end sends close_notify");
		unlike($o, $tls_error, "$v: no TLS error at the client");
	}

	# a refused client gets its FATAL and close_notify from the listener
	my $bad = pack('N', 196608) . "user\0nosuchrole\0database\0app\0\0";
	$o = s_client(pack('N', 4 + length $bad) . $bad);
	like($o, qr/C28000\0/, 'refused over TLS: FATAL 28000');
	like($o, $close_notify, 'refused over TLS: then close_notify');

	# the listener ending while it holds a TLS client: its message goes
	# sealed, with close_notify (it was written in plaintext)
	my ($hin, $ho, $he) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'openssl', 's_client', '-quiet', '-msg', '-ign_eof', '-starttls', 'postgres',
		  '-connect', "127.0.0.1:$pp" ],
		'<', \$hin, '>', \$ho, '2>', \$he, IPC::Run::timeout(30));
	ok(wait_until(sub { $h->pump_nb; "$ho$he" =~ />>> TLS 1\.3, Handshake \[length [0-9a-f]+\], Finished/ }, 10, 0.05),
		'a TLS client waits in the listener, its handshake done');
	usleep(300_000);
	my $lpid = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($lpid)");
	eval { $h->finish; };
	like("$ho$he", qr/C57P01\0Mterminating connection due to administrator command/,
		'listener ending: its FATAL goes sealed');
	like("$ho$he", $close_notify, 'listener ending: then close_notify');
	unlike("$ho$he", $tls_error, 'listener ending: no TLS error at the client');
	ok( wait_until(sub {
				my ($r, $out) = tls_psql('SELECT 12');
				$out eq '12';
			}, 30),
		'the restarted listener serves TLS');
}

# an executor ending while it holds an idle TLS session: its FATAL goes
# sealed, then close_notify
{
	my $startup = pack('N', 196608) . "user\0app\0database\0app\0\0";
	my ($hin, $ho, $he) = (pack('N', 4 + length $startup) . $startup, '', '');
	my $h = IPC::Run::start(
		[ 'openssl', 's_client', '-quiet', '-msg', '-ign_eof', '-starttls', 'postgres',
		  '-connect', "127.0.0.1:$pp" ],
		'<', \$hin, '>', \$ho, '2>', \$he, IPC::Run::timeout(30));
	ok(wait_until(sub { $h->pump_nb; $ho =~ /Z\0\0\0\x05I/ }, 10, 0.05),
		'executor ending: a TLS session idles on it');
	$node->safe_psql('postgres',
		q{SELECT pg_terminate_backend(pid) FROM pool_status() WHERE database = 'app' AND role = 'app'});
	eval { $h->finish; };
	like("$ho$he", qr/C57P01\0Mterminating connection due to administrator command/,
		'executor ending: its FATAL goes sealed');
	like("$ho$he", $close_notify, 'executor ending: then close_notify');
	unlike("$ho$he", $tls_error, 'executor ending: no TLS error at the client');
}

# ---------------------------------------------------------------------
# Bounded, seeded fuzz through TLS: after a valid startup, random and
# mutated protocol messages, and streams cut off mid-message, each over
# its own TLS connection (openssl s_client).  The relay and the executor
# must end each such session alone: no crash, nothing left behind.
# ---------------------------------------------------------------------
{
	my $seed = $ENV{BP_TLS_FUZZ_SEED} // 20261128;
	my $n = $ENV{BP_TLS_FUZZ_N} // 150;
	srand($seed);
	note("TLS fuzz seed $seed (BP_TLS_FUZZ_SEED), $n streams (BP_TLS_FUZZ_N)");
	my $startup = pack('N', 196608) . "user\0app\0database\0app\0\0";
	$startup = pack('N', 4 + length $startup) . $startup;
	my @valid = (
		'Q' . pack('N', 13) . "SELECT 1\0",
		'P' . pack('N', 16) . "\0SELECT 2\0" . pack('n', 0),
		'B' . pack('N', 12) . "\0\0" . pack('nnn', 0, 0, 0),
		'E' . pack('N', 9) . "\0" . pack('N', 0),
		'S' . pack('N', 4),
		'Q' . pack('N', 25) . "BEGIN; SELECT 1/0;\0\0\0\0\0\0",
		'd' . pack('N', 8) . "junk",
		'H' . pack('N', 4));
	my $started = 0;
	for my $i (1 .. $n)
	{
		my $stream = $startup;
		my $k = int(rand(6)) + 1;
		for (1 .. $k)
		{
			my $m = $valid[ int(rand(@valid)) ];
			my $how = int(rand(5));
			if ($how == 0)
			{
				substr($m, int(rand(length $m)), 1) = chr(int(rand(256)));
			}
			elsif ($how == 1)
			{
				$m = chr(int(rand(256))) . pack('N', int(rand(40)))
				  . join('', map { chr(int(rand(256))) } 1 .. int(rand(40)));
			}
			elsif ($how == 2)
			{
				$m = substr($m, 0, 1) . pack('N', 0x7fffffff) . 'x' x 16;
			}
			$stream .= $m;
		}
		# a third of the streams stop mid-message; the rest end with Terminate
		if (rand() < 0.33)
		{
			$stream = substr($stream, 0, length($startup) + int(rand(length($stream) - length($startup) + 1)));
		}
		else
		{
			$stream .= 'X' . pack('N', 4);
		}
		# send it all, wait for the answer to the startup, then hang up
		my ($in, $o, $e) = ($stream, '', '');
		my $h = IPC::Run::start(
			[ 'openssl', 's_client', '-quiet', '-no_ign_eof', '-starttls', 'postgres',
			  '-connect', "127.0.0.1:$pp" ],
			'<', \$in, '>', \$o, '2>', \$e, IPC::Run::timeout(20));
		wait_until(sub { $h->pump_nb; $in eq '' && $o =~ /R\0\0\0\x08\0\0\0\0/ }, 5, 0.01);
		$started++ if $o =~ /R\0\0\0\x08\0\0\0\0/;	# AuthenticationOk
		$h->finish;
	}
	cmp_ok($started, '>=', $n * 0.9, 'TLS fuzz: the streams logged in');
	ok( wait_until(sub {
				$node->safe_psql('postgres',
					q{SELECT tls_sessions FROM pool_listener_stats()}) eq '0';
			}, 30),
		'TLS fuzz: every relay closed');
	ok( wait_until(sub {
				$node->safe_psql('postgres',
					q{SELECT coalesce(sum(sessions), 0) FROM pool_status() WHERE database = 'app' AND role = 'app'}) eq '0';
			}, 30),
		'TLS fuzz: no session left on the executors');
	is($node->safe_psql('app', q{SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND relation = 'lockme'::regclass}),
		'0', 'TLS fuzz: no lock left behind');
	($ret, $out) = tls_psql('SELECT 11');
	is($out, '11', 'TLS fuzz: the pool port still serves TLS');
	check_no_crash($node, 'after the TLS fuzz');
}

# ---------------------------------------------------------------------
# The record limit (RFC 8446 section 5.5): builtin_pool.tls_record_limit
# brings it within reach.  A session about to pass it gets a FATAL and
# close_notify on the records kept for them, and ends.
# ---------------------------------------------------------------------
{
	$node->append_conf('postgresql.conf', "builtin_pool.tls_record_limit = 40\n");
	$node->reload;
	my $startup = pack('N', 196608) . "user\0app\0database\0app\0\0";
	my $small = "SELECT 'small ok'\0";
	my $big = "SELECT 'big ' || repeat('z', 1000000)\0";
	my $in_small = pack('N', 4 + length $startup) . $startup
	  . 'Q' . pack('N', 4 + length $small) . $small . 'X' . pack('N', 4);
	my $in_big = pack('N', 4 + length $startup) . $startup
	  . 'Q' . pack('N', 4 + length $big) . $big . 'X' . pack('N', 4);
	my $o;
	ok( wait_until(sub {
				$o = s_client($in_big);
				$o =~ /record limit/;
			}, 20),
		'record limit: a 1 MB answer (about 62 records) past a limit of 40 is not sent');
	unlike($o, qr/big (?:z{50000}){20}/, 'record limit: the answer did not go out');
	like($o, qr/C08006\0Mterminating connection because its TLS session reached its record limit/,
		'record limit: FATAL 08006, sealed');
	like($o, $close_notify, 'record limit: then close_notify');
	unlike($o, $tls_error, 'record limit: no TLS error at the client');
	$o = s_client($in_small);
	like($o, qr/small ok/, 'record limit: a session within it is served');
	ok(wait_until(sub { slurp_file($node->logfile) =~ /terminating a pooled TLS session at its record limit/ }, 10),
		'record limit: logged');
	$node->append_conf('postgresql.conf', "builtin_pool.tls_record_limit = 0\n");
	$node->reload;
}

# ---------------------------------------------------------------------
# ssl = off by reload
# ---------------------------------------------------------------------
$node->append_conf('postgresql.conf', "ssl = off\n");
$node->reload;
ok( wait_until(sub {
			my ($r, $o, $e) = tls_psql('SELECT 1');
			$e =~ /server does not support SSL/;
		}, 20),
	'after ssl = off and a reload, the pool port answers N');
($ret, $out) = tls_psql('SELECT 9', extra => 'sslmode=prefer');
is($out, '9', 'sslmode=prefer then connects in the clear');

pool_serves_ok($node, 'pool port serves at the end');
check_no_crash($node);
done_testing();
