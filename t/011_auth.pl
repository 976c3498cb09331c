
# Copyright (c) builtin_pool authors
#
# Password authentication on the pool port, as pg_hba.conf asks: password,
# md5 (md5-stored secret) and scram-sha-256, an md5 line falling back to
# SCRAM for a SCRAM-stored secret, wrong passwords, unknown roles and expired
# passwords refused with core's 28P01 (and the same words as the main port),
# the checks core makes after authentication, malformed answers (08P01),
# psql with PGPASSWORD, libpq via connect_ok/connect_fails, pgbench with
# SCRAM, 50 concurrent SCRAM logins, and a client stalled mid-handshake that
# delays nobody and is dropped at authentication_timeout.  No crash, and no
# crypto context leaked by the exchange, in the server log.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(hmac_sha256 sha256);
use IPC::Run;
use MIME::Base64 qw(encode_base64 decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = pool_node('auth', size => 4, max_worker_processes => 40,
	conf => "authentication_timeout = '2s'\nmax_connections = 100\n");
my $pp = $node->pool_port;
my $mp = $node->port;

# Password methods over TCP; "local" (what the test framework uses on the
# main port) stays trust.  Lines by role name, so unknown roles match too.
open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $fh <<'EOF';
local all all trust
host all pw_user 127.0.0.1/32 password
host all pwmd5_user 127.0.0.1/32 password
host all md5_user 127.0.0.1/32 md5
host all md5scram_user 127.0.0.1/32 md5
host all scram_user 127.0.0.1/32 scram-sha-256
host all scrammd5_user 127.0.0.1/32 scram-sha-256
host all expired_user 127.0.0.1/32 scram-sha-256
host all expired_pw 127.0.0.1/32 password
host all nologin_user 127.0.0.1/32 scram-sha-256
host all ghost_pw 127.0.0.1/32 password
host all ghost_md5 127.0.0.1/32 md5
host all ghost_scram 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
close $fh;

$node->start;
setup_app($node);
$node->safe_psql('postgres', q{
	CREATE ROLE pw_user LOGIN PASSWORD 'pw_secret';
	CREATE ROLE md5scram_user LOGIN PASSWORD 'ms_secret';
	CREATE ROLE scram_user LOGIN PASSWORD 'scram_secret';
	CREATE ROLE expired_user LOGIN PASSWORD 'exp_secret' VALID UNTIL '2000-01-01';
	CREATE ROLE expired_pw LOGIN PASSWORD 'exp_secret' VALID UNTIL '2000-01-01';
	CREATE ROLE nologin_user NOLOGIN PASSWORD 'nl_secret';
	SET password_encryption = 'md5';
	CREATE ROLE md5_user LOGIN PASSWORD 'md5_secret';
	CREATE ROLE pwmd5_user LOGIN PASSWORD 'pwmd5_secret';
	CREATE ROLE scrammd5_user LOGIN PASSWORD 'sm_secret';
	RESET password_encryption;
	CREATE DATABASE scramdb OWNER scram_user;
});
is( $node->safe_psql('postgres',
		q{SELECT string_agg(rolname || ':' || left(rolpassword, 3), ',' ORDER BY rolname)
		  FROM pg_authid WHERE rolname IN ('md5_user', 'scram_user')}),
	'md5_user:md5,scram_user:SCR',
	'secrets stored as md5 and SCRAM');

ok( wait_until(
		sub {
			my ($ret, $out) = $node->pool_psql('app', 'SELECT 1', timeout => 10);
			return $ret == 0 && $out eq '1';
		},
		30),
	'pool port serves (trust)');

###########################################################################
# raw protocol helpers
###########################################################################

# auth_start(USER [, DB]): a raw client that sent its startup packet, and
# the first answer: (client, type, auth code, rest of the body).
sub auth_start
{
	my ($user, $db, $port) = @_;
	my $c = PoolTest::Raw->new(port => $port // $pp);
	$c->send_startup(user => $user, database => $db // 'app');
	my ($type, $body) = $c->read_msg(10);
	$type //= '';
	my ($code, $rest) = (undef, undef);
	($code, $rest) = (unpack('N', $body), substr($body, 4))
	  if $type eq 'R' && length($body) >= 4;
	return ($c, $type, $code, $rest, $body);
}

# finish(C): reads until ReadyForQuery / ErrorResponse / EOF; closes C.
sub finish
{
	my ($c) = @_;
	my $r = $c->read_startup_response(10);
	$c->close;
	return $r;
}

sub pmsg { return PoolTest::Raw::msg('p', $_[0]); }

# SCRAM-SHA-256 client side (RFC 5802/7677), no channel binding.
sub scram_first
{
	my $nonce = encode_base64(join('', map { chr(int(rand(256))) } 1 .. 18), '');
	my $bare = "n=,r=$nonce";
	return ($bare, pmsg("SCRAM-SHA-256\0" . pack('N', length("n,,$bare")) . "n,,$bare"));
}

sub scram_final
{
	my ($password, $bare, $server_first) = @_;
	my %a = map { split /=/, $_, 2 } split /,/, $server_first;
	my $salt = decode_base64($a{s});
	my $u = hmac_sha256($salt . pack('N', 1), $password);
	my $salted = $u;
	for (2 .. $a{i})
	{
		$u = hmac_sha256($u, $password);
		$salted ^= $u;
	}
	my $client_key = hmac_sha256('Client Key', $salted);
	my $without_proof = "c=biws,r=$a{r}";
	my $sig = hmac_sha256("$bare,$server_first,$without_proof", sha256($client_key));
	return pmsg("$without_proof,p=" . encode_base64($client_key ^ $sig, ''));
}

# login(USER, PASSWORD [, DB]): a whole raw login answering whatever the
# server asks (3, 5 or 10); returns the read_startup_response hash, plus
# first => the first auth code.
sub login
{
	my ($user, $password, $db) = @_;
	my ($c, $type, $code, $rest, $body) = auth_start($user, $db);
	if ($type ne 'R')
	{
		my $r = { ok => 0, errors => [ $type eq 'E' ? PoolTest::Raw::parse_fields($body) : {} ],
			auth => [], types => $type };
		$c->close;
		return $r;
	}
	if ($code == 3)
	{
		$c->send_bytes(pmsg("$password\0"));
	}
	elsif ($code == 5)
	{
		$c->send_bytes(pmsg('md5' . md5_hex(md5_hex($password . $user) . $rest) . "\0"));
	}
	elsif ($code == 10)
	{
		my ($bare, $m) = scram_first();
		$c->send_bytes($m);
		my ($t2, $b2) = $c->read_msg(10);
		if (($t2 // '') ne 'R' || unpack('N', $b2) != 11)
		{
			my $r = { ok => 0, first => $code, auth => [], types => $t2 // '',
				errors => [ ($t2 // '') eq 'E' ? PoolTest::Raw::parse_fields($b2) : {} ] };
			$c->close;
			return $r;
		}
		$c->send_bytes(scram_final($password, $bare, substr($b2, 4)));
	}
	my $r = finish($c);
	$r->{first} = $code;
	return $r;
}

sub sqlstate { return PoolTest::Raw::sqlstate($_[0]); }
sub errmsg_of { return $_[0]{errors}[0]{M} // ''; }

# the log written since OFFSET
sub log_since
{
	my ($off) = @_;
	my $log = slurp_file($node->logfile);
	return substr($log, $off);
}

###########################################################################
# which request each line and secret give (core's choice)
###########################################################################
for my $t (
	[ 'pw_user', 3, 'password line' ],
	[ 'pwmd5_user', 3, 'password line, md5-stored secret' ],
	[ 'md5_user', 5, 'md5 line, md5-stored secret' ],
	[ 'md5scram_user', 10, 'md5 line, SCRAM-stored secret: SCRAM, as core' ],
	[ 'scram_user', 10, 'scram-sha-256 line' ],
	[ 'scrammd5_user', 10, 'scram-sha-256 line, md5-stored secret' ],
	[ 'ghost_pw', 3, 'password line, unknown role' ],
	[ 'ghost_md5', 10, 'md5 line, unknown role: SCRAM (password_encryption)' ],
	[ 'ghost_scram', 10, 'scram-sha-256 line, unknown role' ])
{
	my ($user, $want, $name) = @$t;
	my ($c, $type, $code, $rest) = auth_start($user);
	is("$type" . ($code // ''), "R$want", "$name: AuthenticationRequest $want");
	if ($want == 5)
	{
		is(length($rest // ''), 4, "$name: 4-byte salt");
	}
	if ($want == 10)
	{
		is($rest, "SCRAM-SHA-256\0\0", "$name: SCRAM-SHA-256 only (no TLS, no -PLUS)");
	}
	$c->close;
}

###########################################################################
# right passwords: raw logins, then libpq (connect_ok) on both ports
###########################################################################
for my $t (
	[ 'pw_user', 'pw_secret' ],
	[ 'pwmd5_user', 'pwmd5_secret' ],
	[ 'md5_user', 'md5_secret' ],
	[ 'md5scram_user', 'ms_secret' ],
	[ 'scram_user', 'scram_secret' ])
{
	my ($user, $pw) = @$t;
	my $r = login($user, $pw);
	ok($r->{ok}, "raw login $user") or diag(explain($r->{errors}));
	ok(grep({ $_ == 0 } @{ $r->{auth} }), "$user: AuthenticationOk");
	if ($r->{first} == 10)
	{
		is($r->{auth}[0], 12, "$user: SASLFinal before AuthenticationOk");
	}
	ok(defined $r->{pid} && $r->{pid} > 0, "$user: BackendKeyData from an executor");

	for my $port ($pp, $mp)
	{
		my $which = $port == $pp ? 'pool' : 'main';
		$node->connect_ok(
			"host=127.0.0.1 port=$port dbname=app user=$user password=$pw",
			"libpq $user on the $which port",
			sql => 'SELECT current_user',
			expected_stdout => qr/^\Q$user\E$/);
	}
}

###########################################################################
# failures: 28P01 with core's words; details in the server log only
###########################################################################
sub fails_like
{
	my ($user, $pw, $code, $msg_re, $log_re, $name, $db) = @_;
	my $off = -s $node->logfile;
	my $r = login($user, $pw, $db);
	ok(!$r->{ok}, "$name: refused");
	is(sqlstate($r), $code, "$name: $code");
	like(errmsg_of($r), $msg_re, "$name: message");
	is($r->{errors}[0]{D}, undef, "$name: no detail for the client");
	if ($log_re)
	{
		ok(wait_until(sub { log_since($off) =~ $log_re }, 5), "$name: server log detail")
		  or diag(log_since($off));
	}
	return $r;
}

my $pwfail = qr/^password authentication failed for user "[a-z0-9_]+"$/;
fails_like('pw_user', 'wrong', '28P01', $pwfail,
	qr/password authentication failed for user "pw_user"\n.*DETAIL:  Password does not match for user "pw_user".\n\s*Connection matched pg_hba.conf line 2: "host all pw_user 127.0.0.1\/32 password"/,
	'password, wrong');
fails_like('md5_user', 'wrong', '28P01', $pwfail,
	qr/DETAIL:  Password does not match for user "md5_user"/, 'md5, wrong');
fails_like('md5scram_user', 'wrong', '28P01', $pwfail,
	qr/password authentication failed for user "md5scram_user"/, 'md5 line with SCRAM secret, wrong');
fails_like('scram_user', 'wrong', '28P01', $pwfail,
	qr/password authentication failed for user "scram_user"/, 'scram, wrong');
fails_like('scrammd5_user', 'sm_secret', '28P01', $pwfail,
	qr/User "scrammd5_user" does not have a valid SCRAM secret/,
	'scram line, md5-stored secret (as core: fails)');
for my $g ([ 'ghost_pw', 'password' ], [ 'ghost_md5', 'md5' ], [ 'ghost_scram', 'scram' ])
{
	fails_like($g->[0], 'whatever', '28P01', $pwfail,
		qr/DETAIL:  Role "$g->[0]" does not exist/, "unknown role, $g->[1] line");
}
fails_like('expired_user', 'exp_secret', '28P01', $pwfail,
	qr/DETAIL:  User "expired_user" has an expired password/, 'VALID UNTIL in the past (scram)');
fails_like('expired_pw', 'exp_secret', '28P01', $pwfail,
	qr/DETAIL:  User "expired_pw" has an expired password/, 'VALID UNTIL in the past (password)');

# the checks core makes after authentication, in its order
fails_like('nologin_user', 'nl_secret', '28000', qr/^role "nologin_user" is not permitted to log in$/,
	undef, 'right password, NOLOGIN role');
fails_like('scram_user', 'wrong', '28P01', $pwfail, undef,
	'wrong password, unknown database: password first', 'nosuchdb');
fails_like('scram_user', 'scram_secret', '3D000', qr/^database "nosuchdb" does not exist$/,
	undef, 'right password, unknown database', 'nosuchdb');

# libpq sees the very words of the main port
for my $t (
	[ 'pw_user', 'wrong' ],
	[ 'md5_user', 'wrong' ],
	[ 'scram_user', 'wrong' ],
	[ 'ghost_scram', 'x' ],
	[ 'expired_user', 'exp_secret' ])
{
	my ($user, $pw) = @$t;
	for my $port ($pp, $mp)
	{
		my $which = $port == $pp ? 'pool' : 'main';
		$node->connect_fails(
			"host=127.0.0.1 port=$port dbname=app user=$user password=$pw",
			"libpq $user/$pw refused on the $which port",
			expected_stderr => qr/FATAL:  password authentication failed for user "\Q$user\E"/);
	}
}

###########################################################################
# psql with PGPASSWORD
###########################################################################
{
	local $ENV{PGPASSWORD} = 'scram_secret';
	my ($ret, $out, $err) = $node->pool_psql('app', 'SELECT current_user', user => 'scram_user');
	is($ret, 0, 'psql, PGPASSWORD right: exit 0');
	is($out, 'scram_user', 'psql, PGPASSWORD right: logged in as scram_user');
	local $ENV{PGPASSWORD} = 'md5_secret';
	($ret, $out, $err) = $node->pool_psql('app', 'SELECT current_user', user => 'md5_user');
	is($out, 'md5_user', 'psql, PGPASSWORD right: md5');
	local $ENV{PGPASSWORD} = 'wrong';
	($ret, $out, $err) = $node->pool_psql('app', 'SELECT 1', user => 'scram_user');
	isnt($ret, 0, 'psql, PGPASSWORD wrong: fails');
	like($err, qr/password authentication failed for user "scram_user"/, 'psql, PGPASSWORD wrong: message');
}
{
	# no password at all: libpq hangs up when asked; dropped quietly
	delete local $ENV{PGPASSWORD};
	my $off = -s $node->logfile;
	my ($ret, $out, $err) = $node->pool_psql('app', 'SELECT 1', user => 'scram_user',
		extra_params => ['-w']);
	isnt($ret, 0, 'psql -w without a password fails');
	like($err, qr/no password supplied/, 'psql -w: no password supplied');
	usleep(200_000);
	unlike(log_since($off), qr/scram_user|incomplete message/,
		'a client hanging up when asked for a password leaves no log entry');
}

###########################################################################
# malformed answers: 08P01, as core
###########################################################################
sub bad_answer
{
	my ($user, $bytes, $code, $msg_re, $name, $scram_first) = @_;
	my ($c, $type, $acode) = auth_start($user);
	if ($scram_first)
	{
		my ($bare, $m) = scram_first();
		$c->send_bytes($m);
		my ($t2) = $c->read_msg(10);
		is($t2 // '', 'R', "$name: SASLContinue first");
	}
	$c->send_bytes($bytes);
	my $r = finish($c);
	is(sqlstate($r), $code, "$name: $code");
	like(errmsg_of($r), $msg_re, "$name: message");
	return;
}

bad_answer('pw_user', PoolTest::Raw::query_msg('SELECT 1'), '08P01',
	qr/^expected password response, got message type 81$/, 'password: Query instead');
bad_answer('md5_user', "X\0\0\0\4", '08P01',
	qr/^expected password response, got message type 88$/, 'md5: Terminate instead');
bad_answer('scram_user', PoolTest::Raw::query_msg('SELECT 1'), '08P01',
	qr/^expected SASL response, got message type 81$/, 'scram: Query instead');
bad_answer('pw_user', pmsg("abc\0def\0"), '08P01',
	qr/^invalid password packet size$/, 'password: two strings');
bad_answer('pw_user', pmsg("abc"), '08P01',
	qr/^invalid password packet size$/, 'password: no terminator');
bad_answer('pw_user', pmsg("\0"), '28P01',
	qr/^empty password returned by client$/, 'password: empty');
bad_answer('pw_user', 'p' . pack('N', 100000) . ('x' x 64), '08P01',
	qr/^invalid message length$/, 'password: too long');
bad_answer('scram_user', 'p' . pack('N', 2000) . ('x' x 64), '08P01',
	qr/^invalid message length$/, 'scram: longer than core accepts');
bad_answer('scram_user', pmsg("FOO-BAR\0" . pack('l>', -1)), '08P01',
	qr/^client selected an invalid SASL authentication mechanism$/, 'scram: unknown mechanism');
bad_answer('scram_user', pmsg("SCRAM-SHA-256"), '08P01',
	qr/^invalid string in message$/, 'scram: mechanism not terminated');
bad_answer('scram_user', pmsg("SCRAM-SHA-256\0" . pack('N', 7) . 'garbage'), '08P01',
	qr/malformed SCRAM message/, 'scram: malformed client-first-message');
bad_answer('scram_user', pmsg("c=biws,r=nonsense,p=AAAA"), '08P01',
	qr/malformed SCRAM message|inconsistent|invalid/, 'scram: malformed client-final-message', 1);

# clients vanishing mid-handshake: dropped quietly, the pool carries on
{
	my ($c) = auth_start('scram_user');
	$c->close;
	($c) = auth_start('pw_user');
	$c->send_bytes("p\0\0");
	$c->close;
	($c) = auth_start('scram_user');
	my ($bare, $m) = scram_first();
	$c->send_bytes($m);
	$c->read_msg(10);
	$c->send_bytes(substr(pmsg('c=biws,r=x,p=y'), 0, 8));
	$c->close;
	ok(login('scram_user', 'scram_secret')->{ok}, 'SCRAM login after clients hung up mid-handshake');
}

###########################################################################
# a stalled handshake delays nobody and ends at authentication_timeout
###########################################################################
{
	my $off = -s $node->logfile;
	my @stalled;
	my $t0 = time();
	for my $i (1 .. 3)
	{
		# after the SASL challenge (server-first-message)
		my ($c) = auth_start('scram_user');
		my ($bare, $m) = scram_first();
		$c->send_bytes($m);
		my ($t, $b) = $c->read_msg(10);
		is(($t // '') . (defined $b ? unpack('N', $b) : ''), 'R11', "stalled client $i got the SASL challenge");
		push @stalled, $c;
	}
	{
		# after the password request, and half-way through its answer
		my ($c) = auth_start('pw_user');
		push @stalled, $c;
		($c) = auth_start('md5_user');
		$c->send_bytes('p' . pack('N', 40) . 'md5');
		push @stalled, $c;
	}

	my $t1 = time();
	my $r = login('scram_user', 'scram_secret');
	ok($r->{ok}, 'another client logs in (raw SCRAM) while 5 clients stall');
	local $ENV{PGPASSWORD} = 'scram_secret';
	my ($ret, $out) = $node->pool_psql('app', 'SELECT 42', user => 'scram_user', timeout => 10);
	is($out, '42', 'and psql with SCRAM too');
	my $el = time() - $t1;
	cmp_ok($el, '<', 1.5, 'without waiting for the stalled ones') or diag("took ${el}s");

	for my $i (0 .. $#stalled)
	{
		my $c = $stalled[$i];
		my $res = $c->read_startup_response(8);
		my $el2 = time() - $t0;
		is(sqlstate($res), '57014', "stalled client $i: 57014 at authentication_timeout");
		like(errmsg_of($res), qr/^canceling authentication due to timeout$/,
			"stalled client $i: core's message");
		ok($c->wait_eof(3), "stalled client $i: connection closed");
		cmp_ok($el2, '<', 6, "stalled client $i: dropped in time") or diag("after ${el2}s");
		cmp_ok($el2, '>=', 1.9, "stalled client $i: not before authentication_timeout")
		  if $i == 0;
		$c->close;
	}
	like(log_since($off), qr/canceling authentication due to timeout/, 'timeout logged');
}

###########################################################################
# load: pgbench with SCRAM, and 50 concurrent SCRAM logins
###########################################################################
$node->command_ok(
	[ 'pgbench', '-i', '-q', '-s', '1', '-h', $node->host, '-p', $mp, '-U', 'scram_user', 'scramdb' ],
	'pgbench -i (main port, local trust)');
sub pgbench_pool
{
	my ($name, @args) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = 'scram_secret';
	my @cmd = ('pgbench', '-n', '-M', 'simple', @args,
		'-h', '127.0.0.1', '-p', $pp, '-U', 'scram_user', 'scramdb');
	my $ok = IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	note "pgbench $name stdout:\n$out\nstderr:\n$err";
	ok($ok, "pgbench $name: exit code 0");
	like($out, qr/number of failed transactions: 0 /, "pgbench $name: no failed transaction");
	like($out, qr/number of transactions actually processed: [1-9]/, "pgbench $name: transactions processed");
	return;
}
pgbench_pool('20 clients, SCRAM', '-c', '20', '-j', '2', '-T', '3');

# -C: a new SCRAM login for every transaction.  One client per pgbench
# thread: pgbench connects synchronously, so a thread blocked in a login
# would hold its other clients' open transactions, and with them the
# executors that login waits for.
pgbench_pool('-C (a SCRAM login per transaction)', '-C', '-c', '8', '-j', '8', '-T', '3');

{
	local $ENV{PGPASSWORD} = 'scram_secret';
	local %ENV = $node->_get_env();
	my @h;
	my $n = 50;
	my (@out, @err);
	my $t0 = time();
	for my $i (0 .. $n - 1)
	{
		($out[$i], $err[$i]) = ('', '');
		push @h, IPC::Run::start(
			[ 'psql', '-XAtq', '-w', '-d',
				"host=127.0.0.1 port=$pp dbname=app user=scram_user", '-c', "SELECT $i" ],
			'<', '/dev/null', '>', \$out[$i], '2>', \$err[$i],
			IPC::Run::timeout(120));
	}
	my $good = 0;
	for my $i (0 .. $n - 1)
	{
		eval { $h[$i]->finish; };
		chomp(my $o = $out[$i]);
		if ($o eq "$i" && $h[$i]->result == 0)
		{
			$good++;
		}
		else
		{
			diag("psql $i: out '$out[$i]' err '$err[$i]'");
		}
	}
	is($good, $n, "$n concurrent SCRAM logins, no failure");
	note sprintf('%d concurrent SCRAM logins took %.2fs', $n, time() - $t0);
}

###########################################################################
# reload: a line turned to reject applies to the next client
###########################################################################
{
	my $hba = slurp_file($node->data_dir . '/pg_hba.conf');
	(my $new = $hba) =~ s/^host all scram_user 127.0.0.1\/32 scram-sha-256$/host all scram_user 127.0.0.1\/32 reject/m;
	open my $w, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $w $new;
	close $w;
	$node->reload;
	ok(wait_until(sub { sqlstate(login('scram_user', 'scram_secret')) eq '28000' }, 15),
		'after reload scram_user is rejected');
	open $w, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $w $hba;
	close $w;
	$node->reload;
	ok(wait_until(sub { login('scram_user', 'scram_secret')->{ok} }, 15),
		'after another reload scram_user logs in again');
}

is($node->pool_safe_psql('app', 'SELECT current_user'), 'app', 'trust still serves');
check_no_crash($node, 'authentication');
unlike(slurp_file($node->logfile), qr/reference leak|leaked/,
	'no resource (crypto context) leaked by the exchange');
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
