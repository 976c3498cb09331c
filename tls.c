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
 * be_tls_init() does, with three differences: only AEAD ciphers (AES-GCM,
 * ChaCha20-Poly1305) for TLS 1.2; no session tickets or resumption, so the
 * server's first application record has a known number (0 in TLS 1.3, 1 in
 * TLS 1.2, after its Finished); and a key-log callback through which
 * OpenSSL hands us a TLS 1.3 session's server traffic secret (TLS 1.2 keys
 * come from the master secret).  Secrets never leave the server's
 * processes.
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

#define TLS_ALERT			21	/* record content types */
#define TLS_APPLICATION_DATA 23

/*
 * RFC 8446 section 5.5: at most 2^24.5 full-size records may be protected
 * under one AES-GCM key; ChaCha20-Poly1305's limit lies beyond the 2^64
 * sequence numbers.  The executors hold the sending key, not the traffic
 * secret, so they cannot rekey: a session ends before its limit (see
 * bp_tls_seal).  TLS_RESERVED_RECORDS are kept for the goodbye: an
 * ErrorResponse and close_notify.
 */
#define TLS_AESGCM_MAX_RECORDS	(UINT64CONST(1) << 24)
#define TLS_RESERVED_RECORDS	2

/* builtin_pool.tls_record_limit, a developer setting: 0 = RFC 8446's */
int			bp_tls_record_limit = 0;

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
writer_cipher(uint8 cipher)
{
	switch (cipher)
	{
		case BP_TLS_AES128GCM:
			return EVP_aes_128_gcm();
		case BP_TLS_AES256GCM:
			return EVP_aes_256_gcm();
		case BP_TLS_CHACHA20:
			return EVP_chacha20_poly1305();
	}
	return NULL;
}

static void
put_uint64(unsigned char *p, uint64 v)
{
	int			i;

	for (i = 0; i < 8; i++)
		p[i] = (v >> (56 - 8 * i)) & 0xff;
}

/*
 * Seals one record of at most TLS_RECORD_MAX bytes.  TLS 1.3 hides the
 * content type inside and uses the header as additional data; TLS 1.2
 * authenticates sequence number, type, version and length, and AES-GCM
 * there sends an explicit nonce (our sequence number) before the data.
 */
static bool
seal_record(BpTlsSealer *s, unsigned char type, const char *data, size_t len,
			StringInfo out)
{
	EVP_CIPHER_CTX *ctx = s->evp;
	bool		tls13 = s->w.version == TLS1_3_VERSION;
	bool		explicit_nonce = !tls13 && s->w.iv_len == 4;
	unsigned char nonce[12];
	unsigned char aad[13];
	int			aad_len;
	unsigned char inner_type = type;
	uint16		rlen = (explicit_nonce ? 8 : 0) + len + (tls13 ? 1 : 0) + TLS_TAG_LEN;
	unsigned char *hdr;
	unsigned char *dst;
	int			outl;
	int			i;

	if (explicit_nonce)
	{
		memcpy(nonce, s->w.iv, 4);
		put_uint64(nonce + 4, s->w.seq);
	}
	else
	{
		memcpy(nonce, s->w.iv, 12);
		for (i = 0; i < 8; i++)
			nonce[11 - i] ^= (s->w.seq >> (8 * i)) & 0xff;
	}

	enlargeStringInfo(out, 5 + rlen);
	hdr = (unsigned char *) out->data + out->len;
	hdr[0] = tls13 ? TLS_APPLICATION_DATA : type;	/* 1.3 hides the type */
	hdr[1] = 3;
	hdr[2] = 3;
	hdr[3] = rlen >> 8;
	hdr[4] = rlen & 0xff;
	dst = hdr + 5;
	if (explicit_nonce)
	{
		memcpy(dst, nonce + 4, 8);
		dst += 8;
	}
	if (tls13)
	{
		memcpy(aad, hdr, 5);
		aad_len = 5;
	}
	else
	{
		put_uint64(aad, s->w.seq);
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = len >> 8;
		aad[12] = len & 0xff;
		aad_len = 13;
	}

	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
		EVP_EncryptUpdate(ctx, NULL, &outl, aad, aad_len) != 1 ||
		EVP_EncryptUpdate(ctx, dst, &outl, (const unsigned char *) data, len) != 1 ||
		(tls13 && EVP_EncryptUpdate(ctx, dst + len, &outl, &inner_type, 1) != 1) ||
		EVP_EncryptFinal_ex(ctx, dst + len + (tls13 ? 1 : 0), &outl) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS_TAG_LEN,
							dst + len + (tls13 ? 1 : 0)) != 1)
	{
		explicit_bzero(nonce, sizeof(nonce));
		return false;
	}
	explicit_bzero(nonce, sizeof(nonce));	/* derived from the secret IV */
	out->len += 5 + rlen;
	out->data[out->len] = '\0';
	s->w.seq++;
	return true;
}

/* Creates the sealer's cipher context on first use; false if OpenSSL fails */
static bool
sealer_ready(BpTlsSealer *s)
{
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *ctx;

	if (s->evp != NULL)
		return true;
	cipher = writer_cipher(s->w.cipher);
	if (cipher == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return false;
	if (EVP_EncryptInit_ex(ctx, cipher, NULL, s->w.key, NULL) != 1)
	{
		EVP_CIPHER_CTX_free(ctx);
		return false;
	}
	s->evp = ctx;
	return true;
}

/* Records the session's key may still seal, goodbye records included */
static uint64
records_left(const BpTlsSealer *s)
{
	uint64		limit = PG_UINT64_MAX;	/* ChaCha20: the sequence numbers */

	if (s->w.cipher != BP_TLS_CHACHA20)
		limit = TLS_AESGCM_MAX_RECORDS;
	if (bp_tls_record_limit > 0)
		limit = Min(limit, (uint64) bp_tls_record_limit);
	return s->w.seq >= limit ? 0 : limit - s->w.seq;
}

bool
bp_tls_seal(BpTlsSealer *s, const char *data, size_t len, StringInfo out)
{
	uint64		records = (len + TLS_RECORD_MAX - 1) / TLS_RECORD_MAX;

	if (records + TLS_RESERVED_RECORDS > records_left(s))
	{
		/* all or nothing, so that what went out ends on a message boundary */
		errno = EMSGSIZE;
		return false;
	}
	if (!sealer_ready(s))
	{
		errno = EPROTO;
		return false;
	}
	while (len > 0)
	{
		size_t		chunk = Min(len, TLS_RECORD_MAX);

		if (!seal_record(s, TLS_APPLICATION_DATA, data, chunk, out))
		{
			errno = EPROTO;
			return false;
		}
		data += chunk;
		len -= chunk;
	}
	return true;
}

bool
bp_tls_seal_goodbye(BpTlsSealer *s, const char *error, size_t error_len,
					StringInfo out)
{
	static const char close_notify[2] = {1, 0}; /* warning, close_notify */

	if (s->w.suite == 0 || records_left(s) < TLS_RESERVED_RECORDS ||
		!sealer_ready(s))
		return false;
	if (error_len > 0 && error_len <= TLS_RECORD_MAX &&
		!seal_record(s, TLS_APPLICATION_DATA, error, error_len, out))
		return false;
	return seal_record(s, TLS_ALERT, close_notify, sizeof(close_notify), out);
}

void
bp_tls_sealer_free(BpTlsSealer *s)
{
	if (s->evp)
		EVP_CIPHER_CTX_free(s->evp);	/* cleanses the key schedule */
	s->evp = NULL;
	explicit_bzero(&s->w, sizeof(s->w));
}

bool
bp_tls_send_goodbye(BpTlsSealer *s, int fd, const char *error, size_t error_len)
{
	StringInfoData sealed;
	bool		all;

	initStringInfo(&sealed);
	all = bp_tls_seal_goodbye(s, error, error_len, &sealed) &&
		send(fd, sealed.data, sealed.len, MSG_DONTWAIT | MSG_NOSIGNAL) == sealed.len;
	pfree(sealed.data);
	return all;
}

bool
bp_tls_send_quick(BpTlsSealer *s, int fd, const char *data, size_t len)
{
	StringInfoData sealed;
	ssize_t		n;
	bool		all;

	if (s == NULL || s->w.suite == 0)
	{
		n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		all = n == (ssize_t) len;
	}
	else
	{
		initStringInfo(&sealed);
		if (!bp_tls_seal(s, data, len, &sealed))
		{
			pfree(sealed.data);
			return false;
		}
		n = send(fd, sealed.data, sealed.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		all = n == sealed.len;
		pfree(sealed.data);
	}
	if (n >= 0 && !all)
		errno = EWOULDBLOCK;
	return all;
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
		explicit_bzero(&byte, sizeof(byte));
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

/* Our cipher code for an OpenSSL cipher, 0 if the writer cannot seal it */
static uint8
cipher_code(const SSL_CIPHER *c)
{
	switch (SSL_CIPHER_get_cipher_nid(c))
	{
		case NID_aes_128_gcm:
			return BP_TLS_AES128GCM;
		case NID_aes_256_gcm:
			return BP_TLS_AES256GCM;
		case NID_chacha20_poly1305:
			return BP_TLS_CHACHA20;
	}
	return 0;
}

/*
 * TLS 1.2 ciphers: those of ssl_ciphers that the writer can seal.  (TLS
 * 1.3's are all AEAD; core leaves them at OpenSSL's default, as we do.)
 */
static bool
set_aead_ciphers(SSL_CTX *ctx)
{
	STACK_OF(SSL_CIPHER) *all;
	StringInfoData list;
	int			i;
	bool		ok;

	if (SSL_CTX_set_cipher_list(ctx, SSLCipherSuites) != 1)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool could not set the cipher list (no valid ciphers available)")));
		return false;
	}
	all = SSL_CTX_get_ciphers(ctx);
	initStringInfo(&list);
	for (i = 0; all != NULL && i < sk_SSL_CIPHER_num(all); i++)
	{
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);

		/* TLS 1.3 suites are 0x13xx */
		if (cipher_code(c) == 0 || (SSL_CIPHER_get_protocol_id(c) >> 8) == 0x13)
			continue;
		appendStringInfo(&list, "%s%s", list.len > 0 ? ":" : "",
						 SSL_CIPHER_get_name(c));
	}
	if (list.len == 0)
	{
		ereport(LOG,
				(errmsg("builtin_pool offers TLSv1.3 only on the pool port: ssl_ciphers has no AES-GCM or ChaCha20-Poly1305 cipher for TLSv1.2")));
		ok = SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1;
	}
	else
		ok = SSL_CTX_set_cipher_list(ctx, list.data) == 1;
	pfree(list.data);
	return ok;
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
	if (ssl_max_protocol_version != PG_TLS_ANY &&
		ssl_max_protocol_version < PG_TLS1_2_VERSION)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool offers no SSL on the pool port: it speaks TLSv1.2 and TLSv1.3, and ssl_max_protocol_version is lower")));
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
	if (!SSL_CTX_set_min_proto_version(ctx,
									   ssl_min_protocol_version == PG_TLS1_3_VERSION ?
									   TLS1_3_VERSION : TLS1_2_VERSION) ||
		!SSL_CTX_set_max_proto_version(ctx,
									   ssl_max_protocol_version == PG_TLS1_2_VERSION ?
									   TLS1_2_VERSION : TLS1_3_VERSION))
	{
		ereport(LOG,
				(errmsg("builtin_pool could not set SSL protocol version range")));
		goto fail;
	}
	if (!set_aead_ciphers(ctx))
		goto fail;
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

/* Did the client and we find no protocol version or cipher in common? */
static bool
version_or_cipher_error(unsigned long code)
{
	switch (ERR_GET_REASON(code))
	{
		case SSL_R_NO_SHARED_CIPHER:
		case SSL_R_NO_PROTOCOLS_AVAILABLE:
		case SSL_R_UNSUPPORTED_PROTOCOL:
		case SSL_R_UNKNOWN_PROTOCOL:
		case SSL_R_WRONG_VERSION_NUMBER:
		case SSL_R_BAD_PROTOCOL_VERSION_NUMBER:
		case SSL_R_VERSION_TOO_HIGH:
		case SSL_R_VERSION_TOO_LOW:
		case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
			return true;
	}
	return false;
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
			{
				bool		hint = version_or_cipher_error(ERR_peek_error());

				ereport(COMMERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("could not accept SSL connection: %s",
								ssl_error_text()),
						 hint ? errhint("The pool port accepts TLSv1.2 and TLSv1.3 with AES-GCM or ChaCha20-Poly1305 ciphers.") : 0));
			}
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

/*
 * TLS 1.2's key block (RFC 5246 6.3) from the master secret: the client's
 * and the server's write keys, then their IVs.  Fills the server's.
 */
static bool
tls12_keys(SSL *ssl, const EVP_MD *md, BpTlsWriter *w)
{
	unsigned char master[SSL_MAX_MASTER_KEY_LENGTH];
	unsigned char crandom[SSL3_RANDOM_SIZE];
	unsigned char srandom[SSL3_RANDOM_SIZE];
	unsigned char block[2 * 32 + 2 * 12];
	size_t		mlen;
	size_t		blen = 2 * w->key_len + 2 * w->iv_len;
	EVP_PKEY_CTX *pctx;
	bool		ok;

	mlen = SSL_SESSION_get_master_key(SSL_get_session(ssl), master, sizeof(master));
	if (mlen == 0 ||
		SSL_get_client_random(ssl, crandom, sizeof(crandom)) != sizeof(crandom) ||
		SSL_get_server_random(ssl, srandom, sizeof(srandom)) != sizeof(srandom))
		return false;
	pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_TLS1_PRF, NULL);
	ok = pctx != NULL &&
		EVP_PKEY_derive_init(pctx) > 0 &&
		EVP_PKEY_CTX_set_tls1_prf_md(pctx, md) > 0 &&
		EVP_PKEY_CTX_set1_tls1_prf_secret(pctx, master, mlen) > 0 &&
		EVP_PKEY_CTX_add1_tls1_prf_seed(pctx, (const unsigned char *) "key expansion", 13) > 0 &&
		EVP_PKEY_CTX_add1_tls1_prf_seed(pctx, srandom, sizeof(srandom)) > 0 &&
		EVP_PKEY_CTX_add1_tls1_prf_seed(pctx, crandom, sizeof(crandom)) > 0 &&
		EVP_PKEY_derive(pctx, block, &blen) > 0;
	EVP_PKEY_CTX_free(pctx);
	if (ok)
	{
		memcpy(w->key, block + w->key_len, w->key_len);
		memcpy(w->iv, block + 2 * w->key_len + w->iv_len, w->iv_len);
	}
	explicit_bzero(master, sizeof(master));
	explicit_bzero(block, sizeof(block));
	return ok;
}

bool
bp_tls_writer(BpSsl *ssl, BpTlsWriter *w)
{
	TlsSecret  *sec = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const EVP_MD *md;
	bool		ok;

	memset(w, 0, sizeof(*w));
	if (cipher == NULL || (w->cipher = cipher_code(cipher)) == 0 ||
		(md = SSL_CIPHER_get_handshake_digest(cipher)) == NULL)
		return false;
	w->suite = SSL_CIPHER_get_protocol_id(cipher);
	w->version = SSL_version(ssl);
	w->key_len = EVP_CIPHER_get_key_length(writer_cipher(w->cipher));
	if (w->version == TLS1_3_VERSION)
	{
		w->iv_len = 12;
		ok = sec != NULL && sec->len == EVP_MD_get_size(md) &&
			expand_label(md, sec, "key", w->key, w->key_len) &&
			expand_label(md, sec, "iv", w->iv, w->iv_len);
		w->seq = 0;				/* no ticket was sent: see build_context */
	}
	else if (w->version == TLS1_2_VERSION)
	{
		w->iv_len = w->cipher == BP_TLS_CHACHA20 ? 12 : 4;
		ok = tls12_keys(ssl, md, w);
		w->seq = 1;				/* 0 was the server's Finished */
	}
	else
		ok = false;
	if (sec)
		explicit_bzero(sec->secret, sizeof(sec->secret));
	if (!ok)
		memset(w, 0, sizeof(*w));
	return ok;
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

int
bp_tls_cipher_bits(BpSsl *ssl)
{
	return SSL_get_cipher_bits(ssl, NULL);
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
