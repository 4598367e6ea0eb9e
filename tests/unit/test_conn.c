/*
 * Unit tests for server/conn.c: its steps driven through the same calls
 * the worker loop makes (conn_open, conn_event, conn_run, conn_expire),
 * over socketpairs, with short timeouts.  The test is the client.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "astleyd.h"
#include "tap.h"

#define REQ	"GET / HTTP/1.1\r\nHost: t\r\n\r\n"

static int		epfd;
static struct conf	conf;
static struct conf_listen plain;	/* cleartext, no PROXY header */
static void		*last_tag;	/* epoll data of the last event */
static const char	*get_resp;	/* the prebuilt keep-alive 200 */
static size_t		 get_len;

/* A server-side socket handed to conn_open; the client end returned. */
static int
pair(void)
{
	struct sockaddr_un	sun;
	int			sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1) {
		perror("socketpair");
		exit(1);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	conn_open(sv[0], &plain, (struct sockaddr *)&sun, sizeof(sun));
	return sv[1];
}

/* One turn of the worker loop, waiting at most ms. */
static void
turn(int ms)
{
	struct epoll_event	evs[16];
	int			i, n, t = conn_timeout();

	if (t == -1 || t > ms)
		t = ms;
	n = epoll_wait(epfd, evs, 16, t);
	for (i = 0; i < n; i++) {
		last_tag = evs[i].data.ptr;
		conn_event(evs[i].data.ptr, evs[i].events);
	}
	conn_run();
	conn_expire();
}

static void
turns(int ms)
{
	long long	end = timecache_mono_ms() + ms;

	while (timecache_mono_ms() < end)
		turn(10);
}

/* What the client end has, without waiting; -1 at EOF before any. */
static ssize_t
drain(int fd, char *buf, size_t len, int *eof)
{
	ssize_t	n, got = 0;

	*eof = 0;
	while ((size_t)got < len) {
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n == 0)
			*eof = 1;
		if (n <= 0)
			break;
		got += n;
	}
	return got;
}

/* The Date may have moved on since: take the current one. */
static void
same_but_date(char *buf, size_t len)
{
	const char	*want = memmem(get_resp, get_len, "Date: ", 6);
	char		*got = memmem(buf, len, "Date: ", 6);

	if (want != NULL && got != NULL &&
	    (size_t)(got - buf) + 6 + TIMECACHE_HTTP_LEN <= len)
		memcpy(got + 6, want + 6, TIMECACHE_HTTP_LEN);
}

static void
send_all(int fd, const char *s)
{
	size_t	len = strlen(s);

	if (send(fd, s, len, 0) != (ssize_t)len) {
		perror("send");
		exit(1);
	}
}

static void
test_get(void)
{
	char	buf[8192];
	int	fd = pair(), eof;
	ssize_t	n;

	send_all(fd, REQ);
	turn(100);
	n = drain(fd, buf, sizeof(buf), &eof);
	same_but_date(buf, n);
	is_mem(buf, n, get_resp, get_len, "GET answered with the exact "
	    "prebuilt response");
	ok(!eof, "and the connection stays open");
	is_int(conn_count(), 1, "one connection held");
	close(fd);
	turn(50);
	is_int(conn_count(), 0, "closed when the client closes");
}

/*
 * 40 pipelined requests in one write: at most CONN_TURN (16) are answered
 * before the connection yields to the others; all in the end.
 */
static void
test_pipeline_fairness(void)
{
	static char	req[40 * sizeof(REQ)], buf[200000];
	int		fd = pair(), eof, i;
	ssize_t		n;

	req[0] = '\0';
	for (i = 0; i < 40; i++)
		strlcat(req, REQ, sizeof(req));
	send_all(fd, req);
	turn(100);
	n = drain(fd, buf, sizeof(buf), &eof);
	/* Once for the event, once more from the run queue. */
	is_int(n, 2 * 16 * (ssize_t)get_len, "16 answers per resume");
	is_int(conn_timeout(), 0, "the rest waits on the run queue");
	turns(100);
	n += drain(fd, buf + n, sizeof(buf) - n, &eof);
	is_int(n, 40 * (ssize_t)get_len, "all 40 answered");
	close(fd);
	turn(50);
}

/*
 * The head deadline is per request, from its first byte: a request
 * split over writes that each finish one request and start the next
 * never times out, though the whole exchange outlasts header_timeout.
 */
static void
test_split_pipelining(void)
{
	static char	buf[65536];
	const char	*halves[2] = { "GET / HTTP/1.1\r\nHo",
			    "st: t\r\n\r\nGET / HTTP/1.1\r\nHo" };
	int		fd = pair(), eof, i;
	ssize_t		n = 0;

	send_all(fd, halves[0]);
	for (i = 0; i < 8; i++) {	/* 8 x 100 ms, header_timeout 300 */
		turns(100);
		send_all(fd, halves[1]);
	}
	turns(100);
	n = drain(fd, buf, sizeof(buf), &eof);
	is_int(n, 8 * (ssize_t)get_len, "8 answers, no 408");
	ok(!eof, "still open");
	/* Half a request, then silence: 408 at header_timeout. */
	turns(400);
	n = drain(fd, buf, sizeof(buf), &eof);
	ok(n > 12 && memcmp(buf, "HTTP/1.1 408", 12) == 0,
	    "the last, unfinished head gets its 408");
	close(fd);
	turn(50);
}

/*
 * CRLF while idle is ignored (RFC 9112 2.2): no 408 on an idle
 * connection, and the keep-alive deadline keeps running from the last
 * response (400 ms), not from the CRLF (that would be 750 ms).
 */
static void
test_idle_crlf(void)
{
	char		buf[8192];
	int		fd = pair(), eof;
	long long	t0;
	ssize_t		n;

	send_all(fd, REQ);
	turn(100);
	drain(fd, buf, sizeof(buf), &eof);
	t0 = timecache_mono_ms();
	turns(200);
	send_all(fd, "\r\n");
	turns(150);
	send_all(fd, "\r\n");
	while (conn_count() > 0 && timecache_mono_ms() - t0 < 2000)
		turn(10);
	n = drain(fd, buf, sizeof(buf), &eof);
	is_int(n, 0, "nothing written on the idle connection");
	ok(eof, "closed");
	ok(timecache_mono_ms() - t0 >= 380 && timecache_mono_ms() - t0 < 600,
	    "at keepalive_timeout from the response (%lld ms)",
	    timecache_mono_ms() - t0);
	close(fd);
}

/*
 * Waiting for a request holds no buffer, even after a wake-up that finds
 * nothing to read; and a slot's next connection gets another epoll tag,
 * so an event left over for the old one is not taken for it.
 */
static void
test_idle_holds_nothing(void)
{
	char	 buf[8192];
	void	*tag;
	int	 fd = pair(), eof;

	send_all(fd, REQ);
	turn(100);
	drain(fd, buf, sizeof(buf), &eof);
	tag = last_tag;
	is_int(conn_buffers(), 0, "idle after a response: no buffer");
	conn_event(tag, EPOLLIN);	/* nothing there */
	is_int(conn_buffers(), 0, "a wake-up with nothing to read: none");
	send_all(fd, "GET / HT");
	turn(100);
	is_int(conn_buffers(), 1, "half a request holds one");
	close(fd);
	turns(50);
	is_int(conn_count(), 0, "closed");
	fd = pair();			/* the same slot, reused */
	send_all(fd, REQ);
	turn(100);
	ok(last_tag != tag && ((uintptr_t)last_tag & ~(uintptr_t)1) ==
	    ((uintptr_t)tag & ~(uintptr_t)1), "same slot, another tag");
	conn_event(tag, EPOLLIN);	/* stale: ignored */
	is_int(conn_buffers(), 0, "the stale event took nothing");
	is_int(drain(fd, buf, sizeof(buf), &eof), (ssize_t)get_len,
	    "the new connection is served");
	close(fd);
	turns(50);
}

/* A client that never reads is parked, then dropped at send_timeout. */
static void
test_never_reads(void)
{
	static char	req[400 * sizeof(REQ)];
	int		fd = pair(), other, eof, i;
	char		buf[8192];
	ssize_t		n;

	req[0] = '\0';
	for (i = 0; i < 400; i++)
		strlcat(req, REQ, sizeof(req));
	send_all(fd, req);
	turns(50);
	is_int(conn_count(), 1, "held while its answers wait");
	other = pair();
	send_all(other, REQ);
	turns(50);
	n = drain(other, buf, sizeof(buf), &eof);
	is_int(n, (ssize_t)get_len, "another client is served meanwhile");
	close(other);
	turns(500);
	is_int(conn_count(), 0, "the non-reader is closed at send_timeout");
	close(fd);
}

/* At worker_connections, a new client evicts the oldest idle one. */
static void
test_evict(void)
{
	char	buf[8192];
	int	a, b, c, eof;
	ssize_t	n;

	a = pair();
	send_all(a, REQ);
	turn(50);
	b = pair();
	send_all(b, REQ);
	turn(50);
	drain(a, buf, sizeof(buf), &eof);
	drain(b, buf, sizeof(buf), &eof);
	ok(conn_room(0), "room: an idle connection can be evicted");
	c = pair();		/* the third, over the cap of 2 */
	is_int(conn_count(), 2, "still two");
	send_all(c, REQ);
	turn(50);
	n = drain(c, buf, sizeof(buf), &eof);
	is_int(n, (ssize_t)get_len, "the new client is answered");
	drain(a, buf, sizeof(buf), &eof);
	ok(eof, "the oldest idle connection was closed");
	drain(b, buf, sizeof(buf), &eof);
	ok(!eof, "the younger one was not");
	/* Two connections mid-request cannot be evicted. */
	send_all(b, "GET / HTTP/1.1\r\n");
	send_all(c, "GET / HTTP/1.1\r\n");
	turn(50);
	ok(!conn_room(0), "no room when every connection is busy");
	close(a);
	close(b);
	close(c);
	turns(50);
}

int
main(void)
{
	static const char	text[] =
	    "tls_certificate c.pem\ntls_certificate_key k.pem\n"
	    "header_timeout 300ms\nkeepalive_timeout 400ms\n"
	    "send_timeout 300ms\nworker_connections 2\n";
	char			err[256];

	if (conf_parse("test", text, sizeof(text) - 1, &conf, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	log_init(1);
	if (http_init() == -1 || (epfd = epoll_create1(0)) == -1 ||
	    conn_init(&conf, NULL, epfd, 2) == -1) {
		perror("init");
		return 1;
	}
	get_resp = http_response(HTTP_RESP_GET, HTTP_CONN_NONE, &get_len);
	test_get();
	test_pipeline_fairness();
	test_split_pipelining();
	test_idle_crlf();
	test_idle_holds_nothing();
	test_never_reads();
	test_evict();
	conn_free();
	http_free();
	close(epfd);
	return done_testing();
}
