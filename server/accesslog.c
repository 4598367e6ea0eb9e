/*
 * The access log line: the combined format plus the request time in
 * microseconds, the time local with its offset (as nginx and Apache).
 * What a line needs from a request is taken, made safe, while the
 * request's bytes are still in the buffer (accesslog_take): discarding a
 * body may move or overwrite them before the response.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "astleyd.h"

/*
 * Untrusted bytes, made safe for a log line as nginx does: a quote, a
 * backslash, a control byte or a byte over 0x7e becomes \xHH, so a line
 * stays one line of printable ASCII that log tools can split on quotes.
 * Cut at a byte boundary when dst is full; always terminated.
 */
void
accesslog_escape(char *dst, size_t dlen, const char *src, size_t slen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 b;
	size_t			 i, n = 0;

	if (dlen == 0)
		return;
	for (i = 0; i < slen; i++) {
		b = (unsigned char)src[i];
		if (b < 0x20 || b > 0x7e || b == '"' || b == '\\') {
			if (n + 4 >= dlen)
				break;
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[b >> 4];
			dst[n++] = hex[b & 0xf];
		} else {
			if (n + 1 >= dlen)
				break;
			dst[n++] = b;
		}
	}
	dst[n] = '\0';
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
		accesslog_escape(al->request, sizeof(al->request), p,
		    n > 200 ? 200 : n);
		return;
	}
	len = req->target.p + req->target.len - req->method_name.p;
	snprintf(line, sizeof(line), "%.*s HTTP/1.%d",
	    (int)(len > 900 ? 900 : len), req->method_name.p,
	    req->version_minor);
	accesslog_escape(al->request, sizeof(al->request), line, strlen(line));
	if (req->referer.p != NULL)
		accesslog_escape(al->referer, sizeof(al->referer), req->referer.p,
		    req->referer.len);
	if (req->user_agent.p != NULL)
		accesslog_escape(al->user_agent, sizeof(al->user_agent),
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
