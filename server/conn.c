/*
 * One client connection, from accept to close: TLS handshake, reading and
 * parsing requests, answering them, keep-alive.  The socket is
 * non-blocking and every wait is a ppoll against a deadline, so a silent
 * or slow client can hold a worker only as long as the timeouts allow.
 * A stop request interrupts the wait it needs to (worker.c).
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LIBBSD_OPENBSD_VIS
#include <vis.h>

#include "astleyd.h"

#define CONN_OUTCAP	(16 * 1024)
#define CONN_MAX_405	4	/* the 4th 405 on a connection closes it */
#define CONN_LINGER_MS	2000	/* draining input before close */
#define CONN_HEAD_MAX(conf)	\
	((size_t)(2 * (conf)->max_uri_size + (conf)->max_header_size))

/* conn_read results besides a byte count */
#define CONN_EOF	0
#define CONN_ERROR	(-1)
#define CONN_TIMEOUT	(-2)
#define CONN_ABORT	(-3)

/*
 * How a wait reacts to a stop request (worker_state).  A graceful stop
 * (reload, SIGQUIT) ends nothing: an idle keep-alive connection still
 * gets its next request answered, with "Connection: close", because
 * closing it under a client that is sending right now would lose that
 * request.  Only a fast stop ends waits, and never a response.
 */
enum conn_wait {
	WAIT_IDLE,	/* between requests */
	WAIT_REQUEST,	/* request in progress */
	WAIT_WRITE	/* response in progress: finish it */
};

struct conn {
	struct server	*srv;
	int		 fd;
	SSL		*ssl;
	int		 ssl_fatal;	/* no close_notify after an error */
	char		*in;
	size_t		 inlen;		/* bytes in in[] */
	size_t		 off;		/* start of what is not parsed yet */
	size_t		 incap;
	char		*out;
	size_t		 outlen;
	long long	 deadline;	/* ms, CLOCK_MONOTONIC */
	long long	 nrequests;
	int		 n405;
	int		 rcvtimeo;	/* SO_RCVTIMEO set for blocking reads */
	long long	 started;	/* this request's first byte, us */
	const struct sockaddr *peer;
};

static char	*conn_inbuf;
static size_t	 conn_incap;
static char	*conn_outbuf;
static char	*conn_path;	/* the normalized path of a request */
static size_t	 conn_pathcap;

/* Untrusted bytes, made safe for a log line (libbsd's strnvisx). */
static const char *
conn_vis(char *dst, size_t dlen, const char *src, size_t slen)
{
	if (src == NULL)
		return "-";
	if (slen > (dlen - 1) / 4)
		slen = (dlen - 1) / 4;	/* 4 bytes per byte at worst */
	if (strnvisx(dst, dlen, src, slen, VIS_CSTYLE | VIS_DQ | VIS_TAB |
	    VIS_NL) == -1)
		return "-";
	return dst;
}

/* The request's fields for its access log line, made safe in advance. */
static char	log_rl[2048], log_ref[1024], log_ua[1024];

/*
 * Takes what the access log line needs from the request while its bytes
 * are still there: discarding a body may move them.  req is NULL when
 * the request could not be parsed; the start of its first line stands
 * in for it.
 */
static void
conn_log_request(struct conn *c, const struct http_request *req)
{
	char		 line[1024];
	const char	*p, *nl;
	size_t		 n;

	if (!log_access_on())
		return;
	strlcpy(log_ref, "-", sizeof(log_ref));
	strlcpy(log_ua, "-", sizeof(log_ua));
	if (req == NULL) {
		p = c->in + c->off;
		n = c->inlen - c->off;
		if ((nl = memchr(p, '\n', n)) != NULL)
			n = nl - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		conn_vis(log_rl, sizeof(log_rl), p, n > 200 ? 200 : n);
		return;
	}
	n = req->target.p + req->target.len - req->method_name.p;
	snprintf(line, sizeof(line), "%.*s HTTP/1.%d", (int)(n > 900 ? 900 : n),
	    req->method_name.p, req->version_minor);
	conn_vis(log_rl, sizeof(log_rl), line, strlen(line));
	if (req->referer.p != NULL)
		conn_vis(log_ref, sizeof(log_ref), req->referer.p,
		    req->referer.len);
	if (req->user_agent.p != NULL)
		conn_vis(log_ua, sizeof(log_ua), req->user_agent.p,
		    req->user_agent.len);
}

/*
 * One access log line, combined format plus the request time in
 * microseconds, for the request conn_log_request took in.
 */
static void
conn_log(struct conn *c, int resp)
{
	const struct sockaddr_in6	*sin6;
	char				 peer[INET6_ADDRSTRLEN];
	size_t				 body;
	int				 status;

	if (!log_access_on())
		return;
	timecache_update();	/* the time of this request, not the last */
	status = http_resp_status(resp, &body);
	peer[0] = '-';
	peer[1] = '\0';
	if (c->peer->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)c->peer)->
		    sin_addr, peer, sizeof(peer));
	else if (c->peer->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)c->peer;
		/* A dual-stack listener's IPv4 client, shown as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], peer,
			    sizeof(peer));
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, peer,
			    sizeof(peer));
	}
	log_access("%s - - [%s] \"%s\" %d %zu \"%s\" \"%s\" %lld", peer,
	    timecache_log(), log_rl, status, body, log_ref, log_ua,
	    timecache_mono_us() - c->started);
}

int
conn_init(const struct conf *conf)
{
	/*
	 * Room for a whole head at its limits (leading empty lines up to
	 * max_uri_size, the request line, the fields), with a read's worth
	 * spare: past CONN_HEAD_MAX the parser always has an answer.
	 */
	conn_incap = CONN_HEAD_MAX(conf) + 4096;
	conn_pathcap = conf->max_uri_size + 2;
	if ((conn_inbuf = malloc(conn_incap)) == NULL ||
	    (conn_outbuf = malloc(CONN_OUTCAP)) == NULL ||
	    (conn_path = malloc(conn_pathcap)) == NULL)
		return -1;
	return 0;
}

void
conn_free(void)
{
	free(conn_inbuf);
	free(conn_outbuf);
	free(conn_path);
	conn_inbuf = conn_outbuf = conn_path = NULL;
}

/* Waits for fd to become ready; 0 when it is. */
static int
conn_wait(struct conn *c, short events, enum conn_wait how)
{
	struct pollfd	pfd;
	struct timespec	ts;
	long long	rem;

	for (;;) {
		if (how != WAIT_WRITE && worker_state == WORKER_STOP)
			return CONN_ABORT;
		if ((rem = c->deadline - timecache_mono_ms()) <= 0)
			return CONN_TIMEOUT;
		ts.tv_sec = rem / 1000;
		ts.tv_nsec = (rem % 1000) * 1000000;
		pfd.fd = c->fd;
		pfd.events = events;
		switch (ppoll(&pfd, 1, &ts, NULL)) {
		case -1:
			if (errno != EINTR)
				return CONN_ERROR;
			break;
		case 0:
			break;	/* the deadline is checked above */
		default:
			return 0;
		}
	}
}

/* For SSL_* calls: what to wait for, or a final result. */
static int
conn_ssl_result(struct conn *c, int rv, short *events)
{
	switch (SSL_get_error(c->ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		return 1;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		return 1;
	case SSL_ERROR_ZERO_RETURN:
		return CONN_EOF;
	default:
		c->ssl_fatal = 1;
		tls_log_errors("TLS");
		return CONN_ERROR;
	}
}

static int
conn_handshake(struct conn *c)
{
	short	events;
	int	rv;

	for (;;) {
		ERR_clear_error();
		if ((rv = SSL_accept(c->ssl)) == 1)
			return 0;
		if ((rv = conn_ssl_result(c, rv, &events)) != 1)
			return CONN_ERROR;
		if ((rv = conn_wait(c, events, WAIT_REQUEST)) != 0)
			return rv;
	}
}

/*
 * SO_RCVTIMEO for the blocking idle read, from this worker's own config,
 * once per keep-alive connection (a connection-per-request client never
 * needs it).  0 if the blocking read may be used.
 */
static int
conn_rcvtimeo(struct conn *c)
{
	struct timeval	tv;
	int		ms = c->srv->conf.keepalive_timeout;

	if (c->rcvtimeo)
		return 0;
	if (ms <= 0)
		return -1;	/* 0 would mean no timeout at all */
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		return -1;
	c->rcvtimeo = 1;
	return 0;
}

/*
 * Reads what is there, waiting for it if need be.  With wait_first, the
 * caller expects nothing yet (it has just answered everything it had).
 * A cleartext keep-alive connection then blocks in read(2) itself, with
 * the keep-alive timeout as SO_RCVTIMEO: one system call where a poll
 * and a read would be two, on every keep-alive request.  A fast stop
 * ends that read (worker.c).  Every other wait is a ppoll against the
 * deadline, with MSG_DONTWAIT reads.
 */
static long
conn_read(struct conn *c, char *buf, size_t len, enum conn_wait how,
    int wait_first)
{
	ssize_t	n;
	short	events = POLLIN;
	int	rv;

	if (wait_first && c->ssl == NULL && how == WAIT_IDLE &&
	    worker_state != WORKER_STOP && conn_rcvtimeo(c) == 0) {
		if ((n = read(c->fd, buf, len)) >= 0)
			return n;
		if (errno == EAGAIN)
			return CONN_TIMEOUT;
		if (errno != EINTR)
			return CONN_ERROR;
	} else if (wait_first && (c->ssl == NULL || !SSL_has_pending(c->ssl)) &&
	    (rv = conn_wait(c, POLLIN, how)) != 0)
		return rv;
	for (;;) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : len);
			if (n > 0)
				return n;
			if ((rv = conn_ssl_result(c, n, &events)) != 1)
				return rv;
		} else {
			n = recv(c->fd, buf, len, MSG_DONTWAIT);
			if (n >= 0)
				return n;
			if (errno != EAGAIN && errno != EINTR)
				return CONN_ERROR;
		}
		if ((rv = conn_wait(c, events, how)) != 0)
			return rv;
	}
}

/* Writes all of buf within send_timeout; 0 or -1. */
static int
conn_write(struct conn *c, const char *buf, size_t len)
{
	long long	 saved = c->deadline;
	ssize_t		 n;
	short		 events = POLLOUT;
	int		 rv = 0;

	c->deadline = timecache_mono_ms() + c->srv->conf.send_timeout;
	while (len > 0) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : len);
			if (n <= 0 && conn_ssl_result(c, n, &events) != 1) {
				rv = -1;
				break;
			}
		} else {
			n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				rv = -1;
				break;
			}
		}
		if (n > 0) {
			buf += n;
			len -= n;
		} else if (conn_wait(c, events, WAIT_WRITE) != 0) {
			rv = -1;
			break;
		}
	}
	/* The read deadline in force before this write still holds. */
	c->deadline = saved;
	return rv;
}

static int
conn_flush(struct conn *c)
{
	int	rv = 0;

	if (c->outlen > 0)
		rv = conn_write(c, c->out, c->outlen);
	c->outlen = 0;
	return rv;
}

static int
conn_respond(struct conn *c, int resp, int connhdr)
{
	const char	*r;
	size_t		 len;

	r = http_response(resp, connhdr, &len);
	if (c->outlen + len > CONN_OUTCAP && conn_flush(c) == -1)
		return -1;
	memcpy(c->out + c->outlen, r, len);
	c->outlen += len;
	return 0;
}

/*
 * Reads more request bytes, after sending what is pending: a pipelining
 * client may wait for those answers before it sends the rest.
 */
static long
conn_fill(struct conn *c, enum conn_wait how)
{
	long	n;
	int	answered = c->outlen > 0;

	if (conn_flush(c) == -1)
		return CONN_ERROR;
	if (c->off > 0) {
		memmove(c->in, c->in + c->off, c->inlen - c->off);
		c->inlen -= c->off;
		c->off = 0;
	}
	n = conn_read(c, c->in + c->inlen, c->incap - c->inlen, how,
	    answered && c->inlen == 0);
	if (n > 0)
		c->inlen += n;
	return n;
}

/*
 * A client that sent "Expect: 100-continue" may wait for this before it
 * sends the body we have to read (RFC 9110 10.1.1).  Once per request,
 * and only when the body is not here already.
 */
static void
conn_continue(struct conn *c, const struct http_request *req, int *sent)
{
	static const char	cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (*sent || !req->expect_continue || req->version_minor == 0 ||
	    c->outlen + sizeof(cont) - 1 > CONN_OUTCAP)
		return;
	memcpy(c->out + c->outlen, cont, sizeof(cont) - 1);
	c->outlen += sizeof(cont) - 1;
	*sent = 1;
}

/*
 * Reads and drops the request body so the next request on the connection
 * starts where it should.  0, or the status to answer with.
 */
static int
conn_discard_body(struct conn *c, const struct http_request *req)
{
	const struct conf	*conf = &c->srv->conf;
	struct http_chunked	 ch;
	unsigned long long	 remain;
	long			 n;
	size_t			 avail;
	int			 sent = 0;

	if (!req->chunked) {
		if (req->content_length <= 0)
			return 0;
		if (req->content_length > conf->max_body_size)
			return 413;
		remain = req->content_length;
		c->deadline = timecache_mono_ms() + conf->header_timeout;
		for (;;) {
			avail = c->inlen - c->off;
			if (avail > remain)
				avail = remain;
			c->off += avail;
			if ((remain -= avail) == 0)
				return 0;
			conn_continue(c, req, &sent);
			if ((n = conn_fill(c, WAIT_REQUEST)) <= 0)
				return n == CONN_TIMEOUT ? 408 : -1;
		}
	}
	http_chunked_init(&ch);
	c->deadline = timecache_mono_ms() + conf->header_timeout;
	for (;;) {
		n = http_parse_chunked(&ch, c->in + c->off, c->inlen - c->off,
		    conf->max_body_size);
		if (n < 0)
			return -n;
		c->off += n;
		if (http_chunked_done(&ch))
			return 0;
		conn_continue(c, req, &sent);
		if ((n = conn_fill(c, WAIT_REQUEST)) <= 0)
			return n == CONN_TIMEOUT ? 408 : -1;
	}
}

/*
 * Half-closes and drains what the client still sends for a moment, so
 * that unread input does not turn our close into a reset that destroys
 * the response in flight (nginx's lingering close).
 */
static void
conn_close(struct conn *c, int linger)
{
	char	buf[4096];
	long	n;
	size_t	total = 0;

	if (c->ssl != NULL && !c->ssl_fatal) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);	/* our close_notify, not waiting */
	}
	/* Nothing unread, nothing expected: a plain close is clean. */
	if (!linger && recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
		goto done;
	if (shutdown(c->fd, SHUT_WR) == 0) {
		c->deadline = timecache_mono_ms() + CONN_LINGER_MS;
		while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
			/* Bounded in bytes and time: a flood ends it too. */
			if (n > 0 && (total += n) < 1024 * 1024 &&
			    timecache_mono_ms() < c->deadline)
				continue;
			if (n > 0)
				break;
			if ((errno != EAGAIN && errno != EINTR) ||
			    conn_wait(c, POLLIN, WAIT_REQUEST) != 0)
				break;
		}
	}
 done:
	ERR_clear_error();
	SSL_free(c->ssl);
	worker_conn_fd = -1;
	close(c->fd);
}

/*
 * Answers a request that could not be read (malformed, timed out) and
 * says the connection ends; the caller closes it with a linger, which
 * this returns for it to set.
 */
static int
conn_fail(struct conn *c, int resp)
{
	conn_log_request(c, NULL);
	conn_log(c, resp);
	conn_respond(c, resp, HTTP_CONN_CLOSE);
	return 1;
}

/* The Connection header a response carries. */
static int
conn_header(const struct http_request *req, int close)
{
	if (close)
		return HTTP_CONN_CLOSE;
	return req->version_minor == 0 ? HTTP_CONN_KEEPALIVE : HTTP_CONN_NONE;
}

/* Answers the complete requests in the buffer; 0 to go on, -1 to close. */
static int
conn_process(struct conn *c, int *linger)
{
	const struct conf	*conf = &c->srv->conf;
	struct http_limits	 lim;
	struct http_request	 req;
	int			 r, resp, status, close;

	lim.max_uri = conf->max_uri_size;
	lim.max_header = conf->max_header_size;
	lim.max_fields = HTTP_MAX_FIELDS;
	for (;;) {
		r = http_parse_request(c->in + c->off, c->inlen - c->off, &lim,
		    &req);
		if (r == HTTP_PARSE_INCOMPLETE)
			return 0;
		if (r < 0) {
			*linger = conn_fail(c, http_resp_for_status(-r));
			return -1;
		}
		/*
		 * Everything that reads the request's bytes comes first:
		 * discarding its body may move them.
		 */
		conn_log_request(c, &req);
		resp = http_resp_for_request(&req);
		c->off += r;
		c->nrequests++;
		if (http_path_normalize(&req, conn_path, conn_pathcap) == -1)
			status = 400;
		else
			status = conn_discard_body(c, &req);
		if (status != 0) {
			if (status > 0) {
				*linger = 1;
				resp = http_resp_for_status(status);
				conn_log(c, resp);
				conn_respond(c, resp, HTTP_CONN_CLOSE);
			}
			return -1;
		}
		close = !req.keepalive ||
		    c->nrequests >= conf->keepalive_requests ||
		    conf->keepalive_timeout == 0 ||
		    worker_state != WORKER_RUN ||
		    (resp == HTTP_RESP_405 && ++c->n405 >= CONN_MAX_405);
		conn_log(c, resp);
		if (conn_respond(c, resp, conn_header(&req, close)) == -1)
			return -1;
		/* A pipelined request waiting behind this one starts now. */
		if (log_access_on())
			c->started = timecache_mono_us();
		if (close) {
			*linger = c->off < c->inlen;
			return -1;
		}
	}
}

void
conn_serve(struct server *srv, int fd, int tls, const struct sockaddr *peer)
{
	const struct conf	*conf = &srv->conf;
	struct conn		 conn, *c = &conn;
	long			 n;
	size_t			 before;
	int			 linger = 0;

	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->fd = fd;
	c->in = conn_inbuf;
	c->incap = conn_incap;
	c->out = conn_outbuf;
	c->peer = peer;
	worker_conn_fd = fd;

	if (tls) {
		c->deadline = timecache_mono_ms() + conf->handshake_timeout;
		if ((c->ssl = SSL_new(srv->ssl_ctx)) == NULL ||
		    !SSL_set_fd(c->ssl, fd)) {
			tls_log_errors("SSL_new");
			c->ssl_fatal = 1;
			goto done;
		}
		if (conn_handshake(c) != 0)
			goto done;
	}
	/* The first request's header must arrive within header_timeout. */
	c->deadline = timecache_mono_ms() + conf->header_timeout;
	if (log_access_on())
		c->started = timecache_mono_us();
	for (;;) {
		if (c->inlen > c->off && conn_process(c, &linger) == -1)
			break;
		before = c->inlen - c->off;
		if (before == 0 && c->nrequests > 0)
			c->deadline = timecache_mono_ms() + conf->keepalive_timeout;
		n = conn_fill(c, before == 0 ? WAIT_IDLE : WAIT_REQUEST);
		/* A request had started: tell the client why. */
		if (n == CONN_TIMEOUT && before > 0)
			linger = conn_fail(c, HTTP_RESP_408);
		if (n <= 0)
			break;
		if (before == 0 && c->nrequests > 0) {
			c->deadline = timecache_mono_ms() + conf->header_timeout;
			if (log_access_on())
				c->started = timecache_mono_us();
		}
		/*
		 * Parse again only when a line was completed, or at the size
		 * limits: a client sending a byte at a time must not make
		 * the parser rescan its whole head on every byte.
		 */
		while (memchr(c->in + c->inlen - n, '\n', n) == NULL &&
		    c->inlen - c->off <= CONN_HEAD_MAX(conf)) {
			if ((n = conn_fill(c, WAIT_REQUEST)) <= 0)
				break;
		}
		if (n == CONN_TIMEOUT)
			linger = conn_fail(c, HTTP_RESP_408);
		if (n <= 0)
			break;
	}
 done:
	conn_flush(c);
	conn_close(c, linger);
}
