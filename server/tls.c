/*
 * All of OpenSSL's set-up lives here.  The one SSL_CTX is built in the
 * master before fork, so every worker shares the certificate, the key and
 * the session ticket keys OpenSSL generates with the context.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "astleyd.h"

/* Mozilla "intermediate" (v5.7) TLS 1.2 suites; TLS 1.3 keeps its defaults. */
#define TLS12_CIPHERS							\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"	\
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"		\
	"DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS	"X25519:P-256:P-384"

static const unsigned char	alpn_http11[] = "\x08http/1.1";

/*
 * Session ticket keys, made in the master and inherited by every worker,
 * so a ticket from one worker resumes on any other.  A reload rotates:
 * the new key issues tickets, the previous one still decrypts them.
 */
#define TLS_TICKET_KEYS	2
struct tls_ticket_key {
	unsigned char	name[16];
	unsigned char	hmac[32];
	unsigned char	aes[32];
};
static struct tls_ticket_key	ticket_keys[TLS_TICKET_KEYS];
static int			nticket_keys;

/* For -V: the OpenSSL the binary was built against, and the one it runs. */
void
tls_versions(const char **built, const char **running)
{
	*built = OPENSSL_VERSION_TEXT;
	*running = OpenSSL_version(OPENSSL_VERSION);
}

void
tls_ticket_rotate(void)
{
	memmove(&ticket_keys[1], &ticket_keys[0],
	    sizeof(ticket_keys) - sizeof(ticket_keys[0]));
	arc4random_buf(&ticket_keys[0], sizeof(ticket_keys[0]));
	if (nticket_keys < TLS_TICKET_KEYS)
		nticket_keys++;
}

/*
 * The keys as bytes, for a binary upgrade to hand over: the count, then
 * the keys.  Returns the length, or 0 if buf is too small.
 */
size_t
tls_ticket_export(unsigned char *buf, size_t len)
{
	size_t	n = 1 + nticket_keys * sizeof(ticket_keys[0]);

	if (len < n)
		return 0;
	buf[0] = nticket_keys;
	memcpy(buf + 1, ticket_keys, n - 1);
	return n;
}

/* Takes keys tls_ticket_export wrote; -1 if they do not look like it. */
int
tls_ticket_import(const unsigned char *buf, size_t len)
{
	if (len < 1 || buf[0] < 1 || buf[0] > TLS_TICKET_KEYS ||
	    len != 1 + buf[0] * sizeof(ticket_keys[0]))
		return -1;
	tls_ticket_wipe();
	nticket_keys = buf[0];
	memcpy(ticket_keys, buf + 1, len - 1);
	return 0;
}

void
tls_ticket_wipe(void)
{
	explicit_bzero(ticket_keys, sizeof(ticket_keys));
	nticket_keys = 0;
}

static int
tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ticket_key	*k = NULL;
	OSSL_PARAM		 params[3];
	int			 i;

	(void)ssl;
	if (nticket_keys == 0)
		return 0;
	if (enc) {
		k = &ticket_keys[0];
		memcpy(name, k->name, sizeof(k->name));
		if (RAND_bytes(iv, 16) != 1 || !EVP_EncryptInit_ex(cctx,
		    EVP_aes_256_cbc(), NULL, k->aes, iv))
			return -1;
	} else {
		for (i = 0; i < nticket_keys && k == NULL; i++)
			if (memcmp(name, ticket_keys[i].name, 16) == 0)
				k = &ticket_keys[i];
		if (k == NULL)
			return 0;	/* unknown key: full handshake */
		if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv))
			return -1;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)(uintptr_t)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(hctx, params))
		return -1;
	/* 2: resumed with the previous key, so issue a fresh ticket. */
	return enc || k == &ticket_keys[0] ? 1 : 2;
}

/*
 * The whole OpenSSL error queue as text, oldest first, and the queue
 * cleared: the first error says what went wrong ("no start line"), the
 * last only where it surfaced ("PEM lib").  nginx's ngx_ssl_error.
 */
static const char *
tls_error_string(char *buf, size_t len)
{
	const char	*data;
	unsigned long	 e;
	size_t		 n = 0;
	int		 flags;
	char		 one[256];

	buf[0] = '\0';
	while (n + 1 < len &&
	    (e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		snprintf(buf + n, len - n, "%s%s%s%s", n > 0 ? "; " : "", one,
		    (flags & ERR_TXT_STRING) && *data != '\0' ? ": " : "",
		    (flags & ERR_TXT_STRING) ? data : "");
		n = strlen(buf);
	}
	if (n == 0)
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

/* Why a connection's TLS failed, for the info line; at debug, it all. */
void
tls_log_errors(const char *what)
{
	char	buf[1024];

	if (!log_enabled(LOGL_DEBUG)) {
		ERR_clear_error();
		return;
	}
	log_debug("%s: %s", what, tls_error_string(buf, sizeof(buf)));
}

static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char	*sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, alpn_http11,
	    sizeof(alpn_http11) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;	/* RFC 7301 3.2 */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* fopen first, so a missing or unreadable file gets errno's words. */
static int
tls_check_file(const char *directive, const char *path, char *err,
    size_t errlen)
{
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s %s: %s", directive, path,
		    strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

SSL_CTX *
tls_ctx_new(const struct conf *conf, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*pub = NULL;
	char		 ebuf[1024];

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new: %s",
		    tls_error_string(ebuf, sizeof(ebuf)));
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		snprintf(err, errlen, "TLS parameters: %s",
		    tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	/*
	 * The DHE suites above need DH parameters: without them they can
	 * never be chosen.  Auto picks the RFC 7919 group matching the
	 * key's strength (ffdhe2048 for RSA-2048, as Mozilla's profile).
	 */
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/*
	 * Partial writes let a parked SSL_write resume from epoll; an idle
	 * connection gives its read and write buffers back.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/*
	 * A per-process session cache would be local to one worker; tickets
	 * (stateless, keyed in the master) resume on any worker instead.
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_max_early_data(ctx, 0);
	/*
	 * One read(2) per burst of records instead of two per record (header,
	 * then body); conn.c asks tls_pending before it parks.
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);

	if (tls_check_file("tls_certificate", conf->tls_certificate, err,
	    errlen) == -1)
		goto fail;
	if (!SSL_CTX_use_certificate_chain_file(ctx, conf->tls_certificate)) {
		snprintf(err, errlen, "tls_certificate %s: %s",
		    conf->tls_certificate, tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (conf->tls_key_process) {
		/*
		 * The key stays in the key process (keyproc.c), which checks
		 * it against the certificate; the workers get the public key
		 * with the private operations sent there.
		 */
		if ((pub = keyproc_pubkey(SSL_CTX_get0_certificate(ctx) ==
		    NULL ? NULL : X509_get0_pubkey(
		    SSL_CTX_get0_certificate(ctx)))) == NULL ||
		    !SSL_CTX_use_PrivateKey(ctx, pub)) {
			snprintf(err, errlen, "tls_certificate %s: %s",
			    conf->tls_certificate,
			    tls_error_string(ebuf, sizeof(ebuf)));
			EVP_PKEY_free(pub);
			goto fail;
		}
		EVP_PKEY_free(pub);
		return ctx;
	}
	if (tls_check_file("tls_certificate_key", conf->tls_certificate_key,
	    err, errlen) == -1)
		goto fail;
	if (!SSL_CTX_use_PrivateKey_file(ctx, conf->tls_certificate_key,
	    SSL_FILETYPE_PEM)) {
		snprintf(err, errlen, "tls_certificate_key %s: %s",
		    conf->tls_certificate_key,
		    tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (!SSL_CTX_check_private_key(ctx)) {
		snprintf(err, errlen, "tls_certificate_key %s does not match "
		    "tls_certificate %s: %s", conf->tls_certificate_key,
		    conf->tls_certificate, tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * The private key of CONF, checked against its certificate, for the key
 * process (and astleyd -t); NULL with the reason as tls_ctx_new gives it.
 */
EVP_PKEY *
tls_key_load(const struct conf *conf, char *err, size_t errlen)
{
	EVP_PKEY	*key = NULL;
	X509		*cert = NULL;
	BIO		*bio = NULL;
	char		 ebuf[1024];

	ERR_clear_error();
	if (tls_check_file("tls_certificate_key", conf->tls_certificate_key,
	    err, errlen) == -1)
		return NULL;
	if ((bio = BIO_new_file(conf->tls_certificate_key, "r")) == NULL ||
	    (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "tls_certificate_key %s: %s",
		    conf->tls_certificate_key,
		    tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	BIO_free(bio);
	if ((bio = BIO_new_file(conf->tls_certificate, "r")) == NULL ||
	    (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "tls_certificate %s: %s",
		    conf->tls_certificate, tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (!X509_check_private_key(cert, key)) {
		snprintf(err, errlen, "tls_certificate_key %s does not match "
		    "tls_certificate %s: %s", conf->tls_certificate_key,
		    conf->tls_certificate, tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	BIO_free(bio);
	X509_free(cert);
	return key;
 fail:
	BIO_free(bio);
	X509_free(cert);
	EVP_PKEY_free(key);
	return NULL;
}

/*
 * Connection I/O.  Every call below answers in the terms conn.c uses for
 * cleartext too: a byte count, or IO_EOF, IO_WANT_READ, IO_WANT_WRITE,
 * IO_ERROR.  After IO_ERROR the connection gets no close_notify.
 */
SSL *
tls_conn_new(SSL_CTX *ctx, int fd)
{
	SSL	*ssl;

	ERR_clear_error();
	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)) {
		tls_log_errors("SSL_new");
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* After a handshake: whether the session was resumed, and if TLS 1.3. */
void
tls_conn_info(SSL *ssl, int *resumed, int *tls13)
{
	*resumed = SSL_session_reused(ssl);
	*tls13 = SSL_version(ssl) == TLS1_3_VERSION;
}

static long
tls_result(SSL *ssl, int rv, const char *what)
{
	switch (SSL_get_error(ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return IO_EOF;
	default:
		tls_log_errors(what);
		return IO_ERROR;
	}
}

/*
 * 1 once the handshake is done; IO_PLAIN_HTTP when the first bytes were
 * a plain HTTP request, which OpenSSL recognizes.  On IO_ERROR, why says
 * what went wrong in a few words ("wrong version number", "no shared
 * cipher"), or is empty for a client that left before its first byte.
 */
int
tls_handshake(SSL *ssl, char *why, size_t whylen)
{
	const char	*r;
	unsigned long	 e;
	int		 rv, saved;

	why[0] = '\0';
	ERR_clear_error();
	if ((rv = SSL_accept(ssl)) == 1)
		return 1;
	saved = errno;
	e = ERR_peek_error();
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST) {
		ERR_clear_error();
		return IO_PLAIN_HTTP;
	}
	switch (SSL_get_error(ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IO_WANT_WRITE;
	case SSL_ERROR_SYSCALL:
		if (e == 0) {
			/* A port scanner's connect and close says nothing. */
			if (BIO_number_read(SSL_get_rbio(ssl)) > 0)
				snprintf(why, whylen, "%s", rv == 0 || saved == 0 ?
				    "closed by the client" : strerror(saved));
			break;
		}
		/* FALLTHROUGH */
	default:
		/* OpenSSL 3 says so for an EOF (SSL_OP_IGNORE_UNEXPECTED_EOF). */
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			if (BIO_number_read(SSL_get_rbio(ssl)) > 0)
				snprintf(why, whylen, "closed by the client");
		} else if (e != 0 && (r = ERR_reason_error_string(e)) != NULL)
			snprintf(why, whylen, "%s", r);
		else if (e != 0)
			snprintf(why, whylen, "error %lx", e);
		else
			snprintf(why, whylen, "closed by the client");
	}
	tls_log_errors("TLS handshake");
	return IO_ERROR;
}

long
tls_read(SSL *ssl, void *buf, size_t len)
{
	int	n;

	ERR_clear_error();
	if ((n = SSL_read(ssl, buf, len > INT_MAX ? INT_MAX : len)) > 0)
		return n;
	return tls_result(ssl, n, "TLS read");
}

long
tls_write(SSL *ssl, const void *buf, size_t len)
{
	int	n;

	ERR_clear_error();
	if ((n = SSL_write(ssl, buf, len > INT_MAX ? INT_MAX : len)) > 0)
		return n;
	return tls_result(ssl, n, "TLS write");
}

/* Decrypted bytes that epoll cannot see: read them before parking. */
int
tls_pending(SSL *ssl)
{
	return SSL_has_pending(ssl);
}

/* Our close_notify, once, not waiting for the peer's. */
void
tls_shutdown(SSL *ssl)
{
	if (!SSL_is_init_finished(ssl) ||
	    (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return;
	ERR_clear_error();
	SSL_shutdown(ssl);
	ERR_clear_error();
}

void
tls_conn_free(SSL *ssl)
{
	ERR_clear_error();
	SSL_free(ssl);
}
