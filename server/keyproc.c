/*
 * The key process: the one process that holds the TLS private key.  The
 * master forks one per generation; it reads the key (as root), checks it
 * against the certificate, drops privileges, enters a sandbox stricter
 * than a worker's and then only signs digests the workers send it, each
 * over its own SOCK_SEQPACKET socketpair (relayd's ca process, H2O's
 * neverbleed).  The master creates a worker's pair before forking it and
 * hands the key process its end with SCM_RIGHTS.  The key process exits
 * once the master has let go of it (reload, stop) and the last of its
 * workers has closed its socket.
 *
 * Workers get a public-only key whose private operations come here.  Why
 * the EC_KEY_METHOD / RSA_METHOD hooks and not a provider: on OpenSSL 3.0
 * a legacy key with a non-default method is "foreign", and libssl signs
 * with it through the legacy EVP_PKEY_METHOD path, which calls our sign
 * (ECDSA) or priv_enc (RSA, after OpenSSL itself did the PKCS#1 or PSS
 * padding): two callbacks, and no key management, signature and encoder
 * dispatch tables to get right, nor provider properties to make libssl
 * pick ours.  The hooks are deprecated in 3.0 but supported through 3.x;
 * this is the only file that uses them.
 */
#define OPENSSL_SUPPRESS_DEPRECATED	1

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "astleyd.h"

#define KEYPROC_MAX		1024	/* RSA-8192 */
#define KEYPROC_TIMEOUT_MS	1000	/* a signature, or the handshake fails */
#define KEYPROC_START_MS	10000
#define KEYPROC_MAX_FDS		(CONF_MAX_WORKERS * 4 + 1)
#define KEYPROC_MAX_OLD		64

#define KEYPROC_ECDSA		1	/* data: a digest; reply: DER ECDSA-Sig */
#define KEYPROC_RSA		2	/* data: padded as asked; reply: s */

struct keyproc_req {
	uint32_t	id;
	uint32_t	op;
	int32_t		padding;
	uint32_t	len;
	unsigned char	data[KEYPROC_MAX];
};

struct keyproc_rep {
	uint32_t	id;
	int32_t		len;		/* -1: failed */
	unsigned char	data[KEYPROC_MAX];
};

#define KEYPROC_HDR	offsetof(struct keyproc_req, data)
#define KEYPROC_REPHDR	offsetof(struct keyproc_rep, data)

/* Master: key processes let go of and not yet reaped. */
static pid_t		keyproc_old[KEYPROC_MAX_OLD];

/* Worker: the socket its signatures go through. */
static int		keyproc_fd = -1;
static uint32_t		keyproc_seq;
static EC_KEY_METHOD	*keyproc_ec_method;
static RSA_METHOD	*keyproc_rsa_method;

/*
 * Worker side: one blocking round trip.  A reply that comes after its
 * request timed out carries an old id and is skipped.
 */
static int
keyproc_call(uint32_t op, int padding, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outlen)
{
	struct keyproc_req	req;
	struct keyproc_rep	rep;
	struct pollfd		pfd;
	long long		deadline, left;
	ssize_t			n;

	if (keyproc_fd == -1 || inlen > sizeof(req.data)) {
		log_warnx("key process: no connection");
		return -1;
	}
	memset(&req, 0, KEYPROC_HDR);
	req.id = ++keyproc_seq;
	req.op = op;
	req.padding = padding;
	req.len = inlen;
	memcpy(req.data, in, inlen);
	if (send(keyproc_fd, &req, KEYPROC_HDR + inlen, MSG_NOSIGNAL) == -1) {
		log_warn("key process: send");
		return -1;
	}
	deadline = timecache_mono_ms() + KEYPROC_TIMEOUT_MS;
	for (;;) {
		if ((left = deadline - timecache_mono_ms()) <= 0) {
			log_warnx("key process: no answer within %d ms",
			    KEYPROC_TIMEOUT_MS);
			return -1;
		}
		pfd.fd = keyproc_fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("key process: poll");
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		if ((n = recv(keyproc_fd, &rep, sizeof(rep), 0)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_warn("key process: recv");
			return -1;
		}
		if (n == 0) {
			log_warnx("key process: gone");
			return -1;
		}
		if (n < (ssize_t)KEYPROC_REPHDR || rep.id != req.id)
			continue;
		if (rep.len < 0 || (size_t)rep.len > outlen ||
		    (size_t)n != KEYPROC_REPHDR + (size_t)rep.len) {
			log_warnx("key process: signing failed");
			return -1;
		}
		memcpy(out, rep.data, rep.len);
		return rep.len;
	}
}

static int
keyproc_ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	int	n;

	(void)type;
	(void)kinv;
	(void)r;
	if (dlen < 0 || (n = keyproc_call(KEYPROC_ECDSA, 0, dgst, dlen, sig,
	    ECDSA_size(eckey))) < 0)
		return 0;
	*siglen = n;
	return 1;
}

static int
keyproc_ec_sign_setup(EC_KEY *eckey, BN_CTX *ctx, BIGNUM **kinv, BIGNUM **r)
{
	(void)eckey;
	(void)ctx;
	(void)kinv;
	(void)r;
	return 0;	/* the nonce is the key process's business */
}

static ECDSA_SIG *
keyproc_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	unsigned char		 sig[KEYPROC_MAX];
	const unsigned char	*p = sig;
	unsigned int		 len;

	if (!keyproc_ec_sign(0, dgst, dlen, sig, &len, kinv, r, eckey))
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, len);
}

static int
keyproc_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	if (flen < 0)
		return -1;
	return keyproc_call(KEYPROC_RSA, padding, from, flen, to,
	    RSA_size(rsa));
}

static int
keyproc_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)padding;
	return -1;	/* no RSA key exchange is configured */
}

/*
 * The key a worker's SSL_CTX holds: the certificate's public key, whose
 * private operations go to the key process.  NULL for a key type that is
 * neither EC nor RSA.
 */
EVP_PKEY *
keyproc_pubkey(EVP_PKEY *pub)
{
	EVP_PKEY	*pk;
	EC_KEY		*ec = NULL;
	RSA		*rsa = NULL;

	if ((pk = EVP_PKEY_new()) == NULL)
		return NULL;
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_EC:
		if (keyproc_ec_method == NULL) {
			if ((keyproc_ec_method = EC_KEY_METHOD_new(
			    EC_KEY_get_default_method())) == NULL)
				goto fail;
			EC_KEY_METHOD_set_sign(keyproc_ec_method,
			    keyproc_ec_sign, keyproc_ec_sign_setup,
			    keyproc_ec_sign_sig);
		}
		if ((ec = EVP_PKEY_get1_EC_KEY(pub)) == NULL ||
		    !EC_KEY_set_method(ec, keyproc_ec_method) ||
		    !EVP_PKEY_assign_EC_KEY(pk, ec))
			goto fail;
		return pk;
	case EVP_PKEY_RSA:
		if (keyproc_rsa_method == NULL) {
			if ((keyproc_rsa_method = RSA_meth_dup(
			    RSA_get_default_method())) == NULL ||
			    !RSA_meth_set1_name(keyproc_rsa_method,
			    "astleyd key process") ||
			    !RSA_meth_set_priv_enc(keyproc_rsa_method,
			    keyproc_rsa_priv_enc) ||
			    !RSA_meth_set_priv_dec(keyproc_rsa_method,
			    keyproc_rsa_priv_dec))
				goto fail;
		}
		if ((rsa = EVP_PKEY_get1_RSA(pub)) == NULL ||
		    !RSA_set_method(rsa, keyproc_rsa_method) ||
		    !EVP_PKEY_assign_RSA(pk, rsa))
			goto fail;
		return pk;
	default:
		ERR_raise_data(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM,
		    "only EC and RSA keys can be kept in a key process");
	}
 fail:
	EC_KEY_free(ec);
	RSA_free(rsa);
	EVP_PKEY_free(pk);
	return NULL;
}

/* In a worker just forked: its socket to the key process, or -1. */
void
keyproc_worker(int fd)
{
	keyproc_fd = fd;
}

/* Key process: one request, one reply; -1 once the worker is gone. */
static int
keyproc_sign(EVP_PKEY_CTX *ec, RSA *rsa, int fd)
{
	struct keyproc_req	 req;
	struct keyproc_rep	 rep;
	size_t			 siglen;
	ssize_t			 n;
	int			 rv = -1;

	if ((n = recv(fd, &req, sizeof(req), 0)) == 0 ||
	    (n == -1 && errno != EINTR && errno != EAGAIN))
		return -1;
	if (n < (ssize_t)KEYPROC_HDR || req.len != (size_t)n - KEYPROC_HDR)
		return 0;
	memset(&rep, 0, KEYPROC_REPHDR);
	rep.id = req.id;
	ERR_clear_error();
	switch (req.op) {
	case KEYPROC_ECDSA:
		siglen = sizeof(rep.data);
		if (ec != NULL && EVP_PKEY_sign(ec, rep.data, &siglen,
		    req.data, req.len) == 1)
			rv = siglen;
		break;
	case KEYPROC_RSA:
		if (rsa != NULL && (size_t)RSA_size(rsa) <= sizeof(rep.data))
			rv = RSA_private_encrypt(req.len, req.data, rep.data,
			    rsa, req.padding);
		break;
	}
	ERR_clear_error();
	rep.len = rv < 0 ? -1 : rv;
	(void)send(fd, &rep, KEYPROC_REPHDR + (rv < 0 ? 0 : rv), MSG_NOSIGNAL);
	OPENSSL_cleanse(&rep, sizeof(rep));
	return 0;
}

/* One byte and room for one descriptor, for passing a worker's socket. */
struct keyproc_fdmsg {
	struct msghdr	msg;
	struct iovec	iov;
	char		c;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
};

static void
keyproc_fdmsg_init(struct keyproc_fdmsg *m)
{
	memset(m, 0, sizeof(*m));
	m->iov.iov_base = &m->c;
	m->iov.iov_len = 1;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	m->msg.msg_control = m->cm.buf;
	m->msg.msg_controllen = sizeof(m->cm.buf);
}

/* Key process: a worker's socket from the master. */
static int
keyproc_recv_fd(int ctl, int *fd)
{
	struct keyproc_fdmsg	 m;
	struct cmsghdr		*cmsg;
	ssize_t			 n;

	*fd = -1;
	keyproc_fdmsg_init(&m);
	if ((n = recvmsg(ctl, &m.msg, MSG_CMSG_CLOEXEC)) <= 0)
		return n == -1 && errno == EINTR ? 0 : -1;
	cmsg = CMSG_FIRSTHDR(&m.msg);
	if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET &&
	    cmsg->cmsg_type == SCM_RIGHTS &&
	    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	return 0;
}

static void __attribute__((noreturn))
keyproc_serve(EVP_PKEY *key, int ctl)
{
	struct pollfd	 pfd[KEYPROC_MAX_FDS];
	EVP_PKEY_CTX	*ec = NULL;
	RSA		*rsa = NULL;
	int		 i, n = 1, fd;

	/* One signing context, made once: ECDSA over the digest as given. */
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	    ((ec = EVP_PKEY_CTX_new(key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ec) != 1)) {
		EVP_PKEY_CTX_free(ec);
		ec = NULL;
	} else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		rsa = EVP_PKEY_get1_RSA(key);
	else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		rsa = EVP_PKEY_get1_RSA(key);
	ERR_clear_error();

	pfd[0].fd = ctl;
	pfd[0].events = POLLIN;
	/* Until the master lets go and the last worker is gone. */
	while (pfd[0].fd != -1 || n > 1) {
		if (poll(pfd, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 1; i < n; i++) {
			if (pfd[i].revents == 0 || ((pfd[i].revents & POLLIN) &&
			    keyproc_sign(ec, rsa, pfd[i].fd) == 0))
				continue;
			close(pfd[i].fd);	/* its worker is gone */
			pfd[i--] = pfd[--n];
		}
		if (pfd[0].fd != -1 && pfd[0].revents != 0) {
			if (keyproc_recv_fd(ctl, &fd) == -1 ||
			    !(pfd[0].revents & POLLIN)) {
				close(ctl);
				pfd[0].fd = -1;
			} else if (fd != -1 && n == KEYPROC_MAX_FDS)
				close(fd);
			else if (fd != -1) {
				pfd[n].fd = fd;
				pfd[n].events = POLLIN;
				pfd[n++].revents = 0;
			}
		}
	}
	EVP_PKEY_CTX_free(ec);
	RSA_free(rsa);
	EVP_PKEY_free(key);
	exit(0);
}

/* Key process: load, check, confine; then serve. */
static void __attribute__((noreturn))
keyproc_main(const struct conf *conf, int ctl)
{
	struct sigaction	 sa;
	sigset_t		 none;
	EVP_PKEY		*key;
	char			 msg[1024];
	int			 ign[] = { SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
				    SIGPIPE };
	size_t			 i;

	proctitle_set("key process");
	/*
	 * The master's signal mask and handlers do not apply: a stop kills
	 * it (it holds no requests), the rest is for the master.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	for (i = 0; i < sizeof(ign) / sizeof(ign[0]); i++)
		sigaction(ign[i], &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	msg[0] = 1;
	if ((key = tls_key_load(conf, msg + 1, sizeof(msg) - 1)) == NULL)
		goto fail;
	worker_drop_privileges(conf);
	if (sandbox_enter_keyproc(conf->sandbox) == -1) {
		snprintf(msg + 1, sizeof(msg) - 1, "key process: cannot "
		    "enter the sandbox");
		goto fail;
	}
	msg[0] = 0;
	if (send(ctl, msg, 1, MSG_NOSIGNAL) != 1)
		exit(1);
	keyproc_serve(key, ctl);
 fail:
	EVP_PKEY_free(key);
	(void)send(ctl, msg, 1 + strlen(msg + 1), MSG_NOSIGNAL);
	exit(1);
}

/*
 * Master: forks the key process for NEXT's configuration into
 * NEXT->keyproc and waits until it holds the key and is confined.  NEXT
 * is SRV itself, or a reload's pending state with the log files it
 * prepared (LOGS, or NULL).  0, or -1 with the reason (a key that does
 * not load or match the certificate is reported as tls_ctx_new did).
 */
int
keyproc_start(struct server *srv, struct server *next,
    const struct log_files *logs, char *err, size_t errlen)
{
	const struct conf *conf = &next->conf;
	struct keyproc	*kp = &next->keyproc;
	struct pollfd	pfd;
	char		msg[1024];
	ssize_t		n;
	int		sv[2];
	pid_t		pid;

	kp->pid = 0;
	kp->fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "key process: socketpair: %s",
		    strerror(errno));
		return -1;
	}
	switch (pid = fork()) {
	case -1:
		snprintf(err, errlen, "key process: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		/* It holds nothing of the master's but the error log. */
		close(sv[0]);
		master_child_close();
		if (srv->keyproc.fd != -1)
			close(srv->keyproc.fd);
		listeners_close(srv->listeners, srv->nlisteners);
		if (next != srv)
			listeners_release(next, srv);	/* the reload's new ones */
		if (logs != NULL)
			log_commit(logs);	/* it logs where its workers will */
		if (srv->pidfh != NULL)
			pidfile_close(srv->pidfh);
		if (srv->lifeline != -1)
			close(srv->lifeline);
		if (srv->ctl_fd != -1)
			close(srv->ctl_fd);
		close(srv->ready[0]);
		close(srv->ready[1]);
		/* Nor the launcher's stdio, which it waits to see closed. */
		if (!srv->foreground)
			log_detach();
		keyproc_main(conf, sv[1]);
		/* NOTREACHED */
	}
	close(sv[1]);
	kp->pid = pid;
	kp->fd = sv[0];
	pfd.fd = kp->fd;
	pfd.events = POLLIN;
	n = -1;
	if (poll(&pfd, 1, KEYPROC_START_MS) == 1)
		n = recv(kp->fd, msg, sizeof(msg) - 1, 0);
	if (n >= 1 && msg[0] == 0)
		return 0;
	if (n > 1) {
		msg[n] = '\0';
		snprintf(err, errlen, "%s", msg + 1);
	} else
		snprintf(err, errlen, "key process %ld did not start",
		    (long)pid);
	kill(pid, SIGKILL);
	keyproc_retire(kp);
	return -1;
}

/*
 * Master, before forking a worker: a new socketpair, one end handed to
 * the key process; the worker's end, or -1 (its handshakes then fail).
 */
int
keyproc_attach(struct keyproc *kp)
{
	struct keyproc_fdmsg	 m;
	struct cmsghdr		*cmsg;
	int			 sv[2];

	if (kp->fd == -1)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("key process: socketpair");
		return -1;
	}
	keyproc_fdmsg_init(&m);
	cmsg = CMSG_FIRSTHDR(&m.msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &sv[1], sizeof(int));
	if (sendmsg(kp->fd, &m.msg, MSG_NOSIGNAL) != 1) {
		log_warn("key process: sendmsg");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	return sv[0];
}

/*
 * Master: lets go of a key process.  It exits once its workers are gone;
 * master_reap then hears of it through keyproc_reaped.
 */
void
keyproc_retire(struct keyproc *kp)
{
	int	i;

	if (kp->fd != -1)
		close(kp->fd);
	kp->fd = -1;
	if (kp->pid == 0)
		return;
	for (i = 0; i < KEYPROC_MAX_OLD; i++)
		if (keyproc_old[i] == 0) {
			keyproc_old[i] = kp->pid;
			break;
		}
	kp->pid = 0;
}

/* Master: 1 if PID was a key process let go of (and logged if it failed). */
int
keyproc_reaped(pid_t pid, int st)
{
	int	i;

	for (i = 0; i < KEYPROC_MAX_OLD; i++)
		if (keyproc_old[i] == pid) {
			keyproc_old[i] = 0;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				log_warnx("old key process %ld exited with %s "
				    "%d", (long)pid, WIFSIGNALED(st) ?
				    "signal" : "status", WIFSIGNALED(st) ?
				    WTERMSIG(st) : WEXITSTATUS(st));
			return 1;
		}
	return 0;
}
