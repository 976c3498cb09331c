/*-------------------------------------------------------------------------
 *
 * tls.c
 *	  TLS on the pool port (see tls.h): the listener's OpenSSL context,
 *	  built from the server's own ssl_* settings, the non-blocking
 *	  handshake, the export of the server's traffic key, and the TLS 1.3
 *	  record writer that the listener and the executors share.
 *
 * Core's context (be-secure-openssl.c) is private to it and its handshake
 * blocks, so the listener builds its own from the same settings, the way
 * be_tls_init() does, with three differences: only TLS 1.3, no session
 * tickets (the server's first application record is then number 0, which
 * the writer relies on), and a key-log callback through which OpenSSL
 * hands us the server's application traffic secret.  That secret never
 * leaves the server's processes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "libpq/libpq.h"
#include "port/pg_bswap.h"
#include "postmaster/postmaster.h"

#include "tls.h"

#define TLS_RECORD_MAX		16384	/* plaintext per record (2^14) */
#define TLS_TAG_LEN			16
#define TLS13_AES_128_GCM	0x1301
#define TLS13_AES_256_GCM	0x1302
#define TLS13_CHACHA20		0x1303

/* Per connection, as the SSL's app data: what the key log gave us */
typedef struct TlsSecret
{
	int			len;
	unsigned char secret[EVP_MAX_MD_SIZE];
} TlsSecret;

static SSL_CTX *bp_ssl_ctx = NULL;

/* ---------------------------------------------------------------------
 * The record writer (listener and executors)
 * ---------------------------------------------------------------------
 */

static const EVP_CIPHER *
suite_cipher(uint16 suite)
{
	switch (suite)
	{
		case TLS13_AES_128_GCM:
			return EVP_aes_128_gcm();
		case TLS13_AES_256_GCM:
			return EVP_aes_256_gcm();
		case TLS13_CHACHA20:
			return EVP_chacha20_poly1305();
	}
	return NULL;
}

/* Seals one record of at most TLS_RECORD_MAX bytes */
static bool
seal_record(BpTlsSealer *s, const char *data, size_t len, StringInfo out)
{
	EVP_CIPHER_CTX *ctx = s->evp;
	unsigned char nonce[12];
	unsigned char hdr[5];
	unsigned char inner_type = 23;	/* application_data */
	uint16		rlen = len + 1 + TLS_TAG_LEN;
	int			outl;
	int			i;
	char	   *dst;

	memcpy(nonce, s->w.iv, 12);
	for (i = 0; i < 8; i++)
		nonce[11 - i] ^= (s->w.seq >> (8 * i)) & 0xff;
	hdr[0] = 23;
	hdr[1] = 3;
	hdr[2] = 3;
	hdr[3] = rlen >> 8;
	hdr[4] = rlen & 0xff;

	enlargeStringInfo(out, 5 + rlen);
	memcpy(out->data + out->len, hdr, 5);
	dst = out->data + out->len + 5;
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
		EVP_EncryptUpdate(ctx, NULL, &outl, hdr, 5) != 1 ||
		EVP_EncryptUpdate(ctx, (unsigned char *) dst, &outl,
						  (const unsigned char *) data, len) != 1 ||
		EVP_EncryptUpdate(ctx, (unsigned char *) dst + len, &outl,
						  &inner_type, 1) != 1 ||
		EVP_EncryptFinal_ex(ctx, (unsigned char *) dst + len + 1, &outl) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS_TAG_LEN,
							dst + len + 1) != 1)
		return false;
	out->len += 5 + rlen;
	out->data[out->len] = '\0';
	s->w.seq++;
	return true;
}

bool
bp_tls_seal(BpTlsSealer *s, const char *data, size_t len, StringInfo out)
{
	if (s->evp == NULL)
	{
		const EVP_CIPHER *cipher = suite_cipher(s->w.suite);
		EVP_CIPHER_CTX *ctx;

		if (cipher == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL)
			return false;
		if (EVP_EncryptInit_ex(ctx, cipher, NULL, s->w.key, NULL) != 1)
		{
			EVP_CIPHER_CTX_free(ctx);
			return false;
		}
		s->evp = ctx;
	}
	while (len > 0)
	{
		size_t		chunk = Min(len, TLS_RECORD_MAX);

		if (!seal_record(s, data, chunk, out))
			return false;
		data += chunk;
		len -= chunk;
	}
	return true;
}

void
bp_tls_sealer_free(BpTlsSealer *s)
{
	if (s->evp)
		EVP_CIPHER_CTX_free(s->evp);
	s->evp = NULL;
}

void
bp_tls_send_quick(BpTlsSealer *s, int fd, const char *data, size_t len)
{
	StringInfoData sealed;

	if (s == NULL || s->w.suite == 0)
	{
		(void) send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		return;
	}
	initStringInfo(&sealed);
	if (bp_tls_seal(s, data, len, &sealed))
		(void) send(fd, sealed.data, sealed.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	pfree(sealed.data);
}

/* ---------------------------------------------------------------------
 * The listener's context
 * ---------------------------------------------------------------------
 */

/* OpenSSL's first error, as text */
static const char *
ssl_error_text(void)
{
	unsigned long code = ERR_get_error();
	const char *reason;

	ERR_clear_error();
	if (code == 0)
		return _("no SSL error reported");
	reason = ERR_reason_error_string(code);
	if (reason)
		return reason;
	return psprintf(_("SSL error code %lu"), code);
}

/* Keeps the server's traffic secret of the first generation */
static void
key_log(const SSL *ssl, const char *line)
{
	static const char label[] = "SERVER_TRAFFIC_SECRET_0 ";
	TlsSecret  *sec = SSL_get_app_data(ssl);
	const char *hex;
	int			n = 0;

	if (sec == NULL || strncmp(line, label, sizeof(label) - 1) != 0)
		return;
	hex = strchr(line + sizeof(label) - 1, ' ');
	if (hex == NULL)
		return;
	hex++;
	while (n < (int) sizeof(sec->secret) &&
		   isxdigit((unsigned char) hex[0]) && isxdigit((unsigned char) hex[1]))
	{
		unsigned int byte;

		if (sscanf(hex, "%2x", &byte) != 1)
			break;
		sec->secret[n++] = byte;
		hex += 2;
	}
	sec->len = n;
}

/* A passphrase-protected key cannot be unlocked here: refuse it */
static int
no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	return 0;
}

/* Loads the CA list and CRLs for client certificates, as core does */
static bool
load_client_ca(SSL_CTX *ctx)
{
	STACK_OF(X509_NAME) *names;

	if (ssl_ca_file[0] == '\0')
		return true;
	if (SSL_CTX_load_verify_locations(ctx, ssl_ca_file, NULL) != 1 ||
		(names = SSL_load_client_CA_file(ssl_ca_file)) == NULL)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool could not load root certificate file \"%s\": %s",
						ssl_ca_file, ssl_error_text())));
		return false;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, NULL);

	if (ssl_crl_file[0] || ssl_crl_dir[0])
	{
		X509_STORE *store = SSL_CTX_get_cert_store(ctx);

		if (store == NULL ||
			X509_STORE_load_locations(store,
									  ssl_crl_file[0] ? ssl_crl_file : NULL,
									  ssl_crl_dir[0] ? ssl_crl_dir : NULL) != 1)
		{
			ereport(LOG,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("builtin_pool could not load SSL certificate revocation list \"%s\": %s",
							ssl_crl_file[0] ? ssl_crl_file : ssl_crl_dir,
							ssl_error_text())));
			return false;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	return true;
}

/* A new context from the current settings, or NULL (logged) */
static SSL_CTX *
build_context(void)
{
	SSL_CTX    *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
	{
		ereport(LOG,
				(errmsg("builtin_pool could not create SSL context: %s",
						ssl_error_text())));
		return NULL;
	}
	if (ssl_max_protocol_version != 0 && ssl_max_protocol_version < PG_TLS1_3_VERSION)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool offers no SSL on the pool port: it speaks only TLSv1.3, and ssl_max_protocol_version is lower")));
		goto fail;
	}
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (SSL_CTX_use_certificate_chain_file(ctx, ssl_cert_file) != 1)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool could not load server certificate file \"%s\": %s",
						ssl_cert_file, ssl_error_text())));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, ssl_key_file, SSL_FILETYPE_PEM) != 1)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool could not load private key file \"%s\": %s",
						ssl_key_file, ssl_error_text()),
				 errhint("A key that needs a passphrase cannot be used on the pool port.")));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool: check of private key failed: %s",
						ssl_error_text())));
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
		!SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
	{
		ereport(LOG,
				(errmsg("builtin_pool could not set SSL protocol version to TLSv1.3")));
		goto fail;
	}
	/* a client that just goes away is an EOF, as on a plain connection */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
						SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSLPreferServerCiphers)
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSLECDHCurve[0] && SSL_CTX_set1_groups_list(ctx, SSLECDHCurve) != 1)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool: ECDH: unrecognized curve name: %s", SSLECDHCurve)));
		goto fail;
	}
	if (!load_client_ca(ctx))
		goto fail;
	SSL_CTX_set_keylog_callback(ctx, key_log);
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
bp_tls_configure(bool at_start)
{
	SSL_CTX    *ctx = NULL;

	if (EnableSSL)
	{
		ctx = build_context();
		if (ctx == NULL && !at_start && bp_ssl_ctx != NULL)
		{
			ereport(LOG,
					(errmsg("builtin_pool keeps its previous SSL configuration on the pool port")));
			return;
		}
	}
	/* connections in progress keep a reference to the old context */
	if (bp_ssl_ctx)
		SSL_CTX_free(bp_ssl_ctx);
	bp_ssl_ctx = ctx;
}

bool
bp_tls_enabled(void)
{
	return bp_ssl_ctx != NULL;
}

/* ---------------------------------------------------------------------
 * Connections (listener)
 * ---------------------------------------------------------------------
 */

BpSsl *
bp_tls_open(int fd)
{
	SSL		   *ssl;
	TlsSecret  *sec;

	Assert(bp_ssl_ctx != NULL);
	ssl = SSL_new(bp_ssl_ctx);
	if (ssl == NULL)
	{
		ereport(COMMERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("could not initialize SSL connection: %s",
						ssl_error_text())));
		return NULL;
	}
	sec = OPENSSL_zalloc(sizeof(TlsSecret));
	if (sec == NULL || SSL_set_fd(ssl, fd) != 1)
	{
		ereport(COMMERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("could not set SSL socket: %s", ssl_error_text())));
		OPENSSL_free(sec);
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_app_data(ssl, sec);
	return ssl;
}

BpTlsStep
bp_tls_handshake(BpSsl *ssl)
{
	int			r;
	int			err;

	ERR_clear_error();
	errno = 0;
	r = SSL_accept(ssl);
	if (r == 1)
	{
		/* from now on OpenSSL only reads: our writer sends (tls.h) */
		SSL_set0_wbio(ssl, BIO_new(BIO_s_null()));
		return BP_TLS_DONE;
	}
	err = SSL_get_error(ssl, r);
	switch (err)
	{
		case SSL_ERROR_WANT_READ:
			return BP_TLS_WANT_READ;
		case SSL_ERROR_WANT_WRITE:
			return BP_TLS_WANT_WRITE;
		case SSL_ERROR_SYSCALL:
			if (r < 0 && errno != 0)
				ereport(COMMERROR,
						(errcode_for_socket_access(),
						 errmsg("could not accept SSL connection: %m")));
			else
				ereport(COMMERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("could not accept SSL connection: EOF detected")));
			break;
		case SSL_ERROR_SSL:
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("could not accept SSL connection: %s",
							ssl_error_text()),
					 errhint("The pool port accepts TLSv1.3 only.")));
			break;
		case SSL_ERROR_ZERO_RETURN:
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("could not accept SSL connection: EOF detected")));
			break;
		default:
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unrecognized SSL error code: %d", err)));
			break;
	}
	return BP_TLS_FAILED;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 */
static bool
expand_label(const EVP_MD *md, const TlsSecret *sec, const char *label,
			 unsigned char *out, size_t len)
{
	unsigned char info[2 + 1 + 255 + 1];
	int			llen = 6 + strlen(label);
	size_t		outlen = len;
	EVP_PKEY_CTX *pctx;
	bool		ok;

	info[0] = len >> 8;
	info[1] = len & 0xff;
	info[2] = llen;
	memcpy(info + 3, "tls13 ", 6);
	memcpy(info + 9, label, llen - 6);
	info[3 + llen] = 0;			/* empty context */

	pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	ok = pctx != NULL &&
		EVP_PKEY_derive_init(pctx) > 0 &&
		EVP_PKEY_CTX_set_hkdf_mode(pctx, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) > 0 &&
		EVP_PKEY_CTX_set_hkdf_md(pctx, md) > 0 &&
		EVP_PKEY_CTX_set1_hkdf_key(pctx, sec->secret, sec->len) > 0 &&
		EVP_PKEY_CTX_add1_hkdf_info(pctx, info, 4 + llen) > 0 &&
		EVP_PKEY_derive(pctx, out, &outlen) > 0 &&
		outlen == len;
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

bool
bp_tls_writer(BpSsl *ssl, BpTlsWriter *w)
{
	TlsSecret  *sec = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const EVP_MD *md;
	const EVP_CIPHER *evp;

	memset(w, 0, sizeof(*w));
	if (sec == NULL || sec->len == 0 || cipher == NULL ||
		SSL_version(ssl) != TLS1_3_VERSION)
		return false;
	w->suite = SSL_CIPHER_get_protocol_id(cipher);
	evp = suite_cipher(w->suite);
	md = SSL_CIPHER_get_handshake_digest(cipher);
	if (evp == NULL || md == NULL || sec->len != EVP_MD_get_size(md))
		return false;
	w->key_len = EVP_CIPHER_get_key_length(evp);
	if (!expand_label(md, sec, "key", w->key, w->key_len) ||
		!expand_label(md, sec, "iv", w->iv, sizeof(w->iv)))
		return false;
	w->seq = 0;					/* no ticket was sent: see build_context */
	explicit_bzero(sec->secret, sizeof(sec->secret));
	return true;
}

ssize_t
bp_tls_read(BpSsl *ssl, void *buf, size_t len)
{
	int			r;
	int			err;

	ERR_clear_error();
	errno = 0;
	r = SSL_read(ssl, buf, len);
	if (r > 0)
		return r;
	err = SSL_get_error(ssl, r);
	switch (err)
	{
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SYSCALL:
			if (r < 0 && errno != 0)
				return -1;		/* the caller logs recv's error */
			return 0;			/* EOF without close_notify */
		case SSL_ERROR_SSL:
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("SSL error: %s", ssl_error_text())));
			errno = ECONNRESET;
			return -1;
		default:
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unrecognized SSL error code: %d", err)));
			errno = ECONNRESET;
			return -1;
	}
}

int
bp_tls_pending(BpSsl *ssl)
{
	return SSL_pending(ssl);
}

void
bp_tls_set_read_fd(BpSsl *ssl, int fd)
{
	(void) SSL_set_rfd(ssl, fd);
}

const char *
bp_tls_describe(BpSsl *ssl)
{
	return psprintf("%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

bool
bp_tls_peer_verified(BpSsl *ssl)
{
	X509	   *peer = SSL_get0_peer_certificate(ssl);

	return peer != NULL && SSL_get_verify_result(ssl) == X509_V_OK;
}

char *
bp_tls_peer_cn(BpSsl *ssl)
{
	X509	   *peer = SSL_get0_peer_certificate(ssl);
	char		cn[256];
	int			len;

	if (peer == NULL)
		return NULL;
	len = X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
									NID_commonName, cn, sizeof(cn));
	if (len < 0 || len >= (int) sizeof(cn) || strlen(cn) != (size_t) len)
		return NULL;			/* none, too long, or an embedded NUL */
	return pstrdup(cn);
}

void
bp_tls_close(BpSsl *ssl)
{
	TlsSecret  *sec;

	if (ssl == NULL)
		return;
	sec = SSL_get_app_data(ssl);
	if (sec)
	{
		explicit_bzero(sec, sizeof(*sec));
		OPENSSL_free(sec);
	}
	SSL_free(ssl);
}
