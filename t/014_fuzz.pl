
# Copyright (c) builtin_pool authors
#
# Bounded, seeded protocol fuzzing of the pool port.
#
# A few thousand streams (BP_FUZZ_N, default 3000) run up to BP_FUZZ_CONC
# (default 24) at a time from one non-blocking event loop, mixed at random,
# one in ten over the pool's unix socket, the rest over TCP:
#   - startup streams: random and mutated startup packets (flipped bytes,
#     truncation, wrong lengths incl. huge and negative, garbage keys,
#     missing terminators, SSLRequest / GSSENCRequest / CancelRequest codes
#     in odd places, repeated SSLRequest, odd protocol versions, data
#     behind an SSLRequest, CancelRequests for live executors with random,
#     zero or right keys, roles renamed, re-created or dropped while their
#     pools lived), sent in chunks, then read, closed abruptly (FIN or RST)
#     or half-closed;
#   - message streams: a valid login, then random and mutated message
#     streams built from valid templates (Q, P/B/D/E/C/S/H, F, X, d/c/f
#     outside COPY, COPY FROM STDIN flows, COPY TO STDOUT) with mutations of
#     types, lengths, counts, formats, parameter counts, huge values,
#     truncation and abrupt close mid-message, sometimes pipelined right
#     behind the startup packet;
#   - authentication streams (one in ten): roles whose pg_hba.conf line asks
#     for password, md5 or scram-sha-256, answered right, wrong, mutated,
#     truncated, with out-of-place messages or malformed SCRAM exchanges;
#   - canaries (one in ten): well-behaved sessions checking that they see
#     their own values only (simple and extended protocol, a private GUC),
#     and that a short sleep of theirs is never cancelled, whatever the
#     fuzz around them does.
# Every read is bounded: a stream ends on EOF, after a short quiet time, or
# at its deadline.  The stream contents depend only on the seed and the
# stream number (the seed is printed).  Environment:
#   BP_FUZZ_SEED    the seed (default fixed: runs are reproducible)
#   BP_FUZZ_N       number of streams (default 3000)
#   BP_FUZZ_CONC    streams at a time (default 24)
#   BP_FUZZ_TIME    bound of the fuzz loop in seconds (default 70)
#   BP_FUZZ_ONLY    i,j,...: replay these streams alone, with hex dumps
#   BP_FUZZ_TARGET  main: fuzz the main port instead (core's behaviour, to
#                   compare; the pool-specific checks then mean nothing)
#   BP_FUZZ_PAUSE   seconds to pause for inspection when sessions are left
# One line per stream goes to tmp_check/log/014_fuzz_streams.log.
#
# Checked: no crash or postmaster restart (and no bgworker of the pool ever
# exits with an error, the listener keeps its pid), every canary passes,
# every valid login succeeds, no login without the right password, the
# server's output is always well framed, a session the server closes on
# its own got an ErrorResponse first, FATAL as core's (an ERROR alone is
# reported apart), and afterwards: no session, lock or open transaction
# left behind, pool_status shows executors, the listener counted every
# connection, psql through the pool works, pgbench -S (20 clients, 3 s)
# through the pool has no failed transaction, the re-created role logs in
# as itself (not as the renamed superuser) and the dropped one is refused.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(hmac_sha256 sha256);
use IPC::Run;
use MIME::Base64 qw(encode_base64 decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Socket qw(SOL_SOCKET SO_LINGER IPPROTO_TCP TCP_NODELAY SOCK_STREAM);
use Test::More;
use Time::HiRes qw(time usleep);

my $SEED = $ENV{BP_FUZZ_SEED} // 20240611;
my $N = $ENV{BP_FUZZ_N} // 3000;
my $CONC = $ENV{BP_FUZZ_CONC} // 24;
my $TIME_LIMIT = $ENV{BP_FUZZ_TIME} // 70;
my @ONLY = grep { /^\d+$/ } split /[,\s]+/, ($ENV{BP_FUZZ_ONLY} // '');
$CONC = 1 if @ONLY;
$SEED &= 0xffffffff;

note "fuzz seed $SEED, $N streams, $CONC at a time, loop bounded to ${TIME_LIMIT}s"
  . " (override with BP_FUZZ_SEED / BP_FUZZ_N / BP_FUZZ_CONC / BP_FUZZ_TIME;"
  . " BP_FUZZ_ONLY=i,j replays single streams)";
diag("builtin_pool fuzz seed $SEED (BP_FUZZ_SEED), $N streams (BP_FUZZ_N)");

##########################################################################
# A small PRNG of our own, so that a seed means the same streams on every
# Perl: xorshift32, warmed up.
##########################################################################

package FuzzRng;

sub new
{
	my ($class, $seed) = @_;
	my $self = bless { s => (($seed & 0xffffffff) || 0x9e3779b9) }, $class;
	$self->next32 for 1 .. 12;
	return $self;
}

sub next32
{
	my ($self) = @_;
	my $x = $self->{s};
	$x ^= ($x << 13) & 0xffffffff;
	$x ^= $x >> 17;
	$x ^= ($x << 5) & 0xffffffff;
	$self->{s} = $x;
	return $x;
}

# an integer in [0, n)
sub below
{
	my ($self, $n) = @_;
	return 0 if $n <= 1;
	return $self->next32 % $n;
}

sub chance
{
	my ($self, $p) = @_;
	return $self->next32 < $p * 4294967296;
}

sub pick
{
	my $self = shift;
	return $_[ $self->below(scalar @_) ];
}

sub bytes
{
	my ($self, $n) = @_;
	return join '', map { chr($self->below(256)) } 1 .. $n;
}

package main;

sub stream_rng
{
	my ($i) = @_;
	return FuzzRng->new($SEED ^ (($i * 0x9E3779B1 + 0x7f4a7c15) & 0xffffffff));
}

##########################################################################
# Message builders
##########################################################################

use constant PROTO_3_0 => 196608;
use constant CANCEL_CODE => 80877102;
use constant SSL_CODE => 80877103;
use constant GSSENC_CODE => 80877104;
use constant PID_PLACEHOLDER => 0x7ffffffe;
use constant KEY_PLACEHOLDER => 0x5eed5eed;

sub fmsg
{
	my ($type, $payload) = @_;
	return $type . pack('N', 4 + length $payload) . $payload;
}

sub startup_bytes
{
	my ($version, @kv) = @_;
	my $body = pack('N', $version);
	while (@kv)
	{
		my ($k, $v) = splice(@kv, 0, 2);
		$body .= "$k\0$v\0";
	}
	$body .= "\0";
	return pack('N', 4 + length $body) . $body;
}

sub hexdump
{
	my ($data, $max) = @_;
	$max //= 512;
	my $d = length($data) > $max ? substr($data, 0, $max) : $data;
	my $h = unpack('H*', $d);
	$h =~ s/(.{64})/$1\n/g;
	$h .= "\n... (" . length($data) . " bytes)" if length($data) > $max;
	return $h;
}

##########################################################################
# Generators
##########################################################################

# A stream is a script: a list of actions run by the event loop.
#   [send => BYTES]          queue bytes (and try to write them now)
#   [sleep => S]
#   [expect_byte => 'N']     the answer to an SSL/GSS request
#   [await_rfq => TIMEOUT]   until a ReadyForQuery arrives (canary/login)
#   [check => CODE]          CODE->(stream) returns an error text or undef
#   [auth => CODE]           answers the next AuthenticationRequest with
#                            CODE->(request code, body); any other message
#                            ends the exchange
#   [drain => QUIET]         read until EOF or QUIET seconds without data
#   [shutdown]               half-close (SHUT_WR)
#   [close => ABORT]         close now (ABORT: SO_LINGER 0, an RST)

my @SQL = (
	'SELECT 1',
	'SELECT generate_series(1, 50)',
	'SELECT g, repeat(\'x\', 200) FROM generate_series(1, 300) g',
	'BEGIN',
	'COMMIT',
	'ROLLBACK',
	'BEGIN; SELECT 1; COMMIT',
	'BEGIN; INSERT INTO fz VALUES (1); SELECT 1/0; COMMIT',
	'SELECT 1/0',
	'SELEC garbage from',
	'',
	';',
	' ; ; ',
	'SELECT pg_sleep(0.02)',
	'INSERT INTO fz VALUES (42)',
	'INSERT INTO fz SELECT g FROM generate_series(1, 100) g',
	'DELETE FROM fz WHERE a > 1000',
	'SELECT count(*) FROM fz',
	'SET work_mem = \'1MB\'',
	'SET application_name = \'fuzzed\'',
	'SET myapp.id = \'fuzz\'',
	'RESET ALL',
	'SET statement_timeout = 1',
	'SET lock_timeout = \'50ms\'',
	'SHOW ALL',
	'PREPARE ps AS SELECT $1::int + 1',
	'EXECUTE ps(1)',
	'DEALLOCATE ALL',
	'DEALLOCATE ps',
	'DISCARD ALL',
	'DISCARD PLANS',
	'CREATE TEMP TABLE tt (a int)',
	'DROP TABLE IF EXISTS tt',
	'DECLARE cw CURSOR WITH HOLD FOR SELECT generate_series(1, 10)',
	'FETCH 3 FROM cw',
	'CLOSE ALL',
	'LISTEN fzchan',
	'NOTIFY fzchan, \'hello\'',
	'UNLISTEN *',
	'SELECT pg_try_advisory_lock(4242)',
	'SELECT pg_advisory_unlock_all()',
	'BEGIN; SELECT pg_advisory_xact_lock(4243); SELECT 1',
	'SAVEPOINT s1',
	'RELEASE s1',
	'ROLLBACK TO s1',
	'BEGIN; SAVEPOINT a; SELECT 1/0; ROLLBACK TO a; SELECT 2',
	'SELECT nextval(\'fzseq\')',
	'SELECT currval(\'fzseq\')',
	'SELECT lastval()',
	'COPY fz FROM STDIN',
	'COPY fz FROM STDIN (FORMAT binary)',
	'COPY fz FROM STDIN (FORMAT csv)',
	'COPY fz TO STDOUT',
	'COPY (SELECT generate_series(1, 2000)) TO STDOUT',
	'COPY (SELECT 1) TO STDOUT (FORMAT binary)',
	'SELECT repeat(\'y\', 70000)',
	'SELECT \'\\xdeadbeef\'::bytea',
	'SELECT E\'\\\\x00\'',
	'SELECT pg_cancel_backend(pg_backend_pid())',
	'SET ROLE postgres',
	'SET SESSION AUTHORIZATION postgres',
	'SELECT current_setting(\'myapp.id\', true)',
	'VACUUM fz',
	'BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT count(*) FROM fz',
	'LOCK TABLE fz IN SHARE MODE',
	'SELECT * FROM pg_stat_activity WHERE pid = pg_backend_pid()',
	'SELECT $1::text',
	'SELECT $1::int, $2::text, $3::bytea',
	'SELECT $1',
	'INSERT INTO fz VALUES ($1)',
	'SET idle_in_transaction_session_timeout = 100',
	'SET client_encoding = \'LATIN1\'',
	'SET client_encoding = \'UTF8\'',
	"SELECT '\x{ff}\x{fe}'",
	"SELECT 'caf\x{c3}\x{a9}'",
	'DO $$BEGIN RAISE NOTICE \'n\'; END$$',
	'DO $$BEGIN RAISE EXCEPTION \'boom\'; END$$',
	'SELECT 1; SELECT 2; SELECT 3',
	'CHECKPOINT',
	'SELECT pg_reload_conf()',
	'COMMIT PREPARED \'x\'',
	'PREPARE TRANSACTION \'fzx\'',
);

my @OIDS = (0, 0, 0, 23, 25, 17, 16, 20, 21, 700, 1043, 2249, 2276, 2283,
	705, 999999, 4294967295, 3802, 114, 1700, 1184);

# 177 int4pl, 1257 textlen, 952 lo_open, 1299 now, 65 int4eq, 1242
# boolin.  Left out: 2096 pg_terminate_backend (the executor runs as app
# and could end itself: no pool bug) and 2626 pg_sleep (a FunctionCall
# pg_sleep('5') keeps an executor busy longer than a stream lives).
my @FUNCS = (177, 177, 1257, 952, 1299, 0, 1, 99999999, 4294967295,
	65, 1242);

# evil(r, P, SANE, ALTERNATIVES...): SANE, or with probability P one of
# the alternatives
sub evil
{
	my ($r, $p, $sane, @alt) = @_;
	return $sane unless $r->chance($p);
	return $r->pick(@alt);
}

sub evil16
{
	my ($r, $p, $sane) = @_;
	return evil($r, $p, $sane, 0, 1, 2, 3, 7, 0x7fff, 0x8000, 0xffff,
		$r->below(65536), $sane + 1, $sane > 0 ? $sane - 1 : 0);
}

sub evil32
{
	my ($r, $p, $sane) = @_;
	return evil($r, $p, $sane, 0, 1, 0xffffffff, 0xfffffffe, 0x7fffffff,
		0x80000000, 1_000_000, 0x40000000, $r->next32, ($sane + 1) & 0xffffffff,
		($sane - 1) & 0xffffffff);
}

sub pick_sql
{
	my ($r) = @_;
	return $r->pick(@SQL) if $r->chance(0.9);
	# a random fragment of SQL, or bytes
	return $r->chance(0.5)
	  ? join(' ', map { $r->pick(qw(SELECT FROM WHERE ( ) 1 ' " $1 ; -- /* */ E'\\ \\x00 fz ::int)) } 1 .. $r->below(12))
	  : $r->bytes($r->below(40));
}

sub param_value
{
	my ($r, $fmt) = @_;
	my $k = $r->below(10);
	return undef if $k == 0;
	return pack('N', $r->next32) if $fmt == 1 && $k < 6;
	return $r->pick('1', '42', 'abc', '', '-1', '2147483648', '\\x00ff', "\xff\xfe", '1e400', 'NaN')
	  if $k < 8;
	return $r->bytes($r->below(64));
}

# Bind body.  p: probability that a field is evil.
sub bind_body
{
	my ($r, $p, $portal, $stmt, $nparams) = @_;
	my $nfmt = $r->pick(0, 0, 1, $nparams);
	my @fmts = map { $r->pick(0, 0, 1) } 1 .. $nfmt;
	my $body = "$portal\0$stmt\0";
	$body .= pack('n', evil16($r, $p, $nfmt));
	$body .= pack('n', evil16($r, $p, $_)) for @fmts;
	$body .= pack('n', evil16($r, $p, $nparams));
	for my $i (0 .. $nparams - 1)
	{
		my $fmt = $nfmt == 0 ? 0 : $nfmt == 1 ? $fmts[0] : $fmts[$i];
		my $v = param_value($r, $fmt);
		if (!defined $v)
		{
			$body .= pack('N', evil32($r, $p, 0xffffffff));
		}
		else
		{
			$body .= pack('N', evil32($r, $p, length $v)) . $v;
		}
	}
	my $nr = $r->pick(0, 0, 1, 2);
	$body .= pack('n', evil16($r, $p, $nr));
	$body .= pack('n', evil16($r, $p, $r->pick(0, 0, 1))) for 1 .. $nr;
	return $body;
}

# One group of messages from a template.
sub gen_group
{
	my ($r, $p) = @_;
	my $t = $r->below(100);
	if ($t < 22)
	{
		return fmsg('Q', pick_sql($r) . "\0");
	}
	elsif ($t < 50)
	{
		# extended protocol: Parse Bind Describe Execute [Close] Sync|Flush
		my $stmt = $r->pick('', '', 's1', 's2', 'a' x 70, "\xff");
		my $portal = $r->pick('', '', 'p1', 'p2');
		my $sql = pick_sql($r);
		my $ntypes = $r->pick(0, 0, 1, 2, 3);
		my $pb = "$stmt\0$sql\0" . pack('n', evil16($r, $p, $ntypes));
		$pb .= pack('N', $r->pick(@OIDS)) for 1 .. $ntypes;
		my $nparams = () = $sql =~ /\$\d/g;
		$nparams = $r->pick($nparams, $nparams, $ntypes, $r->below(4));
		my $out = '';
		$out .= fmsg('P', $pb) unless $r->chance(0.05);
		$out .= fmsg('B', bind_body($r, $p, $portal, $stmt, $nparams))
		  unless $r->chance(0.05);
		$out .= fmsg('D', $r->pick('S', 'P', 'P', 'X', "\0") . $r->pick($portal, $stmt, 'nosuch') . "\0")
		  if $r->chance(0.6);
		$out .= fmsg('E', "$portal\0" . pack('N', evil32($r, $p, $r->pick(0, 0, 0, 1, 2, 10))))
		  unless $r->chance(0.05);
		$out .= fmsg('E', "$portal\0" . pack('N', 0)) if $r->chance(0.15);
		$out .= fmsg('C', $r->pick('S', 'P', 'Q') . $r->pick($portal, $stmt) . "\0")
		  if $r->chance(0.3);
		$out .= $r->chance(0.85) ? fmsg('S', '') : fmsg('H', '');
		return $out;
	}
	elsif ($t < 56)
	{
		# pipelined without Sync, then Flush or Sync later
		my $out = '';
		for (1 .. 1 + $r->below(4))
		{
			$out .= fmsg('P', "\0SELECT " . $r->below(1000) . "\0\0\0");
			$out .= fmsg('B', "\0\0\0\0\0\0\0\0");
			$out .= fmsg('E', "\0\0\0\0\0");
		}
		$out .= fmsg('H', '') if $r->chance(0.5);
		$out .= fmsg('S', '') if $r->chance(0.7);
		return $out;
	}
	elsif ($t < 63)
	{
		# FunctionCall
		my $nargs = $r->pick(0, 1, 2, 2, 3);
		my $nfmt = $r->pick(0, 1, $nargs);
		my $b = pack('N', $r->pick(@FUNCS));
		$b .= pack('n', evil16($r, $p, $nfmt));
		$b .= pack('n', evil16($r, $p, $r->pick(0, 1, 1))) for 1 .. $nfmt;
		$b .= pack('n', evil16($r, $p, $nargs));
		for (1 .. $nargs)
		{
			my $v = $r->pick(pack('N', $r->below(100)), pack('N', 0x7fffffff), '5', 'abc',
				pack('N', 1) . pack('N', 2), '');
			if ($r->chance(0.1)) { $b .= pack('N', 0xffffffff); next; }
			$b .= pack('N', evil32($r, $p, length $v)) . $v;
		}
		$b .= pack('n', evil16($r, $p, $r->pick(0, 1)));
		return fmsg('F', $b);
	}
	elsif ($t < 75)
	{
		# COPY FROM STDIN flow
		my $fmt = $r->pick('', '', ' (FORMAT csv)', ' (FORMAT binary)');
		my $out = fmsg('Q', "COPY fz FROM STDIN$fmt\0");
		for (1 .. $r->below(5))
		{
			my $d = $r->pick("1\n2\n3\n", "4\n", "x\n", "\\.\n", "5", "6\t7\n",
				"PGCOPY\n\377\r\n\0" . pack('N N', 0, 0) . pack('n', 1) . pack('N', 4) . pack('N', 9),
				$r->bytes($r->below(30)), "8\n" x 500);
			$out .= fmsg('d', $d);
		}
		my $end = $r->below(10);
		$out .=
			$end < 5 ? fmsg('c', '')
		  : $end < 7 ? fmsg('f', "client gave up\0")
		  : $end < 8 ? fmsg('Q', "SELECT 1\0")
		  : $end < 9 ? fmsg('S', '') . fmsg('H', '') . fmsg('c', '')
		  :            '';
		return $out;
	}
	elsif ($t < 78)
	{
		return fmsg('Q', $r->pick('COPY fz TO STDOUT', 'COPY (SELECT generate_series(1, 5000)) TO STDOUT') . "\0");
	}
	elsif ($t < 83)
	{
		# COPY messages outside COPY
		return fmsg($r->pick('d', 'c', 'f'), $r->pick('', "1\n", "x\0", $r->bytes(10)));
	}
	elsif ($t < 88)
	{
		# a type the protocol does not have, or one only the server sends
		my $type = $r->chance(0.5) ? $r->pick('Y', 'T', 'Z', 'R', 'K', 'p', '0', "\0", "\xff", 'A', 'N', 'W', 'G', 'V')
		  : chr($r->below(256));
		return fmsg($type, $r->bytes($r->below(20)));
	}
	elsif ($t < 90)
	{
		return fmsg('X', '');
	}
	elsif ($t < 93)
	{
		# oversized: a small-message type beyond its 10000 bytes limit, or a
		# big valid query
		return $r->chance(0.5)
		  ? fmsg($r->pick('S', 'H', 'C', 'D', 'E', 'X', 'c', 'f'), 'z' x (10001 + $r->below(20000)))
		  : fmsg('Q', 'SELECT length(\'' . ('w' x (100_000 + $r->below(200_000))) . "')\0");
	}
	elsif ($t < 96)
	{
		# declared length beyond what is sent (the stream stops here)
		my $type = $r->pick('Q', 'P', 'B', 'd', 'F', 'S');
		my $len = $r->pick(100, 70_000, 50_000_000, 0x3fffffff, 0x40000000, 0x7fffffff, 0xffffffff);
		return $type . pack('N', $len) . $r->bytes($r->below(200)) . ($r->chance(0.3) ? 'x' x 70_000 : '');
	}
	else
	{
		return $r->bytes(1 + $r->below(30));
	}
}

# Byte-level mutations of a message stream (or of a startup packet when
# lenpos is 0).
sub mutate
{
	my ($r, $data, $n) = @_;
	for (1 .. $n)
	{
		my $len = length $data;
		last if $len == 0;
		my $k = $r->below(9);
		my $pos = $r->below($len);
		if ($k < 2)
		{
			substr($data, $pos, 1) = chr(ord(substr($data, $pos, 1)) ^ (1 << $r->below(8)));
		}
		elsif ($k < 3)
		{
			substr($data, $pos, 1) = chr($r->below(256));
		}
		elsif ($k < 4)
		{
			$data = substr($data, 0, $pos);
		}
		elsif ($k < 5)
		{
			substr($data, $pos, 0) = $r->bytes(1 + $r->below(8));
		}
		elsif ($k < 6)
		{
			substr($data, $pos, 1 + $r->below(8)) = '';
		}
		elsif ($k < 7 && $len >= $pos + 4)
		{
			# a 32-bit field: a length, count, oid ...
			substr($data, $pos, 4) = pack('N', $r->pick(0, 1, 3, 4, 5, 0xffffffff, 0x7fffffff,
					0x80000000, 10000, 10001, 0x3fffffff, $r->next32));
		}
		elsif ($k < 8 && $len >= $pos + 2)
		{
			substr($data, $pos, 2) = pack('n', $r->pick(0, 1, 0xffff, 0x7fff, 0x8000, $r->below(65536)));
		}
		else
		{
			# duplicate a chunk
			my $l = 1 + $r->below(40);
			substr($data, $pos, 0) = substr($data, $pos, $l);
		}
	}
	return $data;
}

# Splits DATA into chunks: [send], [sleep], [send] ...
sub chunked
{
	my ($r, $data) = @_;
	my @a;
	my $n = $r->pick(1, 1, 1, 2, 3, 5);
	if ($r->chance(0.05) && length($data) < 64)
	{
		# byte by byte
		return map { ([ send => $_ ], [ sleep => 0.002 ]) } split //, $data;
	}
	my @cuts = sort { $a <=> $b } map { $r->below(length($data) + 1) } 1 .. $n - 1;
	my $prev = 0;
	for my $c (@cuts, length $data)
	{
		push @a, [ send => substr($data, $prev, $c - $prev) ] if $c > $prev;
		push @a, [ sleep => $r->pick(0, 0.001, 0.01, 0.03) ] if $c < length $data;
		$prev = $c;
	}
	return @a;
}

sub final_actions
{
	my ($r) = @_;
	my $k = $r->below(100);
	return ([ drain => 0.2 ]) if $k < 72;
	return ([ close => 0 ]) if $k < 82;
	return ([ close => 1 ]) if $k < 90;    # RST
	return ([ sleep => 0.05 ], [ close => 1 ]) if $k < 94;
	return ([ shutdown => 1 ], [ drain => 0.2 ]);
}

sub gen_startup_stream
{
	my ($r, $i) = @_;
	my $user = $r->pick('app', 'app', 'app', 'app', 'nosuchrole', '', "a\xff", 'x' x 100, 'pg_read_all_stats',
		'fz_ren', 'fz_ren_old', 'fz_drop');
	my $db = $r->pick('app', 'app', 'app', 'nosuchdb', 'template0', '', 'postgres', 'd' x 80);
	my @extra;
	for (1 .. $r->pick(0, 0, 1, 2, 4))
	{
		push @extra, $r->pick(
			[ application_name => "fz$i" ],
			[ options => $r->pick('-c work_mem=64kB', '-c nosuch.guc=1', '--invalid', '-c statement_timeout=abc', '-c', ' -c  a=b ', '-c myapp.id=x -c work_mem=1MB', "-c search_path=\xff") ],
			[ client_encoding => $r->pick('UTF8', 'LATIN1', 'bogus', 'SQL_ASCII') ],
			[ DateStyle => 'ISO' ],
			[ replication => $r->pick('true', 'database', 'maybe', 'off') ],
			[ '_pq_.fancy' => 'on' ],
			[ 'myapp.id' => "x$i" ],
			[ $r->bytes(1 + $r->below(8)) => $r->bytes($r->below(8)) ],
			[ 'work_mem' => $r->pick('1MB', '-1', 'lots') ],
			[ 'session_authorization' => 'postgres' ],
			[ 'user' => 'app' ],
			[ 'database' => 'app' ],
			[ 'x' x 200 => 'y' x 2000 ]);
	}
	my $version = $r->chance(0.8) ? PROTO_3_0
	  : $r->pick(0x00020000, 0x00010000, 0x00030001, 0x0003ffff, 0x00040000, 0,
		0xffffffff, CANCEL_CODE, SSL_CODE, GSSENC_CODE, 80877105, 0x04d20000);
	my $valid = startup_bytes($version, (map { @$_ } @extra), user => $user, database => $db);
	$valid = startup_bytes($version, database => $db) if $r->chance(0.05);
	my $ssl = pack('N N', 8, SSL_CODE);
	my $gss = pack('N N', 8, GSSENC_CODE);
	# the pid: junk, or (placeholders filled in when the stream starts) a
	# live executor's pid with a random key or key 0 (no key: it must cancel
	# nothing, the canaries' sleeps included), or the pid and key of a live
	# fuzz session (never a canary's)
	my $cancel = pack('N N N N', 16, CANCEL_CODE,
		$r->pick(0, 1, $r->below(100000), 0xffffffff, PID_PLACEHOLDER, PID_PLACEHOLDER, PID_PLACEHOLDER),
		$r->pick($r->next32, $r->next32, 0, KEY_PLACEHOLDER));

	my $kind = $r->below(14);
	my @pieces;    # each is [bytes, expect_N]
	if ($kind == 0) { @pieces = ([$ssl, 1], [$valid]) }
	elsif ($kind == 1) { @pieces = ([$gss, 1], [$ssl, 1], [$valid]) }
	elsif ($kind == 2) { @pieces = ([$ssl, 1], [$ssl], [$valid]) }    # repeated SSLRequest
	elsif ($kind == 3) { @pieces = ([$gss, 1], [$gss], [$valid]) }
	elsif ($kind == 4) { @pieces = ([$ssl . $valid]) }    # data behind the SSLRequest
	elsif ($kind == 5)
	{
		@pieces = $r->pick([[$cancel]], [[$ssl, 1], [$cancel]],
			[[pack('N N N', 12, CANCEL_CODE, 1)]], [[pack('N N N N N', 20, CANCEL_CODE, 1, 2, 3)]],
			[[$cancel . $valid]], [[pack('N N', 8, CANCEL_CODE)]]);
		@pieces = @{ $pieces[0] };
	}
	elsif ($kind == 6)
	{
		# wrong length word
		my $l = $r->pick(0, 1, 3, 4, 7, 8, 9, 10000, 10001, 10004, 10005, 0x7fffffff,
			0x80000000, 0xffffffff, length($valid) - 1, length($valid) + 1, length($valid) + 50);
		my $b = $valid;
		substr($b, 0, 4) = pack('N', $l);
		@pieces = ([$b]);
	}
	elsif ($kind == 7)
	{
		# missing terminators
		my $b = $valid;
		$b =~ s/\0{1,2}$//;
		substr($b, 0, 4) = pack('N', length $b) if $r->chance(0.7);
		@pieces = ([$b]);
	}
	elsif ($kind == 8)
	{
		# a key without value, odd strings
		my $body = pack('N', PROTO_3_0) . $r->pick("user\0app\0database\0", "user\0", "user\0app\0x", "\0\0\0", "user\0app\0database\0app\0\0\0", "user\0app");
		@pieces = ([pack('N', 4 + length $body) . $body]);
	}
	elsif ($kind == 9)
	{
		# huge packets at the limit
		my $pad = $r->pick(9000, 9950, 9980, 10000, 12000);
		my $b = startup_bytes(PROTO_3_0, user => 'app', database => 'app', application_name => 'p' x $pad);
		$b = pack('N', $r->pick(10000, 10004, 9999)) . $r->bytes($r->pick(9996, 10000)) if $r->chance(0.3);
		@pieces = ([$b]);
	}
	elsif ($kind == 10) { @pieces = ([mutate($r, $valid, 1 + $r->below(4))]) }
	elsif ($kind == 11) { @pieces = ([substr($valid, 0, $r->below(length $valid))]) }
	elsif ($kind == 12) { @pieces = ([$r->bytes($r->below(65))]) }
	else { @pieces = ([$valid]) }

	# sometimes an extra mutation of the last piece
	$pieces[-1][0] = mutate($r, $pieces[-1][0], 1) if $r->chance(0.1);
	# sometimes messages right behind the startup packet
	$pieces[-1][0] .= fmsg('Q', "SELECT 1\0") . fmsg('X', '') if $r->chance(0.05);

	my @script;
	for my $pc (@pieces)
	{
		push @script, chunked($r, $pc->[0]);
		push @script, [ expect_byte => 'N' ] if $pc->[1];
	}
	push @script, final_actions($r);
	return { kind => 'startup', script => \@script, deadline => 4 };
}

sub gen_message_stream
{
	my ($r, $i) = @_;
	my @kv = (user => 'app', database => 'app', application_name => "fz$i");
	push @kv, (options => '-c myapp.id=opt' . $i) if $r->chance(0.2);
	my $startup = startup_bytes(PROTO_3_0, @kv);

	my $p = $r->pick(0, 0, 0.05, 0.1, 0.3);    # evil field probability
	my $data = '';
	my $groups = 1 + $r->below(8);
	$data .= gen_group($r, $p) for 1 .. $groups;
	my $nmut = $r->pick(0, 0, 0, 1, 1, 2, 3);
	$data = mutate($r, $data, $nmut) if $nmut;
	# a whole stream: usually end with a query, to see the session's state
	$data .= fmsg('Q', "SELECT 'end'\0") if $r->chance(0.3);

	my @script;
	my $prefix = $r->below(20);
	if ($prefix == 0)
	{
		push @script, [ send => pack('N N', 8, SSL_CODE) ], [ expect_byte => 'N' ];
	}
	elsif ($prefix == 1)
	{
		push @script, [ send => pack('N N', 8, GSSENC_CODE) ], [ expect_byte => 'N' ];
	}
	if ($r->chance(0.15))
	{
		# pipelined behind the startup packet
		push @script, chunked($r, $startup . $data), [ await_rfq => 10, 'soft' ];
	}
	else
	{
		push @script, [ send => $startup ], [ await_rfq => 10, 'login' ];
		push @script, chunked($r, $data);
	}
	push @script, final_actions($r);
	return { kind => 'msg', script => \@script, deadline => 4, fuzz_data => $data };
}

sub gen_canary
{
	my ($r, $i) = @_;
	my $tok = sprintf('tok%d_%08x', $i, $r->next32);
	my @script = (
		[ send => startup_bytes(PROTO_3_0, user => 'app', database => 'app', application_name => "canary$i") ],
		[ await_rfq => 30, 'login' ],
		[ send => fmsg('Q', "SELECT '$tok'::text, current_setting('application_name')\0") ],
		[ await_rfq => 30 ],
		[ check => sub { expect_rows($_[0], [ [ $tok, "canary$i" ] ]) } ],
		[ send => fmsg('Q', "SET myapp.id = '$tok'\0") ],
		[ await_rfq => 30 ],
		[ check => sub { expect_rows($_[0], []) } ],
		[ sleep => 0.01 * $r->below(5) ],
		[ send => fmsg('Q', "SELECT current_setting('myapp.id')\0") ],
		[ await_rfq => 30 ],
		[ check => sub { expect_rows($_[0], [ [$tok] ]) } ],
		# a running statement the fuzz's bogus CancelRequests must not cancel
		[ send => fmsg('Q', "SELECT '$tok'::text FROM pg_sleep(0.02)\0") ],
		[ await_rfq => 30 ],
		[ check => sub { expect_rows($_[0], [ [$tok] ]) } ],
		[ send => fmsg('P', "\0SELECT \$1::text || '-x', current_setting('myapp.id')\0" . pack('n N', 1, 25))
			  . fmsg('B', "\0\0" . pack('n n N', 0, 1, length $tok) . $tok . pack('n', 0))
			  . fmsg('E', "\0" . pack('N', 0))
			  . fmsg('S', '') ],
		[ await_rfq => 30 ],
		[ check => sub { expect_rows($_[0], [ [ "$tok-x", $tok ] ]) } ],
		[ send => fmsg('Q', "BEGIN; SELECT current_setting('myapp.id'), current_setting('application_name'); COMMIT\0") ],
		[ await_rfq => 30 ],
		[ check => sub { expect_rows($_[0], [ [ $tok, "canary$i" ] ]) } ],
		[ send => fmsg('X', '') ],
		[ close => 0 ]);
	return { kind => 'canary', script => \@script, deadline => 60, token => $tok };
}

# Password authentication (the listener runs it): roles whose pg_hba.conf
# line asks for password, md5 and scram-sha-256, answered correctly, with
# a wrong password, or with mutated, truncated, oversized or out-of-place
# messages.
my %AUTH_PW = (fz_pw => 'pw_secret', fz_md5 => 'md5_secret', fz_scram => 'scram_secret');

sub pmsg { return fmsg('p', $_[0]); }

sub scram_proof
{
	my ($password, $bare, $server_first, $without_proof) = @_;
	my %a = map { split /=/, $_, 2 } split /,/, $server_first;
	return undef unless defined $a{s} && defined $a{i} && $a{i} =~ /^\d+$/ && $a{i} <= 100000;
	my $salt = decode_base64($a{s});
	my $u = hmac_sha256($salt . pack('N', 1), $password);
	my $salted = $u;
	for (2 .. $a{i})
	{
		$u = hmac_sha256($u, $password);
		$salted ^= $u;
	}
	my $client_key = hmac_sha256('Client Key', $salted);
	my $sig = hmac_sha256("$bare,$server_first,$without_proof", sha256($client_key));
	return encode_base64($client_key ^ $sig, '');
}

sub gen_auth_stream
{
	my ($r, $i) = @_;
	my $user = $r->pick(sort keys %AUTH_PW);
	my $mode = $r->pick(qw(correct correct wrong mutate mutate structure structure
		truncate wrongtype extra));
	my $ar = FuzzRng->new($r->next32);
	my $password = $mode eq 'wrong' ? 'not_' . $AUTH_PW{$user} : $AUTH_PW{$user};
	# SCRAM state between the two steps; legit: every secret-bearing
	# answer sent was the right one, byte for byte (only then may the
	# login succeed); secrets: how many such answers went out
	my %st = (legit => 1, secrets => 0);

	# answer(CODE, BODY) -> bytes to send for that AuthenticationRequest
	my $answer = sub {
		my ($code, $body) = @_;
		my $msg;
		my $right;    # the right answer to a secret-bearing request
		my $good = $AUTH_PW{$user};
		if ($code == 3)
		{
			$msg = pmsg("$password\0");
			$right = pmsg("$good\0");
		}
		elsif ($code == 5)
		{
			$msg = pmsg('md5' . md5_hex(md5_hex($password . $user) . substr($body, 0, 4)) . "\0");
			$right = pmsg('md5' . md5_hex(md5_hex($good . $user) . substr($body, 0, 4)) . "\0");
		}
		elsif ($code == 10)
		{
			my $nonce = encode_base64($ar->bytes(18), '');
			my $gs2 = $mode eq 'structure' ? $ar->pick('n,,', 'y,,', 'p=tls-server-end-point,,', 'x,,', 'n,a=someone,', '', 'n,') : 'n,,';
			my $bare = $mode eq 'structure' ? $ar->pick("n=,r=$nonce", "r=$nonce", "n=,r=", "n=,r=$nonce,e=x", "m=ext,n=,r=$nonce", "n=\xff,r=$nonce", 'n=,r=' . ('x' x 5000)) : "n=,r=$nonce";
			$st{bare} = $bare;
			my $first = "$gs2$bare";
			my $mech = $mode eq 'structure' ? $ar->pick('SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1', '', 'PLAIN') : 'SCRAM-SHA-256';
			my $len = length $first;
			$len = $ar->pick(0, 0xffffffff, $len + 1, $len - 1, 0x7fffffff, 100000) if $mode eq 'structure' && $ar->chance(0.4);
			$msg = pmsg("$mech\0" . pack('N', $len) . $first);
		}
		elsif ($code == 11)
		{
			my %a = map { split /=/, $_, 2 } split /,/, $body;
			my $rn = $a{r} // '';
			$rn = $ar->pick('', 'bogus', substr($rn, 0, 10), $rn . 'x') if $mode eq 'structure' && $ar->chance(0.5);
			my $cb = $mode eq 'structure' ? $ar->pick('c=biws', 'c=', 'c=eSws', 'c=!!!', 'c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws') : 'c=biws';
			my $without = "$cb,r=$rn";
			my $proof = scram_proof($password, $st{bare} // '', $body, $without) // 'AAAA';
			my $good_proof = scram_proof($good, $st{bare} // '', $body, $without) // 'none';
			$right = pmsg("$without,p=$good_proof");
			$proof = $ar->pick('', '!!!', 'AAAA', encode_base64($ar->bytes(32), ''), $proof . 'A') if $mode eq 'structure' && $ar->chance(0.5);
			my $final = $mode eq 'structure' ? $ar->pick("$without,p=$proof", "$without", "$without,p=$proof,x=1", "p=$proof,$without", "$without,p=$proof\0junk") : "$without,p=$proof";
			$msg = pmsg($final);
		}
		else
		{
			return undef;
		}
		if ($mode eq 'mutate')
		{
			$msg = mutate($ar, $msg, 1 + $ar->below(3));
		}
		elsif ($mode eq 'truncate')
		{
			$msg = substr($msg, 0, $ar->below(length $msg));
		}
		elsif ($mode eq 'wrongtype')
		{
			substr($msg, 0, 1) = $ar->pick('Q', 'X', 'S', "\0", 'P', 'p');
		}
		elsif ($mode eq 'extra')
		{
			$msg .= $ar->pick(fmsg('Q', "SELECT 1\0"), pmsg("again\0"), fmsg('X', ''), $ar->bytes(10));
		}
		elsif ($mode eq 'structure' && $ar->chance(0.2))
		{
			# the length word alone
			substr($msg, 1, 4) = pack('N', $ar->pick(0, 3, 4, 5, 1000, 0x7fffffff, 0xffffffff, 65536, 1_000_000));
		}
		if (defined $right)
		{
			$st{secrets}++;
			$st{legit} = 0 unless substr($msg, 0, length $right) eq $right;
		}
		return $msg;
	};

	my @script = (
		[ send => startup_bytes(PROTO_3_0, user => $user, database => 'app', application_name => "fzauth$i") ],
		[ auth => $answer ],
		[ auth => $answer ],
		[ auth => $answer ],
		final_actions($r));
	return { kind => 'auth', script => \@script, deadline => 6, mode => $mode, user => $user,
		auth_state => \%st };
}

sub gen_stream
{
	my ($i) = @_;
	my $r = stream_rng($i);
	my $s;
	if ($i % 10 == 5)
	{
		$s = gen_canary($r, $i);
	}
	elsif ($i % 10 == 7)
	{
		$s = gen_auth_stream($r, $i);
	}
	elsif ($r->chance(0.4))
	{
		$s = gen_startup_stream($r, $i);
	}
	else
	{
		$s = gen_message_stream($r, $i);
	}
	$s->{i} = $i;
	# one in ten over the pool's unix socket (trust there: not for auth)
	$s->{unix} = $r->chance(0.1) && $s->{kind} ne 'auth';
	return $s;
}

##########################################################################
# Server output
##########################################################################

my %BACKEND_TYPES = map { $_ => 1 } split //, 'RKSZTDCENI123ntsGHWdcAvV';

# Parses complete backend messages from the stream's input buffer.
sub parse_in
{
	my ($s) = @_;
	return unless $s->{parse_on};
	while (!$s->{bad_framing} && length($s->{in}) >= 5)
	{
		my ($type, $len) = unpack('a N', $s->{in});
		if (!$BACKEND_TYPES{$type} || $len < 4 || $len > 0x40000000)
		{
			$s->{bad_framing} = sprintf('type 0x%02x length %u at byte %d', ord($type), $len,
				$s->{in_total} - length $s->{in});
			return;
		}
		last if length($s->{in}) < 1 + $len;
		my $body = substr($s->{in}, 5, $len - 4);
		substr($s->{in}, 0, 1 + $len, '');
		push @{ $s->{msgs} }, [ $type, $body ];
	}
	return;
}

sub fields
{
	my ($body) = @_;
	my %f;
	while ($body =~ /\G([^\0])([^\0]*)\0/gcs) { $f{$1} = $2; }
	return \%f;
}

# rows and errors in the messages of the last completed request
sub expect_rows
{
	my ($s, $want) = @_;
	my ($from, $to) = @{ $s->{range} };
	my @rows;
	my @err;
	for my $m (@{ $s->{msgs} }[ $from .. $to ])
	{
		if ($m->[0] eq 'D')
		{
			push @rows, PoolTest::Raw::parse_datarow($m->[1]);
		}
		elsif ($m->[0] eq 'E')
		{
			my $f = fields($m->[1]);
			push @err, "$f->{S} $f->{C} $f->{M}";
		}
	}
	return 'error: ' . join('; ', @err) if @err;
	my $got = join('|', map { join(',', map { $_ // 'NULL' } @$_) } @rows);
	my $exp = join('|', map { join(',', @$_) } @$want);
	return $got eq $exp ? undef : "rows: expected '$exp', got '$got'";
}

# does the frontend stream (after the startup) hold a Terminate at a
# message boundary before the framing breaks?
sub sends_terminate
{
	my ($data) = @_;
	my $pos = 0;
	while ($pos + 5 <= length $data)
	{
		my ($type, $len) = unpack('a N', substr($data, $pos, 5));
		return 1 if $type eq 'X';
		return 0 if $len < 4;
		return 0 unless $type =~ /^[QFdcfPBCDEHS]$/;
		$pos += 1 + $len;
	}
	return 0;
}

##########################################################################
# The event loop
##########################################################################

my %stats;
my @failures;       # canary failures, bad framing, silent closes ...
my @login_fail;
my @silent_close;    # server closed a session without any ErrorResponse
my @no_fatal;        # ... after an ERROR, without the FATAL that follows in core
my $streams_log;

sub finish
{
	my ($s, $why) = @_;
	return if $s->{done};
	$s->{done} = 1;
	$s->{end} = $why;
	parse_in($s);
	if ($s->{sock})
	{
		close($s->{sock});
		$s->{sock} = undef;
	}
	$stats{"$s->{kind}:$why"}++;

	my @types = map { $_->[0] } @{ $s->{msgs} // [] };
	my @errs = map { fields($_->[1]) } grep { $_->[0] eq 'E' } @{ $s->{msgs} // [] };
	my $fatal = $errs[-1];
	$stats{'errors:' . ($fatal->{C} // '?')}++ if $fatal;

	my @problems;
	if ($s->{bad_framing})
	{
		push @problems, "server output badly framed: $s->{bad_framing}";
	}
	if ($s->{kind} eq 'canary' && ($s->{fail} || $why ne 'closed'))
	{
		push @problems, 'canary failed: ' . ($s->{fail} // $why);
	}
	# A session the server ends on its own must end with an ErrorResponse,
	# FATAL as core's.  Not judged: when we half-closed or sent a
	# Terminate, or when the connection was reset (the server closed with
	# our data unread, so the kernel may have dropped its last message).
	if ($s->{kind} eq 'msg' && $s->{logged_in} && $s->{server_eof} && !$s->{we_shut}
		&& !sends_terminate($s->{fuzz_data}))
	{
		my $last = $s->{msgs}[-1];
		my $f = $last && $last->[0] eq 'E' ? fields($last->[1]) : undef;
		my $tail = join('', @types[ ($#types > 10 ? $#types - 10 : 0) .. $#types ]);
		if ($s->{read_error})
		{
			$stats{'closed_with_reset'}++;
		}
		elsif (!$f)
		{
			push @problems, "server closed the session without an ErrorResponse (last messages: $tail)";
			push @silent_close, $s->{i};
		}
		elsif (($f->{S} // '') ne 'FATAL')
		{
			push @problems, "server closed the session after an $f->{S} without the FATAL core sends (last messages: $tail; last error $f->{C} $f->{M})";
			push @no_fatal, "stream $s->{i}: ERROR $f->{C} $f->{M}";
		}
		else
		{
			$stats{'closed_with_fatal'}++;
		}
	}
	if ($s->{kind} eq 'auth')
	{
		my $ok = grep { $_->[0] eq 'Z' } @{ $s->{msgs} };
		my ($e) = @errs;
		$stats{"auth:$s->{mode}:" . ($ok ? 'in' : $e ? $e->{C} : 'no answer')}++;
		if ($s->{mode} eq 'correct' && !$ok && $why ne 'closed' && $why ne 'closed_rst')
		{
			push @problems, "the right $s->{user} password did not log in ("
			  . ($e ? "$e->{C} $e->{M}" : $why) . ')';
		}
		if ($s->{mode} eq 'wrong' && $ok)
		{
			push @problems, "a wrong $s->{user} password logged in";
		}
		if ($s->{mode} eq 'wrong' && $e && $e->{C} ne '28P01')
		{
			push @problems, "a wrong $s->{user} password got $e->{C} $e->{M}, not 28P01";
		}
		my $st = $s->{auth_state};
		if ($ok && !($st->{legit} && $st->{secrets} > 0))
		{
			push @problems, "logged in as $s->{user} ($s->{mode}) without the right answer"
			  . ($st->{secrets} ? '' : ' (no password was asked)');
		}
	}
	if ($s->{login_failed})
	{
		push @login_fail, "stream $s->{i}: $s->{login_failed}";
	}
	my ($k) = grep { $_->[0] eq 'K' } @{ $s->{msgs} // [] };
	my $line = sprintf("%5d %-7s %-12s %s t %6.2f+%5.2f pid %-6s sent %7d recv %7d types %s%s",
		$s->{i}, $s->{kind}, $why, $s->{unix} ? 'U' : 'T', $s->{t0} - $^T, time() - $s->{t0},
		$k ? unpack('N', $k->[1]) : '-', length($s->{sent} // ''), $s->{in_total} // 0,
		substr(join('', @types), 0, 60),
		$fatal ? ' ' . scalar(@errs) . " err(s), last $fatal->{S} $fatal->{C} $fatal->{M}" : '');
	$line .= "  PROBLEM: " . join('; ', @problems) if @problems;
	print $streams_log "$line\n" if $streams_log;
	if (@problems)
	{
		push @failures, "stream $s->{i} ($s->{kind}): " . join('; ', @problems)
		  . "\n  sent:\n" . hexdump($s->{sent}, 256)
		  unless @problems == 1 && $problems[0] =~ /without the FATAL core sends/;
	}
	if (@ONLY)
	{
		note($line);
		note("sent:\n" . hexdump($s->{sent}, 4096));
		my $recv = join(' ', map { $_->[0] =~ /^[EN]$/ ? "$_->[0]\{" . (fields($_->[1])->{S} // '') . ' ' . (fields($_->[1])->{C} // '') . ' ' . (fields($_->[1])->{M} // '') . '}' : $_->[0] } @{ $s->{msgs} });
		$recv =~ s/((\w) (?:\2 ){3,})/"$2*" . (length($1) \/ 2) . ' '/ge;
		note('received: ' . $recv
			  . ($s->{parse_on} ? '' : ' raw: ' . hexdump($s->{in}, 1024)));
	}
	return;
}

my $unix_dir;    # the pool's unix socket directory
my @live_keys;   # [pid, key] of recent fuzz sessions (never canaries)

# CancelRequests aimed at live executors: fill in the placeholders
sub fill_cancel_placeholders
{
	my ($s) = @_;
	return unless @live_keys;
	my ($pid, $key) = @{ $live_keys[ $s->{i} % @live_keys ] };
	for my $a (@{ $s->{script} })
	{
		next unless $a->[0] eq 'send';
		my $ph = pack('N', PID_PLACEHOLDER);
		next unless index($a->[1], $ph) >= 0;
		$a->[1] =~ s/\Q$ph\E/pack('N', $pid)/ge;
		my $kph = pack('N', KEY_PLACEHOLDER);
		$a->[1] =~ s/\Q$kph\E/pack('N', $key)/ge;
		$stats{'cancel_to_live_executor'}++;
	}
	return;
}

sub start_stream
{
	my ($i, $port) = @_;
	my $s = gen_stream($i);
	fill_cancel_placeholders($s);
	$s->{pc} = 0;
	$s->{in} = '';
	$s->{in_total} = 0;
	$s->{out} = '';
	$s->{sent} = '';
	$s->{msgs} = [];
	$s->{parse_on} = $s->{kind} ne 'startup'
	  && !grep { $_->[0] eq 'expect_byte' } @{ $s->{script} };
	$s->{t0} = time();
	# until the login is through (msg streams), the login's own timeout
	my ($login) = grep { $_->[0] eq 'await_rfq' } @{ $s->{script} };
	$s->{deadline_at} = $s->{t0} + $s->{deadline} + ($s->{kind} eq 'msg' && $login ? $login->[1] : 0);
	my $sock = $s->{unix} && $unix_dir
	  ? IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => "$unix_dir/.s.PGSQL.$port")
	  : IO::Socket::INET->new(
		PeerHost => '127.0.0.1',
		PeerPort => $port,
		Proto => 'tcp',
		Timeout => 10);
	if (!$sock)
	{
		$s->{sock} = undef;
		push @failures, "stream $i: cannot connect to the pool port"
		  . ($s->{unix} ? ' (unix socket)' : '') . ": $!";
		finish($s, 'connect_failed');
		return $s;
	}
	binmode $sock;
	$sock->blocking(0);
	setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1) unless $s->{unix};
	$s->{sock} = $sock;
	return $s;
}

sub try_write
{
	my ($s) = @_;
	while ($s->{sock} && length $s->{out})
	{
		my $n = syswrite($s->{sock}, $s->{out}, 65536);
		if (!defined $n)
		{
			return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
			$s->{write_error} = "$!";
			$s->{out} = '';
			return;
		}
		substr($s->{out}, 0, $n, '');
	}
	return;
}

sub try_read
{
	my ($s) = @_;
	return unless $s->{sock};
	for (1 .. 16)
	{
		my $chunk;
		my $n = sysread($s->{sock}, $chunk, 262144);
		if (!defined $n)
		{
			return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
			$s->{server_eof} = 1;
			$s->{read_error} = "$!";
			return;
		}
		if ($n == 0)
		{
			$s->{server_eof} = 1;
			return;
		}
		$s->{in} .= $chunk;
		$s->{in_total} += $n;
		$s->{last_data} = time();
	}
	return;
}

# Runs the stream's actions until one has to wait.  Returns the time at
# which it wants to be looked at again (undef: on socket activity).
sub step
{
	my ($s, $now) = @_;
	while (!$s->{done})
	{
		if ($now > $s->{deadline_at})
		{
			$s->{login_failed} = 'no ReadyForQuery in time'
			  if $s->{waiting_login};
			finish($s, 'deadline');
			return undef;
		}
		my $a = $s->{script}[ $s->{pc} ];
		if (!$a)
		{
			finish($s, 'end');
			return undef;
		}
		my $op = $a->[0];
		if ($op eq 'send')
		{
			if ($s->{server_eof} || $s->{write_error})
			{
				# the server is done with us: what it sent is what counts
				$s->{pc}++ while $s->{script}[ $s->{pc} ] && $s->{script}[ $s->{pc} ][0] =~ /^(send|sleep)$/;
				next;
			}
			$s->{out} .= $a->[1];
			$s->{sent} .= $a->[1];
			try_write($s);
			$s->{pc}++;
		}
		elsif ($op eq 'sleep')
		{
			$s->{wake} //= $now + $a->[1];
			return $s->{wake} if $now < $s->{wake};
			delete $s->{wake};
			$s->{pc}++;
		}
		elsif ($op eq 'expect_byte')
		{
			if (length $s->{in} >= 1)
			{
				my $b = substr($s->{in}, 0, 1, '');
				if ($b ne $a->[1])
				{
					# an ErrorResponse instead: parse the rest as messages
					$s->{in} = $b . $s->{in};
					$s->{parse_on} = 1;
					if ($s->{kind} eq 'msg')
					{
						$s->{login_failed} = sprintf('answer 0x%02x to an SSL/GSS request', ord $b);
					}
					finish($s, 'no_N');
					return undef;
				}
				$s->{parse_on} = 1 if $s->{kind} ne 'startup';
				$s->{pc}++;
				next;
			}
			if ($s->{server_eof})
			{
				$s->{login_failed} = 'EOF instead of the answer to an SSL/GSS request'
				  if $s->{kind} ne 'startup';
				finish($s, 'eof');
				return undef;
			}
			return undef;
		}
		elsif ($op eq 'await_rfq')
		{
			my $tag = $a->[2] // '';
			$s->{waiting_login} = 1 if $tag eq 'login';
			$s->{await_from} //= $s->{mark} // 0;
			$s->{await_deadline} //= $now + $a->[1];
			parse_in($s);
			my $msgs = $s->{msgs};
			my $z;
			for my $k ($s->{await_from} .. $#$msgs)
			{
				if ($msgs->[$k][0] eq 'Z') { $z = $k; last; }
			}
			if (defined $z)
			{
				$s->{range} = [ $s->{await_from}, $z ];
				$s->{mark} = $z + 1;
				delete $s->{await_from};
				delete $s->{await_deadline};
				if ($tag eq 'login' || $tag eq 'soft')
				{
					if ($s->{kind} eq 'msg')
					{
						my ($k) = grep { $_->[0] eq 'K' } @$msgs;
						push @live_keys, [ unpack('N N', $k->[1]) ] if $k;
						shift @live_keys while @live_keys > 50;
					}
					$s->{logged_in} = 1;
					delete $s->{waiting_login};
					# the stream's own time starts once it is in
					$s->{deadline_at} = $now + $s->{deadline}
					  if $s->{kind} ne 'canary';
				}
				$s->{pc}++;
				next;
			}
			if ($s->{server_eof} || $s->{bad_framing} || $now > $s->{await_deadline})
			{
				my ($e) = map { fields($_->[1]) } grep { $_->[0] eq 'E' } @{$msgs}[ $s->{await_from} .. $#$msgs ];
				my $why = $s->{bad_framing} ? 'bad framing' : $s->{server_eof} ? 'EOF' : 'timeout';
				$why .= " after $e->{S} $e->{C} $e->{M}" if $e;
				if ($tag eq 'login')
				{
					$s->{login_failed} = "login: $why";
				}
				elsif ($tag eq 'soft')
				{
					# pipelined fuzz behind the startup: an error is fine,
					# but the login itself must have worked
					$s->{logged_in} = grep { $_->[0] eq 'K' } @$msgs;
					$s->{login_failed} = "login (pipelined): $why" unless $s->{logged_in};
				}
				else
				{
					$s->{fail} = "no ReadyForQuery: $why";
				}
				finish($s, $tag eq 'soft' && $s->{logged_in} ? ($s->{server_eof} ? 'eof' : 'quiet') : 'await_failed');
				return undef;
			}
			return $s->{await_deadline};
		}
		elsif ($op eq 'auth')
		{
			# the next AuthenticationRequest gets the generator's answer;
			# anything else ends the exchange
			$s->{auth_from} //= $s->{mark} // 0;
			# a server waiting for the rest of a truncated answer: go on
			# to the final action after a second
			$s->{auth_deadline} //= $now + 1;
			parse_in($s);
			my $msgs = $s->{msgs};
			my $k = $s->{auth_from};
			if ($k <= $#$msgs)
			{
				my ($type, $body) = @{ $msgs->[$k] };
				$s->{mark} = $k + 1;
				delete $s->{auth_from};
				delete $s->{auth_deadline};
				my $code = $type eq 'R' ? unpack('N', $body) : -1;
				if ($code == 0 || $code == -1)
				{
					# AuthenticationOk, or an error: no more answers
					$s->{pc}++ while $s->{script}[ $s->{pc} ] && $s->{script}[ $s->{pc} ][0] eq 'auth';
					next;
				}
				my $bytes = $a->[1]->($code, substr($body, 4));
				if (defined $bytes && !$s->{server_eof})
				{
					$s->{out} .= $bytes;
					$s->{sent} .= $bytes;
					try_write($s);
				}
				$s->{pc}++;
				next;
			}
			if ($s->{server_eof} || $s->{bad_framing})
			{
				finish($s, 'eof');
				return undef;
			}
			if ($now >= $s->{auth_deadline})
			{
				delete $s->{auth_from};
				delete $s->{auth_deadline};
				$s->{pc}++ while $s->{script}[ $s->{pc} ] && $s->{script}[ $s->{pc} ][0] eq 'auth';
				next;
			}
			return $s->{auth_deadline};
		}
		elsif ($op eq 'check')
		{
			my $err = $a->[1]->($s);
			if ($err)
			{
				$s->{fail} = $err;
				finish($s, 'check_failed');
				return undef;
			}
			$s->{pc}++;
		}
		elsif ($op eq 'drain')
		{
			my $quiet = $a->[1];
			if ($s->{server_eof} || $s->{write_error})
			{
				finish($s, $s->{server_eof} ? 'eof' : 'write_error');
				return undef;
			}
			if ($s->{kind} eq 'startup' && $s->{in} =~ /Z\0\0\0\x05[ITE]\z/)
			{
				# a session started: say goodbye
				$s->{started_session} = 1;
				$stats{'startup:session_started'}++;
				syswrite($s->{sock}, "X\0\0\0\x04");
				finish($s, 'session');
				return undef;
			}
			$s->{drain_t0} //= $now;
			my $last = $s->{last_data} // 0;
			$last = $s->{drain_t0} if $last < $s->{drain_t0};
			# a ReadyForQuery last: the server is most likely done
			parse_in($s);
			$quiet = 0.08 if @{ $s->{msgs} } && $s->{msgs}[-1][0] eq 'Z' && $quiet > 0.08;
			return $last + $quiet if $now < $last + $quiet || length $s->{out};
			finish($s, 'quiet');
			return undef;
		}
		elsif ($op eq 'shutdown')
		{
			try_write($s);
			shutdown($s->{sock}, 1) if $s->{sock};
			$s->{we_shut} = 1;
			$s->{pc}++;
		}
		elsif ($op eq 'close')
		{
			try_write($s);
			if ($a->[1] && $s->{sock})
			{
				setsockopt($s->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
			}
			finish($s, $a->[1] ? 'closed_rst' : 'closed');
			return undef;
		}
		else
		{
			die "unknown action $op";
		}
	}
	return undef;
}

# run_fuzz(PORT, INDICES, LOG_CHECK): runs the streams; LOG_CHECK is called
# about once a second and returns true to stop early (a crash).
sub run_fuzz
{
	my ($port, $indices, $log_check) = @_;
	my @todo = @$indices;
	my %active;    # i -> stream
	my $t_end = time() + $TIME_LIMIT;
	my $next_log_check = time() + 1;
	my $started = 0;
	my $stopped_early;
	my @recent;    # [i, t0] of the last streams started

	while (@todo || %active)
	{
		my $now = time();
		if ($now >= $next_log_check)
		{
			$next_log_check = $now + 1;
			if ($log_check->())
			{
				$stopped_early = 'crash';
				@todo = ();
				my @susp = map { $_->[0] } grep { $_->[1] > $now - 3 } @recent;
				diag('crash detected; streams active or started in the last 3 s: '
					  . join(',', sort { $a <=> $b } (keys %active, @susp))
					  . " (replay one with BP_FUZZ_SEED=$SEED BP_FUZZ_ONLY=<i>)");
				for my $i (sort { $a <=> $b } keys %active)
				{
					diag("stream $i sent so far:\n" . hexdump($active{$i}{sent}, 512));
				}
			}
		}
		if (@todo && $now >= $t_end)
		{
			note('time limit reached: ' . scalar(@todo) . ' streams not started');
			$stats{not_started} = scalar @todo;
			$stopped_early = 'time';
			@todo = ();
		}
		while (@todo && keys(%active) < $CONC)
		{
			my $i = shift @todo;
			my $s = start_stream($i, $port);
			$started++;
			push @recent, [ $i, $now ];
			shift @recent while @recent > 200;
			$active{$i} = $s unless $s->{done};
		}

		my $wake = $now + 0.05;
		for my $i (keys %active)
		{
			my $s = $active{$i};
			try_read($s) if $s->{sock};
			my $w = step($s, $now);
			if ($s->{done})
			{
				delete $active{$i};
				next;
			}
			$w = $s->{deadline_at} if !defined $w || $w > $s->{deadline_at};
			$wake = $w if $w < $wake;
		}
		last unless @todo || %active;

		my $rsel = IO::Select->new;
		my $wsel = IO::Select->new;
		for my $s (values %active)
		{
			next unless $s->{sock};
			$rsel->add($s->{sock});
			$wsel->add($s->{sock}) if length $s->{out};
		}
		my $left = $wake - time();
		$left = 0.001 if $left < 0.001;
		my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $left);
		if ($w && @$w)
		{
			my %ws = map { fileno($_) => 1 } @$w;
			for my $s (values %active)
			{
				try_write($s) if $s->{sock} && $ws{ fileno($s->{sock}) };
			}
		}
	}
	return ($started, $stopped_early);
}

##########################################################################
# The test
##########################################################################

my $pool_size = 4;
my $node = pool_node(
	'fuzz',
	size => $pool_size,
	max_worker_processes => 32,
	conf => "log_statement = none\nmax_connections = 30\n");
# password methods over TCP for the fuzzed auth roles; the rest as before
open(my $hba, '>', $node->data_dir . '/pg_hba.conf') or die $!;
print $hba "local all all trust\n"
  . "host all fz_pw 127.0.0.1/32 password\n"
  . "host all fz_md5 127.0.0.1/32 md5\n"
  . "host all fz_scram 127.0.0.1/32 scram-sha-256\n"
  . "host all all 127.0.0.1/32 trust\n";
close $hba;
$node->start;
setup_app($node);
my $pp = $node->pool_port;
$node->safe_psql('postgres', q{
	CREATE ROLE fz_pw LOGIN PASSWORD 'pw_secret';
	CREATE ROLE fz_scram LOGIN PASSWORD 'scram_secret';
	SET password_encryption = 'md5';
	CREATE ROLE fz_md5 LOGIN PASSWORD 'md5_secret';
	RESET password_encryption;
	GRANT ALL ON DATABASE app TO fz_pw, fz_md5, fz_scram;
});

pool_serves_ok($node);

$node->safe_psql('app', q{
	CREATE TABLE fz (a int);
	ALTER TABLE fz OWNER TO app;
	CREATE SEQUENCE fzseq;
	ALTER SEQUENCE fzseq OWNER TO app;
});
pgbench_init($node);

# roles renamed (the old name re-created, the renamed one made superuser)
# and dropped while their pools live: startup packets name them
$node->safe_psql('postgres', 'CREATE ROLE fz_ren LOGIN; CREATE ROLE fz_drop LOGIN');
{
	my @held = map { PoolTest::Raw->new(port => $pp) } 1 .. 2;
	ok($held[0]->login(user => 'fz_ren', database => 'app'), 'fz_ren logs in through the pool');
	ok($held[1]->login(user => 'fz_drop', database => 'app'), 'fz_drop logs in through the pool');
	$node->safe_psql('postgres', q{
		ALTER ROLE fz_ren RENAME TO fz_ren_old;
		ALTER ROLE fz_ren_old SUPERUSER;
		CREATE ROLE fz_ren LOGIN;
		DROP ROLE fz_drop;
	});
	for my $c (@held)
	{
		my $r = $c->read_result(10);
		is(PoolTest::Raw::sqlstate($r), '57P01', 'its idle session ends as the pool is retired');
		$c->close;
	}
}

my $listener_pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'});
like($listener_pid, qr/^\d+$/, 'listener pid');
my $accepted0 = $node->safe_psql('postgres', 'SELECT accepted FROM pool_listener_stats()');

# the log from here on
my $logfile = $node->logfile;
my $log_offset = -s $logfile;
my $crashed = 0;
my $log_check = sub {
	return 1 if $crashed;
	open(my $fh, '<', $logfile) or return 0;
	seek($fh, $log_offset, 0);
	local $/;
	my $new = <$fh> // '';
	close $fh;
	$crashed = 1 if $new =~ $PoolTest::CRASH_RE;
	return $crashed;
};

my $slog = "$PostgreSQL::Test::Utils::log_path/014_fuzz_streams.log";
open($streams_log, '>', $slog) or die "cannot write $slog: $!";
$streams_log->autoflush(1);
print $streams_log "seed $SEED\n";

my @indices = @ONLY ? @ONLY : (0 .. $N - 1);
my $t0 = time();
# BP_FUZZ_TARGET=main fuzzes the main port instead: core's behaviour, for
# comparison (the pool-specific checks below then fail or mean nothing)
my $target = ($ENV{BP_FUZZ_TARGET} // '') eq 'main' ? $node->port : $pp;
$unix_dir = $node->host;
note("fuzzing port $target" . ($target == $pp ? ' (pool)' : ' (main port: control run)'));
my ($started, $stopped) = run_fuzz($target, \@indices, $log_check);
my $elapsed = time() - $t0;
close $streams_log;
$streams_log = undef;
$log_check->();

note(sprintf('%d streams in %.1f s (seed %d); outcomes:', $started, $elapsed, $SEED));
note("  $_: $stats{$_}") for sort keys %stats;
note("per-stream log: $slog");

ok(!$crashed, 'no crash while fuzzing');
cmp_ok($started, '>=', @ONLY ? scalar(@ONLY) : ($N < 500 ? $N : 500),
	"enough streams ran ($started)");
is(scalar(@failures), 0, 'no stream problem (canaries, output framing, closes without ErrorResponse)')
  or diag(join("\n", @failures[ 0 .. ($#failures > 30 ? 30 : $#failures) ]));
is(scalar(@silent_close), 0, 'the server never closed a session without an ErrorResponse')
  or diag('streams: ' . join(',', @silent_close));
is(scalar(@no_fatal), 0,
	'a session the server closes after an ERROR gets the FATAL core sends (terminating connection because protocol synchronization was lost)')
  or diag(scalar(@no_fatal) . " streams (replay with BP_FUZZ_ONLY; compare with BP_FUZZ_TARGET=main):\n"
	  . join("\n", @no_fatal[ 0 .. ($#no_fatal > 10 ? 10 : $#no_fatal) ]));
is(scalar(@login_fail), 0, 'every valid login succeeded')
  or diag(join("\n", @login_fail[ 0 .. ($#login_fail > 30 ? 30 : $#login_fail) ]));
cmp_ok($stats{'canary:closed'} // 0, '>=', @ONLY ? 0 : int($started / 10) - 1,
	'the canaries ran to their end');

# sessions, locks and transactions left behind
ok( wait_until(
		sub {
			$node->safe_psql('postgres', 'SELECT coalesce(sum(sessions), 0) FROM pool_status()') eq '0';
		},
		20),
	'no pool session left after the fuzz')
  or do
{
	diag('sessions left: '
		  . join('; ', map { "executor $_->{pid}: $_->{sessions} sessions ($_->{state}, active $_->{active}, waiting $_->{waiting}, pinned $_->{pinned})" }
			  $node->pool_status));
	for my $row ($node->pool_status)
	{
		my @fds = glob("/proc/$row->{pid}/fd/*");
		diag("executor $row->{pid}: " . scalar(@fds) . ' open files');
	}
	if ($ENV{BP_FUZZ_PAUSE})
	{
		diag("pausing $ENV{BP_FUZZ_PAUSE} s for inspection (BP_FUZZ_PAUSE)");
		sleep $ENV{BP_FUZZ_PAUSE};
	}
	# a lost wakeup shows as sessions that go away once something else
	# wakes the executors up
	my @c = map { PoolTest::Raw->new(port => $pp) } 1 .. 2 * $pool_size;
	$_->login(user => 'app', database => 'app') for @c;
	$_->query('SELECT pg_sleep(0.2)') for @c;
	$_->terminate for @c;
	my $gone = wait_until(
		sub {
			$node->safe_psql('postgres', 'SELECT coalesce(sum(sessions), 0) FROM pool_status()') eq '0';
		},
		5);
	diag($gone
		? 'the left sessions went away once new sessions used the executors (a lost wakeup?)'
		: 'the left sessions stay even after new sessions used the executors');
};
ok( wait_until(
		sub {
			$node->safe_psql('postgres', q{
				SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
				WHERE a.backend_type = 'builtin_pool executor'
				  AND l.locktype NOT IN ('virtualxid')}) eq '0';
		},
		20),
	'executors hold no lock')
  or diag($node->safe_psql('postgres', q{
				SELECT l.* FROM pg_locks l JOIN pg_stat_activity a USING (pid)
				WHERE a.backend_type = 'builtin_pool executor'}));
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'builtin_pool executor' AND state LIKE 'idle in transaction%'}),
	'0',
	'no executor idle in transaction');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'no prepared transaction left');

my @st = $node->pool_status("database = 'app' AND role = 'app'");
cmp_ok(scalar(@st), '>=', 1, 'pool_status shows executors of the app pool');
# executors beyond the size (reserve ones, ones a pin left) retire once idle
ok( wait_until(
		sub {
			scalar($node->pool_status("database = 'app' AND role = 'app'")) <= $pool_size;
		},
		30),
	"at most $pool_size executors once those beyond the size retired");
is($node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'builtin_pool listener'}),
	$listener_pid, 'the listener is the same process');
my $accepted1 = $node->safe_psql('postgres', 'SELECT accepted FROM pool_listener_stats()');
cmp_ok($accepted1 - $accepted0, '>=', $started - ($stats{'startup:connect_failed'} // 0) - ($stats{'msg:connect_failed'} // 0),
	'the listener counted every connection');

my ($ret, $out, $err) = $node->pool_psql('app', 'SELECT 6 * 7', timeout => 30);
is("$ret/$out", '0/42', 'psql through the pool works') or diag($err);
is($node->pool_safe_psql('app', q{SELECT current_user || '|' || current_setting('is_superuser')},
		user => 'fz_ren'),
	'fz_ren|off', 'the re-created fz_ren logs in as itself');
($ret, $out, $err) = $node->pool_psql('app', 'SELECT 1', user => 'fz_drop', timeout => 30);
like($err, qr/role "fz_drop" does not exist/, 'the dropped fz_drop is refused');

# pgbench -S through the pool
{
	my ($pout, $perr) = ('', '');
	my @cmd = ('pgbench', '-n', '-S', '-M', 'simple', '-c', '20', '-j', '2', '-T', '3',
		'-h', '127.0.0.1', '-p', $pp, '-U', 'app', 'app');
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', \$pout, '2>', \$perr,
		IPC::Run::timeout(90));
	eval { $h->finish; };
	my $timed_out = $@ ? 1 : 0;
	$h->kill_kill if $timed_out;
	note("pgbench -S:\n$pout\n$perr");
	ok(!$timed_out, 'pgbench -S finished in time');
	is($h->result(0), 0, 'pgbench -S exit code 0');
	like($pout, qr/number of failed transactions: 0\b/, 'pgbench -S: 0 failed transactions');
	like($pout, qr/number of transactions actually processed: [1-9]/, 'pgbench -S processed transactions');
}

# the server log
{
	my $log = slurp_file($logfile);
	my $tail = substr($log, $log_offset);
	my @restarts = $log =~ /all server processes terminated; reinitializing/g;
	is(scalar(@restarts), 0, 'no postmaster crash-restart');
	my @signal = $log =~ /(.*terminated by signal.*)/g;
	is(scalar(@signal), 0, 'no process terminated by a signal') or diag(join("\n", @signal));
	my @panic = $log =~ /(.*PANIC.*)/g;
	is(scalar(@panic), 0, 'no PANIC') or diag(join("\n", @panic));
	my @exits = $tail =~ /(.*background worker "builtin_pool[^"]*" \(PID \d+\) exited with exit code [1-9].*)/g;
	is(scalar(@exits), 0, 'no pool worker exited with an error while fuzzing')
	  or diag(join("\n", @exits));
	my @errs = $tail =~ /(.*(?:FATAL|ERROR):.*)/g;
	note(scalar(@errs) . ' ERROR/FATAL lines in the log during the fuzz (expected: they are the clients\')');
}

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
