/*
 * A worker's connections, each one a small state machine: TLS handshake,
 * request head, body, send, linger.  Each step advances its connection
 * as far as the bytes at hand allow and answers with one enum conn_step:
 * go on, park until the socket is readable, park until it is writable,
 * yield to the other connections, or close.  conn_resume dispatches the
 * steps; conn_close is the only way out.  No step ever waits: a parked
 * connection sits in the worker's epoll set with one deadline (timer.c),
 * and the worker goes on with whichever connection is ready.
 *
 * Memory follows the bytes: an idle connection holds its struct and, over
 * TLS, OpenSSL's state with its buffers released.  A buffer for the
 * request head and the responses comes from a free list when bytes
 * arrive and goes back once everything that came is answered.
 */
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "astleyd.h"
#include "proxy_parse.h"
#include "status.h"
#include "timer.h"

#define CONN_OUTCAP	(16 * 1024)
#define CONN_MAX_405	4	/* the 4th 405 on a connection closes it */
#define CONN_LINGER_MS	2000	/* draining input before close */
#define CONN_LINGER_MAX	(1024 * 1024)
#define CONN_TURN	16	/* requests or reads per turn, then yield */
#define CONN_FREE_BUFS	64	/* buffers kept for reuse */
#define CONN_WARN_MS	60000	/* one "worker_connections" warning a minute */
#define CONN_NOTES	10	/* lines a second about clients' errors */
#define CONN_HEAD_MAX(conf)	\
	((size_t)(2 * (conf)->max_uri_size + (conf)->max_header_size))

enum conn_state {
	CONN_PROXY,
	CONN_HANDSHAKE,
	CONN_HEAD,
	CONN_BODY,
	CONN_SEND,
	CONN_LINGER
};

enum conn_step {
	STEP_NEXT,	/* the state changed: run the next step now */
	STEP_READ,	/* park until readable */
	STEP_WRITE,	/* park until writable */
	STEP_YIELD,	/* more to do, after the others had a turn */
	STEP_CLOSE
};

/* The bytes of a connection with a request in progress. */
struct conn_buf {
	SLIST_ENTRY(conn_buf)	 next;
	struct accesslog_req	 log;
	long long		 started[CONN_TURN + 2]; /* answered, unsent */
	int			 nstarted;
	char			*extra;	/* a status response, after out */
	size_t			 extralen;
	size_t			 extraoff;
	char			*out;	/* CONN_OUTCAP bytes after in */
	char			 in[];
};

struct conn {
	TAILQ_ENTRY(conn)	 runq;
	struct timer		 timer;
	struct conn		*next_free;
	int			 fd;		/* -1: a free slot */
	SSL			*ssl;
	enum conn_state		 state;
	enum conn_state		 after;		/* what CONN_SEND returns to */
	uint32_t		 events;	/* what epoll watches */
	uint32_t		 et;		/* EPOLLET, or 0 */
	unsigned int		 readable:1;	/* a read may find bytes */
	unsigned int		 queued:1;	/* on the run queue */
	unsigned int		 idle:1;	/* no request bytes yet */
	unsigned int		 parse:1;	/* new bytes end a line */
	unsigned int		 close:1;	/* close once sent */
	unsigned int		 linger:1;	/* and drain input first */
	unsigned int		 tls_error:1;	/* no close_notify */
	unsigned int		 keepalive:1;	/* of the request in progress */
	unsigned int		 expect:1;	/* 100-continue asked */
	unsigned int		 continued:1;	/* and sent */
	unsigned int		 chunked:1;
	unsigned int		 tls:1;		/* a TLS port's connection */
	unsigned int		 instance:1;	/* flips as the slot is reused */
	unsigned int		 status:1;	/* a status_listen port's */
	unsigned int		 allowed:1;	/* from status_allow */
	unsigned int		 head:1;	/* a status page's HEAD */
	int8_t			 gauge;		/* enum status_gauge */
	int			 turn;		/* work done this turn */
	int			 minor;		/* HTTP/1.minor */
	int			 resp;		/* answer held over the body */
	int			 n405;
	long long		 nrequests;
	long long		 started;	/* request's first byte, us */
	struct conn_buf		*buf;
	size_t			 inlen;		/* bytes in buf->in */
	size_t			 off;		/* start of the unparsed bytes */
	size_t			 outlen;
	size_t			 outoff;	/* sent so far */
	unsigned long long	 remain;	/* Content-Length body left */
	size_t			 lingered;
	struct http_chunked	 ch;
	struct sockaddr_storage	 peer;
};

/* One per worker. */
static struct conn_pool {
	const struct conf	*conf;
	SSL_CTX			*ssl_ctx;
	int			 epfd;
	struct conn		*conns;
	int			 cap;
	int			 hwm;		/* slots ever used */
	int			 nused;
	struct conn		*free;
	SLIST_HEAD(, conn_buf)	 bufs;
	int			 nbufs;		/* on the free list */
	int			 nheld;		/* held by connections */
	size_t			 incap;
	char			*path;		/* a normalized request path */
	size_t			 pathcap;
	TAILQ_HEAD(, conn)	 runq;
	int			 nqueued;
	struct timers		 timers;
	int			 quitting;
	int			 draining;	/* /healthz says 503 */
	long long		 warned;	/* last cap warning, ms */
	struct log_ratelimit	 notes;		/* lines about clients' errors */
} pool;

static void	conn_close(struct conn *);
static void	conn_steps(struct conn *);
static int	conn_fail(struct conn *, int);

int
conn_init(const struct conf *conf, SSL_CTX *ctx, int epfd, int cap)
{
	long long	len[TIMER_KINDS];

	memset(&pool, 0, sizeof(pool));
	pool.conf = conf;
	pool.ssl_ctx = ctx;
	pool.epfd = epfd;
	pool.cap = cap;
	/*
	 * Room for a whole head at its limits (leading empty lines up to
	 * max_uri_size, the request line, the fields), with a read's worth
	 * spare: past CONN_HEAD_MAX the parser always has an answer.
	 */
	pool.incap = CONN_HEAD_MAX(conf) + 4096;
	pool.pathcap = conf->max_uri_size + 2;
	SLIST_INIT(&pool.bufs);
	TAILQ_INIT(&pool.runq);
	len[TIMER_HELLO] = conf->handshake_timeout;
	len[TIMER_HANDSHAKE] = conf->handshake_timeout;
	len[TIMER_FIRST] = conf->header_timeout;
	len[TIMER_HEAD] = conf->header_timeout;
	len[TIMER_BODY] = conf->header_timeout;
	len[TIMER_IDLE] = conf->keepalive_timeout;
	len[TIMER_SEND] = conf->send_timeout;
	len[TIMER_LINGER] = CONN_LINGER_MS;
	timers_init(&pool.timers, len);
	pool.warned = -CONN_WARN_MS;
	memset(&pool.notes, 0, sizeof(pool.notes));
	pool.notes.burst = CONN_NOTES;
	pool.notes.start = -1000000;
	/* Untouched slots cost no memory: calloc maps them lazily. */
	if ((pool.conns = calloc(cap, sizeof(*pool.conns))) == NULL ||
	    (pool.path = malloc(pool.pathcap)) == NULL)
		return -1;
	return 0;
}

void
conn_free(void)
{
	struct conn_buf	*b;
	int		 i;

	for (i = 0; i < pool.hwm; i++)
		if (pool.conns[i].fd != -1)
			conn_close(&pool.conns[i]);
	while ((b = SLIST_FIRST(&pool.bufs)) != NULL) {
		SLIST_REMOVE_HEAD(&pool.bufs, next);
		free(b);
	}
	free(pool.conns);
	free(pool.path);
	pool.conns = NULL;
	pool.path = NULL;
}

int
conn_count(void)
{
	return pool.nused;
}

/* Buffers held by connections: only those with bytes in progress. */
int
conn_buffers(void)
{
	return pool.nheld;
}

/* ------------------------------------------------------------ buffers */

static int
conn_buf_get(struct conn *c)
{
	struct conn_buf	*b;

	if (c->buf != NULL)
		return 0;
	if ((b = SLIST_FIRST(&pool.bufs)) != NULL) {
		SLIST_REMOVE_HEAD(&pool.bufs, next);
		pool.nbufs--;
	} else {
		if ((b = malloc(sizeof(*b) + pool.incap + CONN_OUTCAP)) ==
		    NULL) {
			log_warn("connection buffer");
			return -1;
		}
		b->out = b->in + pool.incap;
	}
	c->buf = b;
	c->inlen = c->off = c->outlen = c->outoff = 0;
	b->nstarted = 0;
	b->extra = NULL;
	b->extralen = b->extraoff = 0;
	pool.nheld++;
	return 0;
}

/* Gives the buffer back; only when nothing in it is pending. */
static void
conn_buf_put(struct conn *c)
{
	if (c->buf == NULL)
		return;
	free(c->buf->extra);
	pool.nheld--;
	if (pool.nbufs < CONN_FREE_BUFS) {
		SLIST_INSERT_HEAD(&pool.bufs, c->buf, next);
		pool.nbufs++;
	} else
		free(c->buf);
	c->buf = NULL;
	c->inlen = c->off = c->outlen = c->outoff = 0;
}

/* ---------------------------------------------------------------- I/O */

static long
conn_recv(struct conn *c, char *buf, size_t len)
{
	ssize_t	n;

	if (c->ssl != NULL)
		return tls_read(c->ssl, buf, len);
	do
		n = recv(c->fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return n;
	return errno == EAGAIN ? IO_WANT_READ : IO_ERROR;
}

static long
conn_send(struct conn *c, const char *buf, size_t len)
{
	ssize_t	n;

	if (c->ssl != NULL)
		return tls_write(c->ssl, buf, len);
	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return n;
	return errno == EAGAIN ? IO_WANT_WRITE : IO_ERROR;
}

/*
 * Reads what is there into the buffer: a byte count, or IO_*.  A short
 * read means the socket is drained; epoll says when it is not.
 */
static long
conn_fill(struct conn *c)
{
	size_t	space;
	long	n;

	if (conn_buf_get(c) == -1)
		return IO_ERROR;
	if (c->off > 0) {
		memmove(c->buf->in, c->buf->in + c->off, c->inlen - c->off);
		c->inlen -= c->off;
		c->off = 0;
	}
	space = pool.incap - c->inlen;
	n = conn_recv(c, c->buf->in + c->inlen, space);
	if (n > 0) {
		c->inlen += n;
		if ((size_t)n < space)
			c->readable = c->ssl != NULL && tls_pending(c->ssl);
	} else if (n == IO_WANT_READ)
		c->readable = 0;
	else if (n == IO_ERROR && c->ssl != NULL)
		c->tls_error = 1;
	return n;
}

/* Reads more: STEP_NEXT with *n bytes, or how to park or end. */
static int
conn_more(struct conn *c, long *n)
{
	if (!c->readable)
		return STEP_READ;
	switch (*n = conn_fill(c)) {
	case IO_WANT_READ:
		return STEP_READ;
	case IO_WANT_WRITE:
		return STEP_WRITE;
	default:
		return *n > 0 ? STEP_NEXT : STEP_CLOSE;
	}
}

/* Queues a prebuilt response; the caller made room for it. */
static void
conn_respond(struct conn *c, int resp, int connhdr)
{
	const char	*r;
	size_t		 len;

	if (resp == HTTP_RESP_METRICS || resp == HTTP_RESP_STUB) {
		/* Nothing is queued after it: conn_head sends first. */
		c->buf->extra = http_dynamic_response(resp, connhdr, c->head,
		    &c->buf->extralen);
		if (c->buf->extra == NULL)
			c->close = 1;
		return;
	}
	r = http_response(resp, connhdr, &len);
	if (c->outlen + len > CONN_OUTCAP)
		return;		/* never: http_response_max() was checked */
	memcpy(c->buf->out + c->outlen, r, len);
	c->outlen += len;
}

/*
 * A client's misbehaviour, at info: at most CONN_NOTES lines a second
 * per worker, so a scanner cannot flood the log; the lines held back are
 * counted and reported in one line (conn_notes_flush).
 */
static void	conn_note(const struct conn *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
conn_note(const struct conn *c, const char *fmt, ...)
{
	char	 addr[INET6_ADDRSTRLEN], msg[512];
	va_list	 ap;
	int	 held;

	if (!log_enabled(LOGL_INFO))
		return;
	if (!log_ratelimit(&pool.notes, timecache_mono_ms(), &held))
		return;
	if (held > 0)
		log_info("%d similar messages suppressed", held);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	accesslog_addr((const struct sockaddr *)&c->peer, addr, sizeof(addr));
	log_info("%s: %s", addr, msg);
}

/* The count of lines held back, once their second is over. */
static void
conn_notes_flush(void)
{
	int	held;

	if ((held = log_ratelimit_flush(&pool.notes, timecache_mono_ms())) > 0)
		log_info("%d similar messages suppressed", held);
}

/* What was wrong with a request answered resp, for conn_note. */
static const char *
conn_fail_reason(int resp)
{
	size_t	body;

	switch (http_resp_status(resp, &body)) {
	case 408:
		return "request not complete within header_timeout";
	case 413:
		return "request body larger than max_body_size";
	case 414:
		return "request line longer than max_uri_size";
	case 431:
		return "request header section too large";
	case 505:
		return "HTTP version not supported";
	default:
		return "malformed request";
	}
}

/* ------------------------------------------------------------- steps */

/*
 * The PROXY protocol header a balancer sends first (proxy_parse.c).  It
 * is peeked at, and only its own bytes are taken from the socket: on a
 * TLS port, what follows belongs to OpenSSL.  The bytes of a header that
 * is not complete yet are taken (they can only be header bytes), so
 * that epoll does not report them again and again.
 */
static int
conn_proxy(struct conn *c)
{
	static char		 peek[PROXY_V2_MAX];
	struct proxy_hdr	 hdr;
	ssize_t			 n;
	int			 len;

	if (conn_buf_get(c) == -1)
		return STEP_CLOSE;
	memcpy(peek, c->buf->in, c->inlen);
	n = recv(c->fd, peek + c->inlen, sizeof(peek) - c->inlen, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return STEP_READ;
	if (n <= 0)
		return STEP_CLOSE;
	len = proxy_parse(peek, c->inlen + n, &hdr);
	if (len == PROXY_ERROR ||
	    (len == PROXY_INCOMPLETE && c->inlen + n == sizeof(peek))) {
		conn_note(c, "malformed PROXY protocol header: closed");
		return STEP_CLOSE;
	}
	if (len == PROXY_INCOMPLETE)
		n = recv(c->fd, c->buf->in + c->inlen, n, 0);
	else
		n = recv(c->fd, c->buf->in + c->inlen, len - c->inlen, 0);
	if (n <= 0)
		return STEP_CLOSE;
	c->inlen += n;
	if (len == PROXY_INCOMPLETE) {
		c->readable = 0;
		return STEP_READ;
	}
	conn_buf_put(c);
	if (!hdr.local)
		memcpy(&c->peer, &hdr.src, hdr.srclen < sizeof(c->peer) ?
		    hdr.srclen : sizeof(c->peer));
	c->readable = 1;
	c->state = c->tls ? CONN_HANDSHAKE : CONN_HEAD;
	return STEP_NEXT;
}

static void
conn_tls_count(struct conn *c)
{
	int	resumed, tls13;

	tls_conn_info(c->ssl, &resumed, &tls13);
	if (resumed)
		STATUS_INC(tls_resumed[tls13 ? STATUS_TLS13 : STATUS_TLS12]);
	else
		STATUS_INC(tls_full[tls13 ? STATUS_TLS13 : STATUS_TLS12]);
}

static int
conn_handshake(struct conn *c)
{
	char	why[256];

	/* The first bytes: no longer a connection that has sent nothing. */
	if (c->timer.kind == TIMER_HELLO)
		timer_start(&pool.timers, &c->timer, TIMER_HANDSHAKE,
		    timecache_mono_ms());
	switch (tls_handshake(c->ssl, why, sizeof(why))) {
	case IO_PLAIN_HTTP:
		/* Say why in cleartext, as nginx does, and close. */
		conn_note(c, "plain HTTP request on a TLS port");
		STATUS_INC(tls_failed);
		tls_conn_free(c->ssl);
		c->ssl = NULL;
		c->idle = 0;
		c->started = timecache_mono_us();
		return conn_fail(c, HTTP_RESP_400_PLAIN);
	case 1:
		conn_tls_count(c);
		/* The request may have come with the client's Finished. */
		c->readable = 1;
		c->idle = 1;
		c->state = CONN_HEAD;
		timer_start(&pool.timers, &c->timer, TIMER_FIRST,
		    timecache_mono_ms());
		return STEP_NEXT;
	case IO_WANT_READ:
		return STEP_READ;
	case IO_WANT_WRITE:
		return STEP_WRITE;
	default:
		/* A client that left before its first byte did not fail. */
		if (why[0] != '\0') {
			STATUS_INC(tls_failed);
			conn_note(c, "TLS handshake failed: %s", why);
		}
		c->tls_error = 1;
		return STEP_CLOSE;
	}
}

/* After the response: close (draining input first if asked) or go on. */
static int
conn_closing(struct conn *c)
{
	char	b;

	/* Nothing unread, nothing expected: a plain close is clean. */
	if (!c->linger && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
		return STEP_CLOSE;
	if (c->ssl != NULL && !c->tls_error)
		tls_shutdown(c->ssl);
	if (shutdown(c->fd, SHUT_WR) == -1)
		return STEP_CLOSE;
	conn_buf_put(c);
	c->lingered = 0;
	c->state = CONN_LINGER;
	timer_start(&pool.timers, &c->timer, TIMER_LINGER,
	    timecache_mono_ms());
	return STEP_NEXT;
}

/*
 * Half-closed: drains what the client still sends for a moment, so that
 * unread input does not turn our close into a reset that destroys the
 * response in flight (nginx's lingering close).  Bounded in bytes and
 * by TIMER_LINGER.
 */
static int
conn_linger(struct conn *c)
{
	static char	sink[4096];
	ssize_t		n;

	for (;;) {
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0 && (c->lingered += n) < CONN_LINGER_MAX)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return STEP_READ;
		return STEP_CLOSE;
	}
}

/*
 * A request that could not be read (malformed, timed out) is answered
 * and the connection ends, after a linger.  The log line shows the start
 * of the bytes that came, since there is no request to show.
 */
/* The scoreboard's count of a response, and its start for the timing. */
static void
conn_counted(struct conn *c, int resp)
{
	size_t	len;

	status_response(http_resp_status(resp, &len));
	if (c->buf->nstarted < CONN_TURN + 2)
		c->buf->started[c->buf->nstarted++] = c->started;
}

static int
conn_fail(struct conn *c, int resp)
{
	size_t	body;

	/* Plain HTTP on a TLS port had its own line. */
	if (resp != HTTP_RESP_400_PLAIN)
		conn_note(c, "%s: answered %d", conn_fail_reason(resp),
		    http_resp_status(resp, &body));
	if (conn_buf_get(c) == -1)
		return STEP_CLOSE;
	status_request();
	conn_counted(c, resp);
	if (log_access_on()) {
		accesslog_take(&c->buf->log, NULL, c->buf->in + c->off,
		    c->inlen - c->off);
		accesslog_write(&c->buf->log, (struct sockaddr *)&c->peer,
		    resp, c->started);
	}
	/* After the answers to the requests before it. */
	conn_respond(c, resp, HTTP_CONN_CLOSE);
	c->close = c->linger = 1;
	c->state = CONN_SEND;
	return STEP_NEXT;
}

/* Answers the request in progress, its body (if any) read. */
static void
conn_answer(struct conn *c, int resp, int close)
{
	const struct conf	*conf = pool.conf;
	int			 connhdr;

	/*
	 * A status page is built now, when it is answered (after any body
	 * the request had): the counts of this moment, and its length for
	 * the log line below.
	 */
	if ((resp == HTTP_RESP_METRICS || resp == HTTP_RESP_STUB) &&
	    http_dynamic_body(resp) == -1)
		resp = HTTP_RESP_503;
	if (resp == HTTP_RESP_405 && ++c->n405 >= CONN_MAX_405 && !close)
		STATUS_INC(closed_405);
	close = close || !c->keepalive ||
	    c->nrequests >= conf->keepalive_requests ||
	    conf->keepalive_timeout == 0 || pool.quitting ||
	    (resp == HTTP_RESP_405 && c->n405 >= CONN_MAX_405);
	conn_counted(c, resp);
	if (log_access_on())
		accesslog_write(&c->buf->log, (struct sockaddr *)&c->peer, resp,
		    c->started);
	if (close)
		connhdr = HTTP_CONN_CLOSE;
	else
		connhdr = c->minor == 0 ? HTTP_CONN_KEEPALIVE : HTTP_CONN_NONE;
	conn_respond(c, resp, connhdr);
	c->turn++;
	if (close) {
		c->close = 1;
		/* A refused body, or requests behind this one, may follow. */
		c->linger = c->linger || c->off < c->inlen;
	}
	/* What follows in the buffer is the next request, or idle bytes. */
	c->idle = 1;
	c->parse = 1;
}

/*
 * A complete request head of n bytes: answered now, or after its body.
 * Everything that reads the request's bytes comes first: discarding its
 * body may move them.
 */
static int
conn_request(struct conn *c, const struct http_request *req, int n)
{
	const struct conf	*conf = pool.conf;
	int			 resp;

	if (log_access_on())
		accesslog_take(&c->buf->log, req, c->buf->in + c->off, n);
	c->off += n;
	c->nrequests++;
	status_request();
	c->keepalive = req->keepalive;
	c->minor = req->version_minor;
	if (http_path_normalize(req, pool.path, pool.pathcap) == -1) {
		conn_note(c, "malformed request path: answered 400");
		c->linger = 1;
		conn_answer(c, HTTP_RESP_400, 1);
		return STEP_NEXT;
	}
	if (c->status) {
		/* Counted as nginx does: this request is being written. */
		status_gauge(&c->gauge, STATUS_WRITING);
		resp = http_resp_status_route(req, pool.path, c->allowed,
		    pool.draining);
		c->head = req->method == HTTP_METHOD_HEAD;
	} else
		resp = http_resp_route(req, pool.path, c->tls, pool.draining);
	c->chunked = req->chunked;
	if (req->chunked)
		http_chunked_init(&c->ch);
	else if (req->content_length > conf->max_body_size) {
		conn_note(c, "%s: answered 413", conn_fail_reason(HTTP_RESP_413));
		c->linger = 1;
		conn_answer(c, HTTP_RESP_413, 1);
		return STEP_NEXT;
	} else if (req->content_length <= 0) {
		conn_answer(c, resp, 0);
		return STEP_NEXT;
	} else
		c->remain = req->content_length;
	c->resp = resp;
	c->expect = req->expect_continue && req->version_minor > 0;
	c->continued = 0;
	c->state = CONN_BODY;
	timer_start(&pool.timers, &c->timer, TIMER_BODY, timecache_mono_ms());
	return STEP_NEXT;
}

/* Empty lines before a request are ignored (RFC 9112 2.2). */
static void
conn_skip_empty_lines(struct conn *c)
{
	const char	*p = c->buf->in;

	while (c->off < c->inlen) {
		if (p[c->off] == '\n')
			c->off++;
		else if (p[c->off] == '\r' && c->off + 1 < c->inlen &&
		    p[c->off + 1] == '\n')
			c->off += 2;
		else
			break;
	}
}

/*
 * Reads request heads and answers every complete one, CONN_TURN at most
 * a turn.  Bytes that start a request after an idle time start its own
 * header_timeout; empty lines leave the connection idle.
 */
static int
conn_head(struct conn *c)
{
	const struct conf	*conf = pool.conf;
	struct http_limits	 lim;
	struct http_request	 req;
	long			 n;
	int			 r, step;

	lim.max_uri = conf->max_uri_size;
	lim.max_header = conf->max_header_size;
	lim.max_fields = HTTP_MAX_FIELDS;
	for (;;) {
		if (c->close)
			break;
		if (c->inlen > c->off && c->idle) {
			conn_skip_empty_lines(c);
			/* A lone CR may be half of an empty line. */
			if (c->inlen > c->off && (c->inlen - c->off > 1 ||
			    c->buf->in[c->off] != '\r')) {
				c->idle = 0;
				timer_start(&pool.timers, &c->timer, TIMER_HEAD,
				    timecache_mono_ms());
				c->started = timecache_mono_us();
			}
		}
		if (c->inlen > c->off && c->parse && !c->idle) {
			if (c->turn >= CONN_TURN)
				break;
			/* Room for one more answer, or send first. */
			if (c->outlen + http_response_max() > CONN_OUTCAP ||
			    c->buf->extra != NULL)
				break;
			r = http_parse_request(c->buf->in + c->off,
			    c->inlen - c->off, &lim, &req);
			if (r < 0)
				return conn_fail(c, http_resp_for_status(-r));
			if (r == HTTP_PARSE_INCOMPLETE)
				c->parse = 0;
			else if (conn_request(c, &req, r) != STEP_NEXT ||
			    c->state != CONN_HEAD)
				return STEP_NEXT;
			continue;
		}
		/* A pipelining client may wait for its answers: send first. */
		if (c->outlen > 0 || (c->buf != NULL && c->buf->extra != NULL))
			break;
		if ((step = conn_more(c, &n)) != STEP_NEXT) {
			/* Waiting for a request holds no buffer. */
			if (c->idle && c->inlen == c->off)
				conn_buf_put(c);
			return step;
		}
		/*
		 * Parse again only when a line was completed, or at the size
		 * limits: a client sending a byte at a time must not make the
		 * parser rescan its whole head on every byte.
		 */
		if (memchr(c->buf->in + c->inlen - n, '\n', n) != NULL ||
		    c->inlen - c->off > CONN_HEAD_MAX(conf))
			c->parse = 1;
	}
	if (c->outlen > 0 || (c->buf != NULL && c->buf->extra != NULL)) {
		c->after = CONN_HEAD;
		c->state = CONN_SEND;
		return STEP_NEXT;
	}
	return STEP_YIELD;
}

/*
 * Reads and drops the request body, so the next request on the
 * connection starts where it should; then answers the request.
 */
static int
conn_body(struct conn *c)
{
	static const char	cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	unsigned long long	avail;
	long			n;
	int			step;

	for (;;) {
		if (c->chunked) {
			n = http_parse_chunked(&c->ch, c->buf->in + c->off,
			    c->inlen - c->off, pool.conf->max_body_size);
			if (n < 0) {
				conn_note(c, "%s: answered %d", n == -413 ?
				    conn_fail_reason(HTTP_RESP_413) :
				    "malformed chunked body", (int)-n);
				c->linger = 1;
				conn_answer(c, http_resp_for_status(-n), 1);
				break;
			}
			c->off += n;
			if (http_chunked_done(&c->ch)) {
				conn_answer(c, c->resp, 0);
				break;
			}
		} else {
			avail = c->inlen - c->off;
			if (avail > c->remain)
				avail = c->remain;
			c->off += avail;
			if ((c->remain -= avail) == 0) {
				conn_answer(c, c->resp, 0);
				break;
			}
		}
		/*
		 * A client that sent "Expect: 100-continue" may wait for
		 * this before it sends the body (RFC 9110 10.1.1).
		 */
		if (c->expect && !c->continued) {
			c->continued = 1;
			memcpy(c->buf->out + c->outlen, cont, sizeof(cont) - 1);
			c->outlen += sizeof(cont) - 1;
		}
		if (c->outlen > 0) {
			c->after = CONN_BODY;
			c->state = CONN_SEND;
			return STEP_NEXT;
		}
		if (c->turn++ >= CONN_TURN)
			return STEP_YIELD;
		if ((step = conn_more(c, &n)) != STEP_NEXT)
			return step;
	}
	c->state = CONN_HEAD;
	return STEP_NEXT;
}

/*
 * Sends what is queued.  Once it is all out, the connection closes or
 * goes back to what it was doing; a head or body that had to wait for
 * the socket gets a fresh deadline, and an idle one starts its
 * keep-alive time from this response.
 */
static int
conn_flush(struct conn *c)
{
	struct conn_buf	*b = c->buf;
	long long	 now;
	long		 n;
	int		 i;

	while (c->outoff < c->outlen || (b->extra != NULL &&
	    b->extraoff < b->extralen)) {
		if (c->outoff < c->outlen)
			n = conn_send(c, b->out + c->outoff,
			    c->outlen - c->outoff);
		else
			n = conn_send(c, b->extra + b->extraoff,
			    b->extralen - b->extraoff);
		if (n > 0) {
			status_add(&status_me->c.bytes_sent, n);
			if (c->outoff < c->outlen)
				c->outoff += n;
			else
				b->extraoff += n;
			continue;
		}
		if (n != IO_WANT_READ && n != IO_WANT_WRITE) {
			c->tls_error = c->ssl != NULL;
			return STEP_CLOSE;
		}
		if (c->timer.kind != TIMER_SEND)
			timer_start(&pool.timers, &c->timer, TIMER_SEND,
			    timecache_mono_ms());
		return n == IO_WANT_WRITE ? STEP_WRITE : STEP_READ;
	}
	c->outlen = c->outoff = 0;
	free(b->extra);
	b->extra = NULL;
	b->extralen = b->extraoff = 0;
	/* The answered requests' last bytes are out. */
	if (b->nstarted > 0) {
		now = timecache_mono_us();
		for (i = 0; i < b->nstarted; i++)
			status_served(now - b->started[i]);
		b->nstarted = 0;
	}
	if (c->close)
		return conn_closing(c);
	c->state = c->after;
	if (c->state == CONN_HEAD && c->idle) {
		timer_start(&pool.timers, &c->timer, TIMER_IDLE,
		    timecache_mono_ms());
		if (c->inlen == c->off)
			conn_buf_put(c);
	} else if (c->timer.kind == TIMER_SEND)
		timer_start(&pool.timers, &c->timer, c->state == CONN_BODY ?
		    TIMER_BODY : TIMER_HEAD, timecache_mono_ms());
	return STEP_NEXT;
}

/* ------------------------------------------------------------- driver */

/*
 * What epoll hands back for a connection: its address with the slot's
 * instance bit in the low bit (the struct is aligned), so that an event
 * queued for a connection closed earlier in the same batch is not
 * taken for the one that reuses its slot (nginx's "instance").
 */
static void *
conn_tag(struct conn *c)
{
	return (void *)((uintptr_t)c | c->instance);
}

static void
conn_watch(struct conn *c, uint32_t events)
{
	struct epoll_event	ev;

	if (c->events == events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = conn_tag(c);
	if (epoll_ctl(pool.epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		log_warn("epoll_ctl");
		conn_close(c);
		return;
	}
	c->events = events;
}

static void
conn_enqueue(struct conn *c)
{
	if (c->queued)
		return;
	TAILQ_INSERT_TAIL(&pool.runq, c, runq);
	pool.nqueued++;
	c->queued = 1;
}

static void
conn_dequeue(struct conn *c)
{
	if (!c->queued)
		return;
	TAILQ_REMOVE(&pool.runq, c, runq);
	pool.nqueued--;
	c->queued = 0;
}

/* What the scoreboard counts the connection as (nginx's three). */
static void
conn_gauge(struct conn *c)
{
	int	g;

	if (c->state == CONN_SEND || c->state == CONN_LINGER)
		g = STATUS_WRITING;
	else if ((c->state == CONN_HEAD && c->idle) ||
	    c->timer.kind == TIMER_HELLO)
		g = STATUS_WAITING;
	else
		g = STATUS_READING;
	status_gauge(&c->gauge, g);
}

/* Runs the connection's steps until it must wait, yields or closes. */
static void
conn_resume(struct conn *c)
{
	conn_steps(c);
	if (c->fd != -1)
		conn_gauge(c);
}

static void
conn_steps(struct conn *c)
{
	int	step;

	c->turn = 0;
	conn_dequeue(c);
	for (;;) {
		switch (c->state) {
		case CONN_PROXY:
			step = conn_proxy(c);
			break;
		case CONN_HANDSHAKE:
			step = conn_handshake(c);
			break;
		case CONN_HEAD:
			step = conn_head(c);
			break;
		case CONN_BODY:
			step = conn_body(c);
			break;
		case CONN_SEND:
			step = conn_flush(c);
			break;
		default:
			step = conn_linger(c);
			break;
		}
		switch (step) {
		case STEP_NEXT:
			continue;
		case STEP_READ:
			conn_watch(c, EPOLLIN | c->et);
			return;
		case STEP_WRITE:
			conn_watch(c, EPOLLOUT | c->et);
			return;
		case STEP_YIELD:
			conn_enqueue(c);
			return;
		default:
			conn_close(c);
			return;
		}
	}
}

static void
conn_close(struct conn *c)
{
	status_gauge(&c->gauge, STATUS_NONE);
	conn_dequeue(c);
	timer_stop(&pool.timers, &c->timer);
	if (c->ssl != NULL) {
		if (!c->tls_error)
			tls_shutdown(c->ssl);
		tls_conn_free(c->ssl);
		c->ssl = NULL;
	}
	conn_buf_put(c);
	/* The last descriptor of the socket: epoll forgets it too. */
	close(c->fd);
	c->fd = -1;
	c->next_free = pool.free;
	pool.free = c;
	pool.nused--;
}

/*
 * The connection that has waited longest for a request and sent nothing
 * of it: idle after a response, or new and silent on either port.  NULL
 * when every connection is busy.
 */
static struct conn *
conn_evictable(void)
{
	static const int	 kinds[] = { TIMER_IDLE, TIMER_FIRST,
				    TIMER_HELLO };
	struct timer		*t, *oldest = NULL;
	long long		 started, first = 0;
	size_t			 i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if ((t = timers_first(&pool.timers, kinds[i])) == NULL)
			continue;
		/* Started: the deadline less the kind's length. */
		started = t->deadline - pool.timers.len[kinds[i]];
		if (oldest == NULL || started < first) {
			oldest = t;
			first = started;
		}
	}
	if (oldest == NULL)
		return NULL;
	return (struct conn *)((char *)oldest - offsetof(struct conn, timer));
}

static void
conn_warn_full(const char *what)
{
	long long	now = timecache_mono_ms();

	if (now - pool.warned < CONN_WARN_MS)
		return;
	pool.warned = now;
	log_warnx("worker_connections (%d) reached: %s", pool.cap, what);
}

/*
 * 1 when a new connection can be taken, by eviction if need be; warns
 * when it cannot and the caller was accepting until now.
 */
int
conn_room(int accepting)
{
	if (pool.nused < pool.cap || conn_evictable() != NULL)
		return 1;
	if (accepting)
		conn_warn_full("not accepting until a connection closes");
	return 0;
}

/*
 * Takes over fd, a new non-blocking connection from a listener; closes
 * it on failure.
 */
void
conn_open(int fd, const struct conf_listen *cl, const struct sockaddr *sa,
    socklen_t salen)
{
	struct epoll_event	 ev;
	struct conn		*c;
	unsigned int		 instance;

	STATUS_INC(accepted);
	if (pool.nused == pool.cap) {
		if ((c = conn_evictable()) == NULL) {
			close(fd);
			return;
		}
		conn_warn_full("closing the oldest idle connections");
		STATUS_INC(evicted);
		conn_close(c);
	}
	STATUS_INC(handled);
	if ((c = pool.free) != NULL)
		pool.free = c->next_free;
	else
		c = &pool.conns[pool.hwm++];
	instance = !c->instance;
	memset(c, 0, sizeof(*c));
	c->instance = instance;
	c->gauge = STATUS_NONE;
	timer_init(&c->timer);
	c->fd = fd;
	pool.nused++;
	memcpy(&c->peer, sa, salen < sizeof(c->peer) ? salen :
	    sizeof(c->peer));
	/*
	 * Edge-triggered for cleartext: a step parks only after a read
	 * came back short or with EAGAIN, so the socket was drained and
	 * any later byte is a new edge; level-triggered epoll would poll
	 * the socket again on every wait.  OpenSSL reads ahead into its
	 * own buffer, past what we see, so TLS stays level-triggered.
	 */
	c->et = cl->tls ? 0 : EPOLLET;
	c->events = EPOLLIN | c->et;
	memset(&ev, 0, sizeof(ev));
	ev.events = c->events;
	ev.data.ptr = conn_tag(c);
	if (epoll_ctl(pool.epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		log_warn("epoll_ctl");
		conn_close(c);
		return;
	}
	c->tls = cl->tls;
	c->status = cl->status;
	c->allowed = cl->status && conf_cidr_match(pool.conf->status_allow,
	    pool.conf->nstatus_allow, sa);
	if (cl->proxy && !conf_cidr_match(pool.conf->proxy_from,
	    pool.conf->nproxy_from, sa)) {
		conn_note(c, "not in proxy_protocol_from: closed");
		conn_close(c);
		return;
	}
	/* The first bytes (or the PROXY header) within the port's time. */
	c->idle = 1;
	timer_start(&pool.timers, &c->timer, c->tls ? TIMER_HELLO :
	    TIMER_FIRST, timecache_mono_ms());
	if (c->tls && (c->ssl = tls_conn_new(pool.ssl_ctx, fd)) == NULL) {
		c->tls_error = 1;
		conn_close(c);
		return;
	}
	c->state = cl->proxy ? CONN_PROXY : c->tls ? CONN_HANDSHAKE : CONN_HEAD;
	conn_gauge(c);
}

/*
 * epoll says the connection's socket is ready (or failed: a read says).
 * tag is what conn_tag gave epoll.
 */
void
conn_event(void *tag, uint32_t events)
{
	struct conn	*c = (struct conn *)((uintptr_t)tag & ~(uintptr_t)1);

	(void)events;
	if (c->fd == -1 || c->instance != ((uintptr_t)tag & 1))
		return;		/* closed, maybe reused, earlier in this batch */
	c->readable = 1;
	conn_resume(c);
}

/* The connections that yielded, each once. */
void
conn_run(void)
{
	struct conn	*c;
	int		 n = pool.nqueued;

	while (n-- > 0 && (c = TAILQ_FIRST(&pool.runq)) != NULL)
		conn_resume(c);
}

/* Milliseconds epoll may wait: 0 with yielded work, -1 for no limit. */
int
conn_timeout(void)
{
	long long	ms, held;

	if (pool.nqueued > 0)
		return 0;
	ms = timers_next(&pool.timers, timecache_mono_ms());
	/* Wake to report the lines held back, even with nothing to do. */
	held = log_ratelimit_next(&pool.notes, timecache_mono_ms());
	if (held != -1 && (ms == -1 || held < ms))
		ms = held;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/*
 * Ends what is past its deadline.  A request that had started gets its
 * 408; every other wait ends in a close.
 */
void
conn_expire(void)
{
	struct timer	*t;
	struct conn	*c;
	long long	 now = timecache_mono_ms();
	int		 kind;

	conn_notes_flush();
	while ((t = timers_expired(&pool.timers, now, &kind)) != NULL) {
		c = (struct conn *)((char *)t - offsetof(struct conn, timer));
		STATUS_INC(timeouts[kind]);
		if (kind == TIMER_HANDSHAKE)
			STATUS_INC(tls_failed);
		switch (kind) {
		case TIMER_HEAD:
			if (c->idle || c->inlen == c->off) {
				conn_close(c);
				break;
			}
			conn_fail(c, HTTP_RESP_408);
			conn_resume(c);
			break;
		case TIMER_BODY:
			c->linger = 1;
			conn_answer(c, HTTP_RESP_408, 1);
			c->state = CONN_SEND;
			conn_resume(c);
			break;
		case TIMER_HELLO:
		case TIMER_HANDSHAKE:
		case TIMER_SEND:
			c->tls_error = 1;	/* no close_notify to send */
			conn_close(c);
			break;
		default:
			conn_close(c);
		}
	}
}

/*
 * A graceful stop ends nothing: every request still gets its answer,
 * with "Connection: close", and an idle connection's next request too,
 * since closing it under a client that is sending right now would lose
 * that request.  The worker exits when its last connection closes.
 */
void
conn_quit(void)
{
	pool.quitting = 1;
}

/* A graceful stop is coming: tell the balancer, serve on. */
void
conn_drain(void)
{
	pool.draining = 1;
}

/* A fast stop ends every wait, but no response being sent. */
void
conn_stop(void)
{
	struct conn	*c;
	int		 i;

	pool.quitting = 1;
	for (i = 0; i < pool.hwm; i++) {
		c = &pool.conns[i];
		if (c->fd == -1)
			continue;
		if (c->state == CONN_SEND && c->outoff < c->outlen)
			c->close = 1;
		else
			conn_close(c);
	}
}
