/*
 * Request semantics and prebuilt responses.  Every response this server
 * can send is built once at start-up, header and body in one buffer; per
 * request only the Date field is patched in place, once a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astleyd.h"

#define LAST_MODIFIED	"Mon, 27 Jul 1987 00:00:00 GMT"
#define TEXT_PLAIN	"text/plain; charset=UTF-8"
#define BODY_405	"Together forever and never to part " \
			"Together forever we two"

extern const unsigned char	http_lyrics[];
extern const size_t		http_lyrics_len;

struct http_status {
	int		 status;
	const char	*reason;
	const char	*headers;	/* extra header lines */
	const char	*body;		/* NULL: the lyrics */
	int		 nobody;	/* headers only (HEAD) */
};

static const struct http_status statuses[HTTP_RESP_MAX] = {
	[HTTP_RESP_GET] = { 200, "OK", "Last-Modified: " LAST_MODIFIED "\r\n",
	    NULL, 0 },
	[HTTP_RESP_HEAD] = { 200, "OK", "Last-Modified: " LAST_MODIFIED "\r\n",
	    NULL, 1 },
	[HTTP_RESP_405] = { 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
	    BODY_405, 0 },
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
};

static const char *const conn_headers[HTTP_CONN_MAX] = {
	[HTTP_CONN_NONE] = "",
	[HTTP_CONN_KEEPALIVE] = "Connection: keep-alive\r\n",
	[HTTP_CONN_CLOSE] = "Connection: close\r\n",
};

struct http_prebuilt {
	char	*buf;
	size_t	 len;
	size_t	 date_off;
};

static struct http_prebuilt	prebuilt[HTTP_RESP_MAX][HTTP_CONN_MAX];

int
http_init(void)
{
	const struct http_status	*st;
	struct http_prebuilt		*pb;
	const char			*body;
	size_t				 blen, cap;
	int				 r, c, n, m;

	timecache_update();
	for (r = 0; r < HTTP_RESP_MAX; r++) {
		st = &statuses[r];
		body = st->body ? st->body : (const char *)http_lyrics;
		blen = st->body ? strlen(st->body) : http_lyrics_len;
		for (c = 0; c < HTTP_CONN_MAX; c++) {
			pb = &prebuilt[r][c];
			cap = 512 + blen;
			if ((pb->buf = malloc(cap)) == NULL)
				return -1;
			n = snprintf(pb->buf, cap,
			    "HTTP/1.1 %d %s\r\nServer: astleyd\r\nDate: %n%s\r\n"
			    "%sContent-Type: " TEXT_PLAIN "\r\n"
			    "Content-Length: %zu\r\n%s\r\n", st->status,
			    st->reason, &m, timecache_http(), st->headers,
			    blen, conn_headers[c]);
			if (n < 0 || (size_t)n + blen > cap)
				return -1;
			pb->date_off = m;
			if (!st->nobody) {
				memcpy(pb->buf + n, body, blen);
				n += blen;
			}
			pb->len = n;
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
}

const char *
http_response(int resp, int conn, size_t *len)
{
	int	r, c;

	if (timecache_update())
		for (r = 0; r < HTTP_RESP_MAX; r++)
			for (c = 0; c < HTTP_CONN_MAX; c++)
				memcpy(prebuilt[r][c].buf +
				    prebuilt[r][c].date_off, timecache_http(),
				    TIMECACHE_HTTP_LEN);
	*len = prebuilt[resp][conn].len;
	return prebuilt[resp][conn].buf;
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

int
http_resp_for_request(const struct http_request *req)
{
	switch (req->method) {
	case HTTP_METHOD_GET:
		return HTTP_RESP_GET;
	case HTTP_METHOD_HEAD:
		return HTTP_RESP_HEAD;
	default:
		return HTTP_RESP_405;
	}
}
