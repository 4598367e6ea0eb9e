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

/* The first queued OpenSSL error as text, and the queue cleared. */
static const char *
tls_error_string(char *buf, size_t len)
{
	unsigned long	e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

void
tls_log_errors(const char *what)
{
	unsigned long	e;
	char		buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_debug("%s: %s", what, buf);
	}
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
	char		 ebuf[256];

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
	char		 ebuf[256];

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
 * a plain HTTP request, which OpenSSL recognizes.
 */
int
tls_handshake(SSL *ssl)
{
	unsigned long	e;
	int		rv;

	ERR_clear_error();
	if ((rv = SSL_accept(ssl)) == 1)
		return 1;
	e = ERR_peek_error();
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST) {
		ERR_clear_error();
		return IO_PLAIN_HTTP;
	}
	return tls_result(ssl, rv, "TLS handshake");
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
