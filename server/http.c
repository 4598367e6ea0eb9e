/*
 * Request semantics and prebuilt responses.  Every response this server
 * can send is built once at start-up, header and body in one buffer; per
 * request only the Date field is patched in place, once a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astleyd.h"
#include "status.h"

#define LAST_MODIFIED	"Mon, 27 Jul 1987 00:00:00 GMT"
#define TEXT_PLAIN	"text/plain; charset=UTF-8"
#define BODY_405	"Together forever and never to part " \
			"Together forever we two"

extern const unsigned char	http_lyrics[];
extern const size_t		http_lyrics_len;

#define ALLOW		"Allow: GET, HEAD, OPTIONS\r\n"

struct http_status {
	int		 status;
	const char	*reason;
	const char	*headers;	/* extra header lines */
	const char	*body;		/* NULL: the lyrics */
	int		 flags;
};
#define HTTP_NOBODY	0x01	/* HEAD: the GET headers, no body */
#define HTTP_NOCONTENT	0x02	/* 204, 304: no body, no length, no type */
#define HTTP_VALIDATORS	0x04	/* Last-Modified and ETag */

static const struct http_status statuses[HTTP_RESP_MAX] = {
	[HTTP_RESP_GET] = { 200, "OK", "", NULL, HTTP_VALIDATORS },
	[HTTP_RESP_HEAD] = { 200, "OK", "", NULL,
	    HTTP_VALIDATORS | HTTP_NOBODY },
	[HTTP_RESP_304] = { 304, "Not Modified", "", NULL,
	    HTTP_VALIDATORS | HTTP_NOCONTENT },
	[HTTP_RESP_OPTIONS] = { 204, "No Content", ALLOW, NULL,
	    HTTP_NOCONTENT },
	[HTTP_RESP_405] = { 405, "Method Not Allowed", ALLOW, BODY_405, 0 },
	[HTTP_RESP_400] = { 400, "Bad Request", "", "Bad Request\n", 0 },
	[HTTP_RESP_408] = { 408, "Request Timeout", "", "Request Timeout\n",
	    0 },
	[HTTP_RESP_413] = { 413, "Content Too Large", "",
	    "Content Too Large\n", 0 },
	[HTTP_RESP_414] = { 414, "URI Too Long", "", "URI Too Long\n", 0 },
	[HTTP_RESP_431] = { 431, "Request Header Fields Too Large", "",
	    "Request Header Fields Too Large\n", 0 },
	[HTTP_RESP_505] = { 505, "HTTP Version Not Supported", "",
	    "HTTP Version Not Supported\n", 0 },
	[HTTP_RESP_421] = { 421, "Misdirected Request", "",
	    "Misdirected Request\n", 0 },
	/* nginx's wording, which operators search for. */
	[HTTP_RESP_400_PLAIN] = { 400, "Bad Request", "",
	    "Bad Request: the plain HTTP request was sent to the HTTPS "
	    "port\n", 0 },
	[HTTP_RESP_HEALTHY] = { 200, "OK", "", "ok\n", 0 },
	[HTTP_RESP_DRAINING] = { 503, "Service Unavailable", "",
	    "Service Unavailable: draining\n", 0 },
	[HTTP_RESP_403] = { 403, "Forbidden", "", "Forbidden\n", 0 },
	[HTTP_RESP_404] = { 404, "Not Found", "", "Not Found\n", 0 },
	/* Placeholders: the real ones are built per request. */
	[HTTP_RESP_METRICS] = { 200, "OK", "", "", 0 },
	[HTTP_RESP_STUB] = { 200, "OK", "", "", 0 },
	[HTTP_RESP_503] = { 503, "Service Unavailable", "",
	    "Service Unavailable\n", 0 },
};

/* The body of the last status response built, until it is sent. */
static struct {
	char	*body;
	size_t	 len;
} http_dynamic;

static const char *const conn_headers[HTTP_CONN_MAX] = {
	[HTTP_CONN_NONE] = "",
	[HTTP_CONN_KEEPALIVE] = "Connection: keep-alive\r\n",
	[HTTP_CONN_CLOSE] = "Connection: close\r\n",
};

struct http_prebuilt {
	char	*buf;
	size_t	 len;
	size_t	 date_off;
	size_t	 body_len;
};

static struct http_prebuilt	prebuilt[HTTP_RESP_MAX][HTTP_CONN_MAX];
static size_t			prebuilt_max;	/* the longest response */
static char			http_etag_value[32];
static time_t			http_patched;	/* second in the Dates */
static time_t			http_last_modified = 554342400; /* 1987-07-27 */

/* A strong validator that changes whenever the page does (FNV-1a). */
static void
http_etag(char *etag, size_t len)
{
	unsigned long long	h = 0xcbf29ce484222325ULL;
	size_t			i;

	for (i = 0; i < http_lyrics_len; i++)
		h = (h ^ http_lyrics[i]) * 0x100000001b3ULL;
	snprintf(etag, len, "\"%016llx\"", h);
}

int
http_init(void)
{
	const struct http_status	*st;
	struct http_prebuilt		*pb;
	const char			*body;
	char				 validators[128], length[64];
	size_t				 blen, cap;
	int				 r, c, n, m;

	timecache_update();
	http_patched = timecache_now();
	http_etag(http_etag_value, sizeof(http_etag_value));
	snprintf(validators, sizeof(validators), "Last-Modified: "
	    LAST_MODIFIED "\r\nETag: %s\r\n", http_etag_value);
	for (r = 0; r < HTTP_RESP_MAX; r++) {
		st = &statuses[r];
		body = st->body ? st->body : (const char *)http_lyrics;
		blen = st->body ? strlen(st->body) : http_lyrics_len;
		if (st->flags & HTTP_NOCONTENT)
			length[0] = '\0';
		else
			snprintf(length, sizeof(length), "Content-Type: "
			    TEXT_PLAIN "\r\nContent-Length: %zu\r\n", blen);
		if (st->flags & (HTTP_NOBODY | HTTP_NOCONTENT))
			blen = 0;
		for (c = 0; c < HTTP_CONN_MAX; c++) {
			pb = &prebuilt[r][c];
			cap = 512 + blen;
			if ((pb->buf = malloc(cap)) == NULL)
				return -1;
			/* The Date value starts at m: patched in place later. */
			m = snprintf(pb->buf, cap, "HTTP/1.1 %d %s\r\n"
			    "Server: astleyd\r\nDate: ", st->status, st->reason);
			if (m < 0 || (size_t)m >= cap)
				return -1;
			n = snprintf(pb->buf + m, cap - m, "%s\r\n%s%s%s%s\r\n",
			    timecache_http(), st->flags & HTTP_VALIDATORS ?
			    validators : "", st->headers, length,
			    conn_headers[c]);
			if (n < 0 || (size_t)(m + n) + blen > cap)
				return -1;
			n += m;
			pb->date_off = m;
			memcpy(pb->buf + n, body, blen);
			pb->len = n + blen;
			if (pb->len > prebuilt_max)
				prebuilt_max = pb->len;
			pb->body_len = blen;
		}
	}
	return 0;
}

void
http_free(void)
{
	int	r, c;

	for (r = 0; r < HTTP_RESP_MAX; r++)
		for (c = 0; c < HTTP_CONN_MAX; c++) {
			free(prebuilt[r][c].buf);
			prebuilt[r][c].buf = NULL;
		}
	free(http_dynamic.body);
	http_dynamic.body = NULL;
	http_dynamic.len = 0;
}

const char *
http_response(int resp, int conn, size_t *len)
{
	int	r, c;

	/* Its own record: another caller may have moved the cache on. */
	timecache_update();
	if (timecache_now() != http_patched) {
		http_patched = timecache_now();
		for (r = 0; r < HTTP_RESP_MAX; r++)
			for (c = 0; c < HTTP_CONN_MAX; c++)
				memcpy(prebuilt[r][c].buf +
				    prebuilt[r][c].date_off, timecache_http(),
				    TIMECACHE_HTTP_LEN);
	}
	*len = prebuilt[resp][conn].len;
	return prebuilt[resp][conn].buf;
}

/*
 * Builds the body of a status response now, so that the access log
 * line (written before the response is queued) has its length.  0, or
 * -1 when out of memory.
 */
int
http_dynamic_body(int resp)
{
	size_t	(*fmt)(char *, size_t);
	size_t	 need;

	fmt = resp == HTTP_RESP_METRICS ? status_metrics : status_stub;
	free(http_dynamic.body);
	http_dynamic.len = 0;
	/* Twice at most: a worker may start between the two passes. */
	need = fmt(NULL, 0) + 1024;
	if ((http_dynamic.body = malloc(need)) == NULL)
		return -1;
	http_dynamic.len = fmt(http_dynamic.body, need);
	if (http_dynamic.len >= need)
		http_dynamic.len = need - 1;
	return 0;
}

/*
 * The whole status response, head and body (none for HEAD), for the
 * caller to free.
 */
char *
http_dynamic_response(int resp, int conn, int head, size_t *len)
{
	char	*r;
	size_t	 cap;
	int	 n;

	cap = 512 + http_dynamic.len;
	if ((r = malloc(cap)) == NULL)
		return NULL;
	timecache_update();
	n = snprintf(r, cap, "HTTP/1.1 200 OK\r\nServer: astleyd\r\n"
	    "Date: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n%s\r\n", timecache_http(),
	    resp == HTTP_RESP_METRICS ?
	    "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
	    http_dynamic.len, conn_headers[conn]);
	if (n < 0 || (size_t)n + http_dynamic.len > cap) {
		free(r);
		return NULL;
	}
	if (head) {
		*len = n;
		return r;
	}
	memcpy(r + n, http_dynamic.body, http_dynamic.len);
	*len = n + http_dynamic.len;
	return r;
}

size_t
http_response_max(void)
{
	return prebuilt_max;
}

/* For the access log: the status and body length of a response. */
int
http_resp_status(int resp, size_t *body_len)
{
	if (resp == HTTP_RESP_METRICS || resp == HTTP_RESP_STUB) {
		*body_len = http_dynamic.len;
		return 200;
	}
	*body_len = prebuilt[resp][HTTP_CONN_NONE].body_len;
	return statuses[resp].status;
}

int
http_resp_for_status(int status)
{
	switch (status) {
	case 408:
		return HTTP_RESP_408;
	case 413:
		return HTTP_RESP_413;
	case 414:
		return HTTP_RESP_414;
	case 431:
		return HTTP_RESP_431;
	case 505:
		return HTTP_RESP_505;
	default:
		return HTTP_RESP_400;
	}
}

/* If-None-Match (RFC 9110 13.1.2): "*" or a list with our tag. */
static int
http_none_match(const struct http_str *v)
{
	const char	*p = v->p, *end = v->p + v->len;
	size_t		 tlen = strlen(http_etag_value);

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		if (*p == '*')
			return 1;
		/* Weak comparison: W/"x" matches "x". */
		if (end - p > 2 && p[0] == 'W' && p[1] == '/')
			p += 2;
		if ((size_t)(end - p) >= tlen &&
		    memcmp(p, http_etag_value, tlen) == 0)
			return 1;
		while (p < end && *p != ',')
			p++;
	}
	return 0;
}

/*
 * The response to a well-formed request.  Conditional GET per RFC 9110
 * 13.2.2: If-None-Match, when present, decides alone; otherwise a valid
 * If-Modified-Since at or after Last-Modified means 304.  An invalid date
 * is ignored.
 */
int
http_resp_for_request(const struct http_request *req)
{
	time_t	ims;

	switch (req->method) {
	case HTTP_METHOD_GET:
	case HTTP_METHOD_HEAD:
		break;
	case HTTP_METHOD_OPTIONS:
		return HTTP_RESP_OPTIONS;
	default:
		return HTTP_RESP_405;
	}
	if (req->if_none_match.p != NULL) {
		if (http_none_match(&req->if_none_match))
			return HTTP_RESP_304;
	} else if (req->if_modified_since.p != NULL &&
	    timecache_parse(req->if_modified_since.p,
	    req->if_modified_since.len, &ims) == 0 &&
	    ims >= http_last_modified)
		return HTTP_RESP_304;
	return req->method == HTTP_METHOD_GET ? HTTP_RESP_GET : HTTP_RESP_HEAD;
}

/*
 * What a well-formed request gets, given its normalized path and the
 * connection: an absolute-form target naming the other scheme is 421
 * (RFC 9110 7.4: a balancer sent it to the wrong port); GET /healthz is
 * the load balancer's check, 503 once a graceful stop began, so the
 * balancer stops sending before the listeners close.
 */
int
http_resp_route(const struct http_request *req, const char *path, int tls,
    int draining)
{
	int	https;

	if (req->target_form == HTTP_TARGET_ABSOLUTE) {
		https = req->target.p[4] == 's' || req->target.p[4] == 'S';
		if (https != tls)
			return HTTP_RESP_421;
	}
	if (req->method == HTTP_METHOD_GET && strcmp(path, "/healthz") == 0)
		return draining ? HTTP_RESP_DRAINING : HTTP_RESP_HEALTHY;
	return http_resp_for_request(req);
}

/*
 * The status listener's routes, to clients in status_allow: /metrics and
 * /status (GET and HEAD), /healthz (GET).
 */
int
http_resp_status_route(const struct http_request *req, const char *path,
    int allowed, int draining)
{
	if (!allowed)
		return HTTP_RESP_403;
	/* HEAD as nginx's stub_status allows it: the GET's head. */
	if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD) {
		if (strcmp(path, "/metrics") == 0)
			return HTTP_RESP_METRICS;
		if (strcmp(path, "/status") == 0)
			return HTTP_RESP_STUB;
	}
	if (req->method != HTTP_METHOD_GET)
		return HTTP_RESP_405;
	if (strcmp(path, "/healthz") == 0)
		return draining ? HTTP_RESP_DRAINING : HTTP_RESP_HEALTHY;
	return HTTP_RESP_404;
}
