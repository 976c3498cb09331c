/*-------------------------------------------------------------------------
 *
 * tls.h
 *	  TLS on the pool port: the listener's OpenSSL context and handshake,
 *	  and the record writer both the listener and the executors use.
 *
 * A TLS session is split by direction.  The listener does the handshake
 * with OpenSSL and keeps reading the client's records with it for the
 * whole session (relay.c), passing plaintext to the executor over a
 * socketpair; core's pqcomm reads that like any socket.  What the server
 * sends never goes through the listener: the server's TLS 1.3 traffic key
 * travels with the session (BpTlsWriter, in PoolHandoff) and whoever
 * serves the session seals its records and writes them to the client's
 * TCP socket itself.  The pool port offers TLS 1.2 and 1.3 with the AEAD
 * ciphers AES-GCM and ChaCha20-Poly1305 only, whose records are simple to
 * write, and no renegotiation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BP_TLS_H
#define BP_TLS_H

#include "lib/stringinfo.h"

/* The server's sending state of a TLS session; plain data, copyable */
typedef struct BpTlsWriter
{
	uint16		suite;			/* cipher suite id, 0 = no TLS */
	uint16		version;		/* 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3) */
	uint8		cipher;			/* BP_TLS_AES128GCM, ... */
	uint8		key_len;
	uint8		iv_len;			/* 12, or 4 (TLS 1.2 AES-GCM's salt) */
	uint8		key[32];
	uint8		iv[12];
	uint64		seq;			/* sequence number of the next record */
} BpTlsWriter;

#define BP_TLS_AES128GCM	1
#define BP_TLS_AES256GCM	2
#define BP_TLS_CHACHA20		3

/* A writer's cipher context, created on first use (OpenSSL memory) */
typedef struct BpTlsSealer
{
	BpTlsWriter w;
	void	   *evp;
} BpTlsSealer;

/*
 * Appends len bytes to out as TLS records.  False, with nothing appended,
 * if OpenSSL failed (errno EPROTO) or if the records would take the key
 * past its limit (RFC 8446 section 5.5; errno EMSGSIZE): the session must
 * then end, with bp_tls_seal_goodbye.
 */
extern bool bp_tls_seal(BpTlsSealer *s, const char *data, size_t len,
						StringInfo out);

/*
 * Appends the end of a TLS session to out: error (a FATAL ErrorResponse,
 * may be empty) then close_notify, on records kept for that.  False if s
 * is no TLS sealer or cannot seal.
 */
extern bool bp_tls_seal_goodbye(BpTlsSealer *s, const char *error,
								size_t error_len, StringInfo out);

/* The same, sent to fd without blocking; true if all of it went */
extern bool bp_tls_send_goodbye(BpTlsSealer *s, int fd, const char *error,
								size_t error_len);

/* Frees the cipher context and wipes the key: the sealer is done */
extern void bp_tls_sealer_free(BpTlsSealer *s);

/* builtin_pool.tls_record_limit (developer setting; 0: RFC 8446's) */
extern int	bp_tls_record_limit;

/*
 * Sends len bytes to fd without blocking, sealed when s is a TLS sealer
 * (s may be NULL), for short messages (the listener's, and errors to a
 * session that is not switched in).  Returns true if all of it went; else
 * errno says why (EWOULDBLOCK for a short send).
 */
extern bool bp_tls_send_quick(BpTlsSealer *s, int fd, const char *data,
							  size_t len);

/* ---- listener only ---- */

typedef enum BpTlsStep
{
	BP_TLS_DONE,
	BP_TLS_WANT_READ,
	BP_TLS_WANT_WRITE,
	BP_TLS_FAILED				/* logged */
} BpTlsStep;

typedef struct ssl_st BpSsl;	/* OpenSSL's SSL */

/* (Re)loads the server's ssl settings; at listener start and on SIGHUP */
extern void bp_tls_configure(bool at_start);

/* true if SSLRequest on the pool port is answered 'S' */
extern bool bp_tls_enabled(void);

/* A server-side TLS connection on fd, before its handshake */
extern BpSsl *bp_tls_open(int fd);
extern BpTlsStep bp_tls_handshake(BpSsl *ssl);

/* After the handshake: the writer for the server's records */
extern bool bp_tls_writer(BpSsl *ssl, BpTlsWriter *w);

/*
 * Reads decrypted data like recv(): > 0 bytes, 0 at the client's
 * close_notify or EOF, -1 with errno EAGAIN (nothing readable) or another
 * errno (a TLS error, logged as COMMERROR).
 */
extern ssize_t bp_tls_read(BpSsl *ssl, void *buf, size_t len);

/* Bytes decrypted and buffered inside OpenSSL */
extern int	bp_tls_pending(BpSsl *ssl);

/* Reads from fd from now on (a dup of the socket it was opened on) */
extern void bp_tls_set_read_fd(BpSsl *ssl, int fd);

/* Protocol and cipher, for the log */
extern const char *bp_tls_describe(BpSsl *ssl);
/* The cipher's secret bits, as pg_stat_ssl and log_connections show them */
extern int	bp_tls_cipher_bits(BpSsl *ssl);

/* Whether the client sent a certificate that verified against ssl_ca_file */
extern bool bp_tls_peer_verified(BpSsl *ssl);
/* The certificate's CN (palloc'd), or NULL */
extern char *bp_tls_peer_cn(BpSsl *ssl);

extern void bp_tls_close(BpSsl *ssl);

#endif							/* BP_TLS_H */
