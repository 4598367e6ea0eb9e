/*
 * The access log line: the combined format plus the request time in
 * microseconds.  What a line needs from a request is taken, made safe,
 * while the request's bytes are still in the buffer (accesslog_take):
 * discarding a body may move or overwrite them before the response.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#define LIBBSD_OPENBSD_VIS
#include <vis.h>

#include "astleyd.h"

/* Untrusted bytes, made safe for a log line (libbsd's strnvisx). */
static void
accesslog_vis(char *dst, size_t dlen, const char *src, size_t slen)
{
	if (slen > (dlen - 1) / 4)
		slen = (dlen - 1) / 4;	/* 4 bytes per byte at worst */
	if (strnvisx(dst, dlen, src, slen, VIS_CSTYLE | VIS_DQ | VIS_TAB |
	    VIS_NL) == -1)
		strlcpy(dst, "-", dlen);
}

/*
 * req is NULL when the request could not be parsed: the start of the
 * first line of the bytes at p stands in for it.
 */
void
accesslog_take(struct accesslog_req *al, const struct http_request *req,
    const char *p, size_t n)
{
	char		 line[1024];
	const char	*nl;
	size_t		 len;

	strlcpy(al->referer, "-", sizeof(al->referer));
	strlcpy(al->user_agent, "-", sizeof(al->user_agent));
	if (req == NULL) {
		if ((nl = memchr(p, '\n', n)) != NULL)
			n = nl - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		accesslog_vis(al->request, sizeof(al->request), p,
		    n > 200 ? 200 : n);
		return;
	}
	len = req->target.p + req->target.len - req->method_name.p;
	snprintf(line, sizeof(line), "%.*s HTTP/1.%d",
	    (int)(len > 900 ? 900 : len), req->method_name.p,
	    req->version_minor);
	accesslog_vis(al->request, sizeof(al->request), line, strlen(line));
	if (req->referer.p != NULL)
		accesslog_vis(al->referer, sizeof(al->referer), req->referer.p,
		    req->referer.len);
	if (req->user_agent.p != NULL)
		accesslog_vis(al->user_agent, sizeof(al->user_agent),
		    req->user_agent.p, req->user_agent.len);
}

/* The client's address as text; a dual-stack IPv4 client as IPv4. */
void
accesslog_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6	*sin6;

	strlcpy(buf, "-", len);
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    buf, len);
	else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf,
			    len);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, len);
	}
}

/* One line for the request accesslog_take saw, answered with resp. */
void
accesslog_write(const struct accesslog_req *al, const struct sockaddr *peer,
    int resp, long long started_us)
{
	char	addr[INET6_ADDRSTRLEN];
	size_t	body;
	int	status;

	timecache_update();	/* the time of this request, not the last */
	status = http_resp_status(resp, &body);
	accesslog_addr(peer, addr, sizeof(addr));
	log_access("%s - - [%s] \"%s\" %d %zu \"%s\" \"%s\" %lld", addr,
	    timecache_log(), al->request, status, body, al->referer,
	    al->user_agent, timecache_mono_us() - started_us);
}
