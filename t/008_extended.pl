
# Copyright (c) builtin_pool authors
#
# The extended query protocol through the pool port, compared message for
# message with a real backend on the main port.
#
# A raw protocol client (IO::Socket::INET, messages built by hand) sends the
# same bytes to a dedicated backend (main port) and to a pooled session
# (pool port) and compares the replies: the sequence of message types and,
# where deterministic, their contents (RowDescription, DataRow,
# CommandComplete, ParameterDescription, FunctionCallResponse,
# ReadyForQuery status, the S, C and M fields of ErrorResponse and
# NoticeResponse).  BackendKeyData is ignored, ParameterStatus values are
# compared only for settings that do not depend on the connection.
#
# Covered: unnamed and named Parse with declared, partly declared and
# inferred parameter types; Bind with text, binary and NULL parameters and
# per-column result formats; Describe statement ('t' then 'T' or 'n') and
# portal; Execute with a row limit (PortalSuspended, then Execute again);
# named portals surviving Sync inside a transaction block; Close statement
# and portal; Sync with status I, T and E; Flush (replies without Sync);
# errors in the middle of a pipeline (everything skipped until Sync);
# pipelined streams (many Parse/Bind/Execute/Sync in one packet, several
# Syncs in a row, 1 MB results, pipelines arriving 7 and 1 bytes at a time); BEGIN / COMMIT through Execute; an error at COMMIT time
# raised by Sync (deferred constraint); empty query (EmptyQueryResponse);
# FunctionCall with text and binary arguments and results; COPY TO and FROM
# through Execute; notices and ParameterStatus inside the extended
# protocol; SQL PREPARE / EXECUTE / DEALLOCATE crossing with protocol
# statements; the error cases: unknown statement (26000) and portal (34000),
# duplicate statement (42P05), wrong parameter count and format counts
# (08P01), bad binary data (22P03), multiple commands (42601), undetermined
# parameter type (42P18), aborted transaction (25P02); log_statement = all
# logs each Execute as core does.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PoolTest;
use Test::More;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time usleep);

###########################################################################
# Message builders (frontend)
###########################################################################

sub fe_msg
{
	my ($type, $payload) = @_;
	return $type . pack('N', 4 + length $payload) . $payload;
}

# Parse: statement name, query, parameter type OIDs (0 = infer)
sub P
{
	my ($name, $query, @oids) = @_;
	return fe_msg('P',
		"$name\0$query\0" . pack('n', scalar @oids) . join('', map { pack('N', $_) } @oids));
}

# Bind: portal, statement, param formats (array ref), params (array ref,
# undef = NULL, raw bytes otherwise), result formats (array ref)
sub B
{
	my ($portal, $stmt, $pformats, $params, $rformats) = @_;
	$pformats //= [];
	$params //= [];
	$rformats //= [];
	my $b = "$portal\0$stmt\0";
	$b .= pack('n', scalar @$pformats) . join('', map { pack('n', $_) } @$pformats);
	$b .= pack('n', scalar @$params);
	for my $v (@$params)
	{
		$b .= defined $v ? pack('N', length $v) . $v : pack('l>', -1);
	}
	$b .= pack('n', scalar @$rformats) . join('', map { pack('n', $_) } @$rformats);
	return fe_msg('B', $b);
}

# Describe / Close: kind 'S' (statement) or 'P' (portal), name
sub D { my ($kind, $name) = @_; return fe_msg('D', "$kind$name\0"); }
sub C { my ($kind, $name) = @_; return fe_msg('C', "$kind$name\0"); }

# Execute: portal, row limit (0 = all)
sub E { my ($portal, $max) = @_; return fe_msg('E', "$portal\0" . pack('N', $max // 0)); }

sub S { return fe_msg('S', ''); }
sub H { return fe_msg('H', ''); }
sub Q { my ($sql) = @_; return fe_msg('Q', "$sql\0"); }

# FunctionCall: function OID, argument formats, arguments (undef = NULL),
# result format
sub F
{
	my ($oid, $aformats, $args, $rformat) = @_;
	my $b = pack('N', $oid);
	$b .= pack('n', scalar @$aformats) . join('', map { pack('n', $_) } @$aformats);
	$b .= pack('n', scalar @$args);
	for my $v (@$args)
	{
		$b .= defined $v ? pack('N', length $v) . $v : pack('l>', -1);
	}
	$b .= pack('n', $rformat // 0);
	return fe_msg('F', $b);
}

sub copy_data { return fe_msg('d', $_[0]); }
sub copy_done { return fe_msg('c', ''); }

###########################################################################
# Reading and normalizing replies
###########################################################################

sub printable
{
	my ($v) = @_;
	return 'NULL' unless defined $v;
	return $v if $v =~ /^[\x20-\x7e]*$/;
	return '0x' . unpack('H*', $v);
}

sub fields_str
{
	my ($body) = @_;
	my $f = PoolTest::Raw::parse_fields($body);
	return join(',', map { "$_=" . ($f->{$_} // '') } qw(S C M));
}

# table OID -> name, for the per-connection copies of the tables
my %oid_alias;

# Settings whose reported value does not depend on the connection
my %stable_guc = map { $_ => 1 } qw(server_encoding client_encoding DateStyle
  IntervalStyle integer_datetimes standard_conforming_strings server_version
  TimeZone is_superuser session_authorization application_name
  default_transaction_read_only in_hot_standby);

# One backend message as a comparable string (undef: not compared)
sub norm
{
	my ($type, $body) = @_;
	if ($type eq 'E' || $type eq 'N')
	{
		return "$type(" . fields_str($body) . ')';
	}
	if ($type eq 'T')
	{
		my $n = unpack('n', $body);
		my $pos = 2;
		my @cols;
		for (1 .. $n)
		{
			my $end = index($body, "\0", $pos);
			my $name = substr($body, $pos, $end - $pos);
			$pos = $end + 1;
			my ($tab, $att, $typ, $len, $mod, $fmt) =
			  unpack('N n N s> l> n', substr($body, $pos, 18));
			$pos += 18;
			$tab = $oid_alias{$tab} // $tab;
			push @cols, "$name:$tab:$att:$typ:$len:$mod:$fmt";
		}
		return 'T[' . join(',', @cols) . ']';
	}
	if ($type eq 'D')
	{
		return 'D[' . join(',', map { printable($_) } @{ PoolTest::Raw::parse_datarow($body) }) . ']';
	}
	if ($type eq 't')
	{
		my ($n, @oids) = unpack('n N*', $body);
		return "t[@oids]";
	}
	if ($type eq 'C')
	{
		(my $tag = $body) =~ s/\0$//;
		return "C($tag)";
	}
	if ($type eq 'V')
	{
		return unpack('l>', $body) < 0 ? 'V(NULL)' : 'V(' . printable(substr($body, 4)) . ')';
	}
	if ($type eq 'S')
	{
		my ($name, $value) = split /\0/, $body;
		$value //= '';
		return $stable_guc{$name} ? "S($name=$value)" : "S($name)";
	}
	if ($type eq 'K')
	{
		return undef;
	}
	return $type . (length $body ? '(' . printable($body) . ')' : '');
}

# read_replies(CONN, %opt): reads messages until opt{z} ReadyForQuery
# (default 1), or opt{count} messages, or opt{until} (a type letter) is
# seen, or EOF / timeout.  Returns a hash ref: msgs => [ [type, body] ],
# norm => [ strings ], types => 'letters', timed_out, eof.
sub read_replies
{
	my ($c, %o) = @_;
	my $want_z = $o{z} // 1;
	my $deadline = time() + ($o{timeout} // 10);
	my $r = { msgs => [], norm => [], types => '' };
	my $z = 0;
	while (1)
	{
		last if $want_z > 0 && $z >= $want_z;
		last if $o{count} && @{ $r->{msgs} } >= $o{count};
		my $left = $deadline - time();
		my ($type, $body) = $c->read_msg($left > 0 ? $left : 0.001);
		if (!defined $type)
		{
			$r->{timed_out} = $c->{timed_out};
			$r->{eof} = $c->{eof};
			last;
		}
		push @{ $r->{msgs} }, [ $type, $body ];
		$r->{types} .= $type;
		my $n = norm($type, $body);
		push @{ $r->{norm} }, $n if defined $n;
		$z++ if $type eq 'Z';
		last if $o{until} && $type eq $o{until};
	}
	return $r;
}

###########################################################################
# The node, two connections
###########################################################################

my $node = pool_node('extended', size => 2);
$node->start;
setup_app($node);
my $pp = $node->pool_port;

pool_serves_ok($node);

# t is shared and read only; the tables written to exist twice, in schema
# sm for the main port connection and sp for the pool port connection
# (search_path), so that both sides see the same effects.
$node->safe_psql('app', q{
	CREATE TABLE t (id int PRIMARY KEY, name text, val numeric, b bytea, arr int[]);
	INSERT INTO t SELECT i, 'name' || i, i * 1.5, decode(lpad(to_hex(i), 4, '0'), 'hex'), ARRAY[i, i + 1]
	  FROM generate_series(1, 20) i;
	ALTER TABLE t OWNER TO app;
});
for my $schema (qw(sm sp))
{
	$node->safe_psql('app', qq{
		CREATE SCHEMA $schema AUTHORIZATION app;
		SET ROLE app;
		SET search_path = $schema;
		CREATE TABLE ins (id int, note text);
		CREATE TABLE dparent (id int PRIMARY KEY);
		CREATE TABLE dchild (pid int REFERENCES dparent DEFERRABLE INITIALLY DEFERRED);
		CREATE TABLE cp (a int, b text);
	});
}

# RowDescription names a column's table by OID: the two copies of a table
# compare equal under their name.
for my $r ($node->main_rows('app',
		q{SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('sm', 'sp')}))
{
	$oid_alias{ $r->[0] } = "<$r->[1]>";
}

my $int4pl = $node->safe_psql('app', q{SELECT 'int4pl(int4,int4)'::regprocedure::oid});
my $textcat = $node->safe_psql('app', q{SELECT 'textcat(text,text)'::regprocedure::oid});
my $backend_pid_oid = $node->safe_psql('app', q{SELECT 'pg_backend_pid()'::regprocedure::oid});
my $upper_oid = $node->safe_psql('app', q{SELECT 'upper(text)'::regprocedure::oid});

# connect(port): a logged-in raw connection
sub connect_raw
{
	my ($port, $label, $schema) = @_;
	my $c = PoolTest::Raw->new(host => '127.0.0.1', port => $port, timeout => 10);
	# small writes leave at once (the chunked pipelines below)
	setsockopt($c->sock, IPPROTO_TCP, TCP_NODELAY, 1) or die "TCP_NODELAY: $!";
	$c->login(user => 'app', database => 'app', application_name => 'ext')
	  or die "login through $label failed: " . explain($c->{startup});
	my $r = $c->query("SET search_path = $schema, public");
	die "SET search_path through $label failed" unless $r->{complete} && !@{ $r->{errors} };
	return $c;
}

my $M = connect_raw($node->port, 'main port', 'sm');
my $P = connect_raw($pp, 'pool port', 'sp');

# startup: same message sequence (ignoring how many ParameterStatus), same
# reported settings, same stable values
{
	my ($ms, $ps) = ($M->{startup}, $P->{startup});
	(my $mt = $ms->{types}) =~ s/S+/S/g;
	(my $pt = $ps->{types}) =~ s/S+/S/g;
	is($pt, $mt, "startup message sequence ($mt)");
	my %mp = map { @$_ } @{ $ms->{param_status} };
	my %pp_ = map { @$_ } @{ $ps->{param_status} };
	is_deeply([ sort keys %pp_ ], [ sort keys %mp ], 'same settings reported at startup');
	is_deeply({ map { $_ => $pp_{$_} } grep { $stable_guc{$_} } keys %mp },
		{ map { $_ => $mp{$_} } grep { $stable_guc{$_} } keys %mp },
		'same values of the connection-independent settings');
	is($ps->{status}, 'I', 'pool: ReadyForQuery I after startup');
}

my $pool_pid = $P->query_value('SELECT pg_backend_pid()');
like($pool_pid, qr/^\d+$/, "pool session's executor pid $pool_pid");

# both(NAME, BYTES, %opt): sends BYTES to both connections, reads the
# replies (see read_replies) and compares them.  Returns (main, pool)
# replies.
sub both
{
	my ($name, $bytes, %o) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my %res;
	for my $side ([ main => $M ], [ pool => $P ])
	{
		my ($label, $c) = @$side;
		if ($o{chunk})
		{
			# in small pieces, messages split anywhere, with pauses
			for (my $off = 0; $off < length $bytes; $off += $o{chunk})
			{
				$c->send_bytes(substr($bytes, $off, $o{chunk}))
				  or die "$name: send to $label failed";
				usleep(2000);
			}
		}
		else
		{
			$c->send_bytes($bytes) or die "$name: send to $label failed";
		}
		$res{$label} = read_replies($c, %o);
	}
	my ($m, $p) = @res{qw(main pool)};
	my $shown = join(' ', @{ $m->{norm} });
	$shown = substr($shown, 0, 400) . '...' if length $shown > 400;
	note "$name: main $shown";
	if ($m->{timed_out} || $m->{eof})
	{
		fail("$name: the main port answered (test bug)");
	}
	ok(!$p->{timed_out} && !$p->{eof}, "$name: pool answered in time")
	  or diag("$name: pool " . ($p->{eof} ? 'closed the connection' : 'timed out')
		  . " after: @{ $p->{norm} }");
	if ($o{types_only})
	{
		is($p->{types}, $m->{types}, "$name: same message types as the main port");
		return ($m, $p);
	}
	is_deeply($p->{norm}, $m->{norm}, "$name: same replies as the main port")
	  or diag("main: @{ $m->{norm} }\npool: @{ $p->{norm} }");
	return ($m, $p);
}

# resync(): if a comparison went wrong, get both connections back to a
# known state: a Sync, then drain until quiet, then ROLLBACK.
sub resync
{
	for my $c ($M, $P)
	{
		$c->send_bytes(S() . Q('ROLLBACK'));
		while (1)
		{
			my ($t) = $c->read_msg(1);
			last unless defined $t;
		}
	}
	return;
}

sub types_of { return $_[0]{types}; }

###########################################################################
# Parse, Describe, Bind, Execute
###########################################################################

my ($m, $p);

# unnamed Parse, inferred parameter types
($m, $p) = both('unnamed parse, inferred types',
	P('', 'SELECT id, name, val FROM t WHERE id > $1 AND name <> $2 ORDER BY id')
	  . D('S', '')
	  . B('', '', [], [ '17', 'name19' ], [])
	  . D('P', '')
	  . E('', 0)
	  . S());
is(types_of($m), '1tT2TDDCZ', 'main: 1 t T 2 T D D C Z');
like($m->{norm}[1], qr/^t\[23 25\]$/, 'main: inferred int4, text');

# named Parse with declared types
($m, $p) = both('named parse, declared types',
	P('s_decl', 'SELECT $1 || $2 AS cat, $3 + 1 AS next', 25, 25, 20)
	  . D('S', 's_decl')
	  . B('', 's_decl', [0], [ 'ab', 'cd', '41' ], [])
	  . E('', 0)
	  . S());
is($m->{norm}[1], 't[25 25 20]', 'main: declared text, text, int8');

# partly declared (0 = infer)
both('named parse, partly declared types',
	P('s_part', 'SELECT $1::text AS a, $2 + 1.5 AS b', 0, 1700)
	  . D('S', 's_part')
	  . B('', 's_part', [], [ 'x', '2' ], [])
	  . E('', 0)
	  . S());

# statement without result: 't' then 'n'
($m, $p) = both('describe statement without result',
	P('s_ins', 'INSERT INTO ins VALUES ($1, $2)')
	  . D('S', 's_ins')
	  . B('', 's_ins', [], [ '1', 'one' ], [])
	  . D('P', '')
	  . E('', 0)
	  . S());
is(types_of($m), '1tn2nCZ', 'main: 1 t n 2 n C Z');

# binary parameters (int4, text, bytea, int4[] as text), NULL, and
# per-column result formats
both('bind binary params, per-column result formats',
	P('s_bin', 'SELECT id, name, b, arr, val, $3::text IS NULL AS n FROM t WHERE id = $1 OR name = $2 ORDER BY id', 23, 25, 25)
	  . B('', 's_bin', [ 1, 1, 0 ], [ pack('l>', 3), 'name5', undef ], [ 0, 1, 1, 0, 1, 0 ])
	  . D('P', '')
	  . E('', 0)
	  . S());

both('bind: one binary format for all params and results',
	B('', 's_bin', [1], [ pack('l>', 7), 'name8', 'z' ], [1])
	  . D('P', '')
	  . E('', 0)
	  . S());

both('bind: text params, all results text (zero format codes)',
	B('', 's_bin', [], [ '9', 'name10', undef ], [])
	  . E('', 0)
	  . S());

# binary int8 / float8 / bool / date parameters
both('binary parameters of several types',
	P('', 'SELECT $1::int8 * 2, $2::float8 / 2, NOT $3::bool, $4::date + 1', 20, 701, 16, 1082)
	  . B('', '', [1], [ pack('q>', 1 << 40), pack('d>', 3.5), "\1", pack('l>', 8000) ], [1])
	  . E('', 0)
	  . S());

###########################################################################
# Row limits, PortalSuspended
###########################################################################

($m, $p) = both('execute with row limit, suspended, execute again',
	P('', 'SELECT g, g * 2 FROM generate_series(1, 10) g')
	  . B('', '', [], [], [])
	  . E('', 3)
	  . E('', 3)
	  . E('', 0)
	  . S());
is(types_of($m), '12DDDsDDDsDDDDCZ', 'main: 3 rows, s, 3 rows, s, 4 rows, C');

both('row limit equal to the row count',
	P('', 'SELECT g FROM generate_series(1, 4) g')
	  . B('', '', [], [], [])
	  . E('', 4)
	  . E('', 4)
	  . S());

both('execute a completed portal again',
	P('', 'SELECT 1')
	  . B('', '', [], [], [])
	  . E('', 0)
	  . E('', 0)
	  . S());

# named portals inside a transaction block survive Sync
($m, $p) = both('named portal across Syncs in a transaction block',
	Q('BEGIN')
	  . P('s_ser', 'SELECT g FROM generate_series(1, 7) g')
	  . B('cur1', 's_ser', [], [], [1])
	  . E('cur1', 2)
	  . S()
	  . E('cur1', 2)
	  . S()
	  . D('P', 'cur1')
	  . E('cur1', 0)
	  . C('P', 'cur1')
	  . S()
	  . E('cur1', 1)
	  . S()
	  . Q('COMMIT'),
	z => 6);
is(join('', map { $_->[0] eq 'Z' ? $_->[1] : '' } @{ $m->{msgs} }), 'TTTTEI',
	'main: statuses T T T T E(rror) I');

both('portal is gone after its transaction',
	B('cur2', 's_ser', [], [], [])
	  . S()
	  . E('cur2', 0)
	  . S(),
	z => 2);

###########################################################################
# Close
###########################################################################

both('close statement, then bind to it',
	C('S', 's_decl')
	  . B('', 's_decl', [], [ 'a', 'b', '1' ], [])
	  . E('', 0)
	  . S());

both('close absent statement and portal: CloseComplete',
	C('S', 'never_was') . C('P', 'never_was') . C('S', '') . S());

both('close unnamed statement, bind to it',
	P('', 'SELECT 1') . C('S', '') . B('', '', [], [], []) . S());

both('close a statement whose portal is open, then execute the portal',
	Q('BEGIN')
	  . P('s_cl', 'SELECT g FROM generate_series(1, 3) g') . B('pcl', 's_cl', [], [], [])
	  . C('S', 's_cl') . E('pcl', 0) . S() . Q('COMMIT'),
	z => 3);

both('unnamed statement survives Sync (new transaction)',
	P('', 'SELECT $1::int * 3') . S()
	  . B('', '', [], ['5'], []) . E('', 0) . S()
	  . B('', '', [], ['6'], []) . E('', 0) . S(),
	z => 3);

both('a simple Query drops the unnamed statement',
	P('', 'SELECT 1') . S() . Q('SELECT 2') . B('', '', [], [], []) . S(),
	z => 3);

both('close portal, execute it',
	P('', 'SELECT 1') . B('pc', '', [], [], []) . C('P', 'pc') . E('pc', 0) . S());

###########################################################################
# Sync and transaction status
###########################################################################

($m, $p) = both('sync statuses I, T, E',
	P('', 'SELECT 1') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'BEGIN') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'SELECT 1/0') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'SELECT 2') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'ROLLBACK') . B('', '', [], [], []) . E('', 0) . S(),
	z => 5);
is(join('', map { $_->[0] eq 'Z' ? $_->[1] : '' } @{ $m->{msgs} }), 'ITEEI',
	'main: statuses I T E E I');

both('several Syncs in a row',
	S() . S() . S(), z => 3);

both('sync alone inside a transaction block',
	Q('BEGIN') . S() . S() . Q('COMMIT'), z => 4);

###########################################################################
# Flush
###########################################################################

($m, $p) = both('flush sends replies without sync',
	P('', 'SELECT 42') . B('', '', [], [], []) . D('P', '') . E('', 0) . H(),
	z => 0, count => 5, timeout => 5);
is(types_of($m), '12TDC', 'main: replies to P B D E arrive on Flush');
both('sync after flush', S());

both('flush after parse only',
	P('s_fl', 'SELECT $1::int') . H(), z => 0, count => 1, timeout => 5);
both('bind / execute after flush, then sync',
	B('', 's_fl', [], ['5'], []) . E('', 0) . H(), z => 0, count => 3, timeout => 5);
both('sync', S());

###########################################################################
# Errors inside a pipeline
###########################################################################

($m, $p) = both('error in the middle of a pipeline: skip until Sync',
	P('', 'SELECT 1') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT 1/0') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT 3') . B('', '', [], [], []) . E('', 0)
	  . Q('SELECT 4')
	  . S()
	  . P('', 'SELECT 5') . B('', '', [], [], []) . E('', 0) . S(),
	z => 2);
is(types_of($m), '12DC1EZ12DCZ', 'main: error (at Bind: constant folding), rest skipped (even Query) until Sync');

($m, $p) = both('error in a pipeline inside a transaction block',
	Q('BEGIN')
	  . P('', 'INSERT INTO ins VALUES (2, $1)') . B('', '', [], ['two'], []) . E('', 0)
	  . P('', 'SELECT nosuchcolumn FROM ins') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT 3') . B('', '', [], [], []) . E('', 0)
	  . S()
	  . P('', 'SELECT 4') . B('', '', [], [], []) . E('', 0) . S()
	  . Q('ROLLBACK'),
	z => 4);
is(join('', map { $_->[0] eq 'Z' ? $_->[1] : '' } @{ $m->{msgs} }), 'TEEI',
	'main: statuses T E E I');

both('error while flushing: nothing more until Sync',
	P('', 'SELECT 1/0') . B('', '', [], [], []) . E('', 0) . H(),
	z => 0, count => 2, timeout => 5);
both('skipped messages after the flushed error, then Sync',
	P('', 'SELECT 2') . B('', '', [], [], []) . E('', 0) . H() . S());

# an error raised by Sync itself: the implicit transaction's COMMIT fails
# on a deferred foreign key.  Core sends ErrorResponse then ReadyForQuery:
# Sync is not an extended-protocol message for the skip-until-Sync rule.
($m, $p) = both('error raised at COMMIT by Sync (deferred constraint)',
	P('', 'INSERT INTO dchild VALUES (99)') . B('', '', [], [], []) . E('', 0) . S(),
	timeout => 5);
is(types_of($m), '12CEZ', 'main: C, then E and Z from Sync');
resync() if $p->{timed_out};

both('after the failed Sync commit',
	P('', 'SELECT count(*) FROM dchild') . B('', '', [], [], []) . E('', 0) . S());

($m, $p) = both('error raised by COMMIT through Execute (deferred constraint)',
	Q('BEGIN')
	  . P('', 'INSERT INTO dchild VALUES (98)') . B('', '', [], [], []) . E('', 0)
	  . P('', 'COMMIT') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT 1') . B('', '', [], [], []) . E('', 0)
	  . S(),
	z => 2, timeout => 5);
resync() if $p->{timed_out};

###########################################################################
# Pipelined streams
###########################################################################

{
	my $bytes = '';
	for my $i (1 .. 25)
	{
		$bytes .= P('', "SELECT $i, repeat('x', $i)") . B('', '', [], [], []) . E('', 0) . S();
	}
	($m, $p) = both('25 Parse/Bind/Execute/Sync in one packet', $bytes, z => 25);
	is(scalar(grep { $_->[0] eq 'D' } @{ $p->{msgs} }), 25, 'pool: 25 rows');
}

{
	my $bytes = P('s_pipe', 'INSERT INTO ins VALUES ($1, $2) RETURNING id');
	for my $i (1 .. 30)
	{
		$bytes .= B('', 's_pipe', [1, 0], [ pack('l>', 100 + $i), "n$i" ], [1]) . E('', 0);
	}
	$bytes .= S();
	both('30 Bind/Execute in one implicit transaction, one Sync', $bytes);
	both('pipelined inserts are there',
		P('', 'SELECT count(*), sum(id) FROM ins WHERE id > 100') . B('', '', [], [], []) . E('', 0) . S());
	both('clean up pipelined inserts',
		P('', 'DELETE FROM ins WHERE id > 100') . B('', '', [], [], []) . E('', 0) . S());
}

# a large pipelined burst with results big enough to fill socket buffers
{
	my $bytes = '';
	for my $i (1 .. 200)
	{
		$bytes .= B('', 's_ser', [], [], []) . E('', 0) . S();
	}
	my ($mm, $pp2) = both('200 Bind/Execute/Sync on a named statement', $bytes, z => 200, timeout => 30);
}

{
	my $big = P('', q{SELECT g, repeat('y', 500) FROM generate_series(1, 2000) g})
	  . B('', '', [], [], []) . E('', 0) . S();
	my ($mm, $px) = both('large result (1 MB) through Execute', $big x 3, z => 3, timeout => 30);
}

# the same pipelines, arriving in pieces: 7 bytes at a time
both('pipeline sent 7 bytes at a time',
	P('s_chunk', 'SELECT $1::int + $2::int', 23, 23)
	  . B('', 's_chunk', [ 0, 1 ], [ '40', pack('l>', 2) ], [1]) . D('P', '') . E('', 0) . S()
	  . P('', 'SELECT 1/0') . B('', '', [], [], []) . E('', 0)
	  . B('', 's_chunk', [], [ '1', '2' ], []) . E('', 0) . S()
	  . Q('SELECT 3') . C('S', 's_chunk') . S(),
	z => 4, chunk => 7);
both('pipeline sent 1 byte at a time',
	P('', q{SELECT 'tiny', $1::text}) . B('', '', [], ['steps'], []) . E('', 0) . S(),
	chunk => 1);

###########################################################################
# Transactions through the extended protocol
###########################################################################

($m, $p) = both('BEGIN / INSERT / COMMIT, one Sync each',
	P('', 'BEGIN') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'INSERT INTO ins VALUES (3, $1)') . B('', '', [], ['three'], []) . E('', 0) . S()
	  . P('', 'COMMIT') . B('', '', [], [], []) . E('', 0) . S(),
	z => 3);
is(join('', map { $_->[0] eq 'Z' ? $_->[1] : '' } @{ $m->{msgs} }), 'TTI', 'main: T T I');

both('BEGIN / INSERT / COMMIT in one pipeline',
	P('', 'BEGIN') . B('', '', [], [], []) . E('', 0)
	  . P('', 'INSERT INTO ins VALUES (4, $1)') . B('', '', [], ['four'], []) . E('', 0)
	  . P('', 'COMMIT') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT count(*) FROM ins WHERE id IN (3, 4)') . B('', '', [], [], []) . E('', 0)
	  . S());

is($node->safe_psql('app', 'SELECT (SELECT count(*) FROM sm.ins WHERE id IN (3, 4)), (SELECT count(*) FROM sp.ins WHERE id IN (3, 4))'),
	'2|2', 'rows committed through both ports');

both('ROLLBACK inside extended protocol discards',
	P('', 'BEGIN') . B('', '', [], [], []) . E('', 0)
	  . P('', 'INSERT INTO ins VALUES (5, $1)') . B('', '', [], ['five'], []) . E('', 0)
	  . P('', 'ROLLBACK') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT count(*) FROM ins WHERE id = 5') . B('', '', [], [], []) . E('', 0)
	  . S());

both('aborted block: only ROLLBACK runs',
	Q('BEGIN') . Q('SELECT 1/0')
	  . P('', 'SELECT 1') . S()
	  . P('s_rb', 'ROLLBACK') . S()
	  . D('S', 's_rb') . S()
	  . B('', 's_rb', [], [], []) . E('', 0) . S(),
	z => 6);

both('SAVEPOINT / ROLLBACK TO through Execute',
	P('', 'BEGIN') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SAVEPOINT sp') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT 1/0') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'ROLLBACK TO sp') . B('', '', [], [], []) . E('', 0)
	  . P('', 'SELECT 7') . B('', '', [], [], []) . E('', 0)
	  . P('', 'COMMIT') . B('', '', [], [], []) . E('', 0) . S(),
	z => 2);

# implicit transaction: a statement failing after an earlier one rolls
# both back (one Sync = one transaction)
both('implicit transaction rolled back by a later error',
	P('', 'INSERT INTO ins VALUES (6, $1)') . B('', '', [], ['six'], []) . E('', 0)
	  . P('', 'SELECT 1/0') . B('', '', [], [], []) . E('', 0) . S()
	  . P('', 'SELECT count(*) FROM ins WHERE id = 6') . B('', '', [], [], []) . E('', 0) . S(),
	z => 2);

# statements that cannot run in a transaction block commit at once
both('VACUUM through Execute (needs immediate commit)',
	P('', 'VACUUM ins') . B('', '', [], [], []) . E('', 0) . S());
both('VACUUM after another statement in the same pipeline fails',
	P('', 'SELECT 1') . B('', '', [], [], []) . E('', 0)
	  . P('', 'VACUUM ins') . B('', '', [], [], []) . E('', 0) . S());

###########################################################################
# Empty query, notices, ParameterStatus, COPY
###########################################################################

($m, $p) = both('empty query: EmptyQueryResponse',
	P('', '') . D('S', '') . B('', '', [], [], []) . D('P', '') . E('', 0) . S());
is(types_of($m), '1tn2nIZ', 'main: 1 t n 2 n I Z');

both('empty named statement',
	P('s_empty', '   ') . B('', 's_empty', [], [], []) . E('', 0) . S());

both('notice inside the extended protocol',
	P('', q{DO $$BEGIN RAISE NOTICE 'hello %', 1; RAISE WARNING 'careful'; END$$})
	  . B('', '', [], [], []) . E('', 0) . S());

both('SET through Execute reports ParameterStatus',
	P('', q{SET application_name = 'ext2'}) . B('', '', [], [], []) . E('', 0) . S()
	  . P('', q{SELECT current_setting('application_name')}) . B('', '', [], [], []) . E('', 0) . S(),
	z => 2);

both('SET LOCAL in a pipeline, gone after Sync',
	P('', q{BEGIN}) . B('', '', [], [], []) . E('', 0)
	  . P('', q{SET LOCAL DateStyle = 'German'}) . B('', '', [], [], []) . E('', 0)
	  . P('', q{SELECT '2024-05-06'::date}) . B('', '', [], [], []) . E('', 0)
	  . P('', q{COMMIT}) . B('', '', [], [], []) . E('', 0) . S()
	  . P('', q{SELECT '2024-05-06'::date}) . B('', '', [], [], []) . E('', 0) . S(),
	z => 2);

($m, $p) = both('COPY TO STDOUT through Execute',
	P('', 'COPY (SELECT id, name FROM t WHERE id <= 3 ORDER BY id) TO STDOUT')
	  . B('', '', [], [], []) . E('', 0) . S());
is(types_of($m), '12HdddcCZ', 'main: CopyOutResponse, 3 CopyData, CopyDone');

($m, $p) = both('COPY FROM STDIN through Execute',
	P('', 'COPY cp FROM STDIN') . B('', '', [], [], []) . E('', 0) . S(),
	z => 0, until => 'G', timeout => 5);
both('COPY FROM STDIN data',
	copy_data("1\tone\n2\ttwo\n") . copy_data("3\tthree\n") . copy_done() . S(), z => 1);
both('COPY FROM STDIN result',
	P('', 'SELECT count(*), string_agg(b, \',\' ORDER BY a) FROM cp') . B('', '', [], [], []) . E('', 0) . S());

###########################################################################
# FunctionCall
###########################################################################

($m, $p) = both('FunctionCall int4pl, text args, text result',
	F($int4pl, [0], [ '40', '2' ], 0));
is(types_of($m), 'VZ', 'main: V Z');
is($m->{norm}[0], 'V(42)', 'main: 42');

both('FunctionCall int4pl, binary args, binary result',
	F($int4pl, [1], [ pack('l>', 40), pack('l>', 2) ], 1));
both('FunctionCall int4pl, mixed arg formats',
	F($int4pl, [ 0, 1 ], [ '7', pack('l>', 8) ], 1));
both('FunctionCall textcat with a NULL argument (strict: NULL result)',
	F($textcat, [0], [ 'a', undef ], 0));
both('FunctionCall upper',
	F($upper_oid, [], ['abc'], 0));
both('FunctionCall: unknown function OID', F(4294967000, [0], ['1'], 0));
both('FunctionCall: wrong argument count', F($int4pl, [0], ['1'], 0));
both('FunctionCall: bad binary argument', F($int4pl, [1], [ 'xx', pack('l>', 1) ], 0));
both('FunctionCall in an aborted transaction block',
	Q('BEGIN') . Q('SELECT 1/0') . F($int4pl, [0], [ '1', '2' ], 0) . Q('ROLLBACK'), z => 4);
both('FunctionCall inside a transaction block',
	Q('BEGIN') . F($int4pl, [0], [ '1', '2' ], 0) . Q('COMMIT'), z => 3);

{
	my ($mm, $px) = both('FunctionCall pg_backend_pid (types only)',
		F($backend_pid_oid, [], [], 1), types_only => 1);
	my ($v) = grep { $_->[0] eq 'V' } @{ $px->{msgs} };
	my $pid = $v ? unpack('l>', substr($v->[1], 4)) : -1;
	is($pid, $P->query_value('SELECT pg_backend_pid()'),
		"pool: FunctionCall pg_backend_pid() is the executor's pid");
	cmp_ok($pid, '!=', $node->safe_psql('postgres', 'SELECT pg_backend_pid()'),
		'pool: not some other backend');
}

###########################################################################
# SQL-level and protocol-level statements together
###########################################################################

both('SQL PREPARE, then Bind/Execute it by protocol',
	Q('PREPARE sq1(int) AS SELECT $1 * 10')
	  . D('S', 'sq1') . B('', 'sq1', [], ['4'], []) . E('', 0) . S(),
	z => 2);
both('protocol Parse, then SQL EXECUTE it',
	P('pp1', 'SELECT $1::int + 100') . S() . Q('EXECUTE pp1(5)'), z => 2);
both('SQL DEALLOCATE of a protocol statement',
	Q('DEALLOCATE pp1') . B('', 'pp1', [], ['1'], []) . S(), z => 2);
both('protocol Close of an SQL statement',
	C('S', 'sq1') . S() . Q('EXECUTE sq1(1)'), z => 2);
both('DEALLOCATE ALL',
	P('pp2', 'SELECT 2') . P('pp3', 'SELECT 3') . S()
	  . Q('DEALLOCATE ALL')
	  . B('', 'pp2', [], [], []) . S()
	  . Q('PREPARE pp2 AS SELECT 22; EXECUTE pp2'),
	z => 4);
both('EXPLAIN EXECUTE of a protocol statement (through Execute)',
	P('pp4', 'SELECT * FROM t WHERE id = $1', 23)
	  . P('', 'EXPLAIN (COSTS OFF) EXECUTE pp4(1)') . B('', '', [], [], []) . E('', 0) . S());

both('EXPLAIN EXECUTE of an SQL statement through a simple Query',
	Q('PREPARE sx(int) AS SELECT * FROM t WHERE id = $1')
	  . Q('EXPLAIN (COSTS OFF) EXECUTE sx(2)')
	  . Q('CREATE TABLE ctas_x AS EXECUTE sx(3)')
	  . Q(q{SELECT id + 0, name || '' FROM ctas_x})
	  . Q('DROP TABLE ctas_x')
	  . Q('DEALLOCATE sx'),
	z => 6);

###########################################################################
# Error cases
###########################################################################

both('bind to unknown statement (26000)',
	B('', 'nosuch', [], [], []) . E('', 0) . S());
both('describe unknown statement (26000)', D('S', 'nosuch') . S());
both('describe unknown portal (34000)', D('P', 'nosuch') . S());
both('execute unknown portal (34000)', E('nosuch', 0) . S());
both('unnamed statement absent (26000)',
	C('S', '') . B('', '', [], [], []) . S());
both('duplicate statement name (42P05)',
	P('dup', 'SELECT 1') . P('dup', 'SELECT 2') . S() . B('', 'dup', [], [], []) . E('', 0) . S(),
	z => 2);
both('duplicate named portal (42P03)',
	Q('BEGIN') . B('pd', 'dup', [], [], []) . B('pd', 'dup', [], [], []) . S() . Q('ROLLBACK'),
	z => 3);
both('bind with too few parameters (08P01)',
	P('two', 'SELECT $1::int + $2::int') . B('', 'two', [], ['1'], []) . E('', 0) . S());
both('bind with too many parameters (08P01)',
	B('', 'two', [], [ '1', '2', '3' ], []) . S());
both('bind to unnamed statement with wrong count (08P01)',
	P('', 'SELECT $1::int') . B('', '', [], [], []) . S());
both('bind: parameter formats count mismatch (08P01)',
	B('', 'two', [ 0, 0, 0 ], [ '1', '2' ], []) . S());
both('bind: result formats count mismatch (08P01)',
	P('', 'SELECT 1, 2, 3') . B('', '', [], [], [ 0, 1 ]) . S());
both('bind: unsupported format code',
	B('', 'two', [2], [ '1', '2' ], []) . S());
both('bind: short binary int4 (08P01)',
	B('', 'two', [1], [ 'abc', pack('l>', 1) ], []) . S());
both('bind: long binary int4 (22P03)',
	B('', 'two', [1], [ 'abcde', pack('l>', 1) ], []) . S());
both('bind: bad text value (22P02)',
	B('', 'two', [0], [ 'abc', '1' ], []) . S());
both('parse: multiple commands (42601)',
	P('', 'SELECT 1; SELECT 2') . S());
both('parse: syntax error (42601)', P('', 'SELEC 1') . S());
both('parse: untyped parameter (text)', P('', 'SELECT $1') . D('S', '') . S());
both('parse: undetermined parameter type (42P18)', P('', 'SELECT $2::int') . S());
both('parse: unknown table (42P01)', P('', 'SELECT * FROM nosuchtable') . S());
both('parse: bad type OID', P('', 'SELECT $1', 4294967000) . S());
both('describe: invalid subtype (08P01)', fe_msg('D', "Xfoo\0") . S());
both('close: invalid subtype (08P01)', fe_msg('C', "Xfoo\0") . S());
both('execute a non-select with a row limit',
	P('', 'INSERT INTO ins VALUES (7, $1)') . B('', '', [], ['seven'], []) . E('', 1) . S());
both('runtime error in a later batch of a suspended portal',
	P('', 'SELECT 10 / (5 - g) FROM generate_series(1, 8) g') . B('', '', [], [], [])
	  . E('', 2) . E('', 10) . S());

###########################################################################
# The connections still work, nothing crashed
###########################################################################

both('final simple query', Q(q{SELECT 'still here', count(*) > 0 FROM t}));
is($P->query_value('SELECT pg_backend_pid()') =~ /^\d+$/ ? 1 : 0, 1,
	'pool connection still serves');

# log_statement = all (set by PostgreSQL::Test::Cluster) logs each Execute
# as core does: "execute <unnamed>: ..." / "execute NAME: ..."
{
	for my $side ([ main => $M ], [ pool => $P ])
	{
		my ($label, $c) = @$side;
		$c->send_bytes(P('', "SELECT 'log-marker-$label-unnamed'") . B('', '', [], [], []) . E('', 0)
			  . P("logstmt_$label", "SELECT 'log-marker-$label-named'") . B('', "logstmt_$label", [], [], []) . E('', 0)
			  . S());
		read_replies($c);
	}
	my $log = slurp_file($node->logfile);
	like($log, qr/LOG:  execute <unnamed>: SELECT 'log-marker-main-unnamed'/,
		'main: unnamed Execute logged (log_statement = all)');
	like($log, qr/LOG:  execute <unnamed>: SELECT 'log-marker-pool-unnamed'/,
		'pool: unnamed Execute logged like core (log_statement = all)');
	like($log, qr/LOG:  execute logstmt_pool: SELECT 'log-marker-pool-named'/,
		'pool: named Execute logged like core, under the client\'s statement name');
}

$M->terminate;
$P->terminate;

# a second pooled session in the same database was never disturbed
is($node->pool_safe_psql('app', 'SELECT count(*) FROM t'), '20',
	'another pooled session works');

check_no_crash($node);
$node->stop;
check_no_crash($node, 'after stop');

done_testing();
