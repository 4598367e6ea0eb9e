/*
 * Unit tests for server/http.c: every prebuilt response, in every
 * connection mode, read back as an HTTP/1.1 response (RFC 9112 4, 6;
 * RFC 9110 6.6.1, 8.6, 15) and compared with what issue 2 requires; the
 * Date patch once a second; the status and method mappings; and
 * http_free (LeakSanitizer checks nothing is left).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "astleyd.h"
#include "tap.h"

#define LYRICS_PATH	"server/lyrics.txt"
#define BODY_405	"Together forever and never to part " \
			"Together forever we two"
#define LAST_MODIFIED	"Mon, 27 Jul 1987 00:00:00 GMT"
#define MAX_FIELDS	32
/* Issue 4: OPTIONS is answered, and 405 lists the same methods. */
#define ALLOW		"GET, HEAD, OPTIONS"

/* What the body of each response is. */
enum body {
	B_LYRICS,	/* the 980 lyric bytes */
	B_HEAD,		/* none, but the lyrics' Content-Length */
	B_NONE,		/* none and no Content-Length/Type (204, 304) */
	B_405,		/* the 405 text */
	B_ERROR,	/* a short text naming the reason */
	B_HEALTH	/* "ok\n" */
};

static const struct {
	int		 resp;
	const char	*name;
	int		 status;
	const char	*reason;	/* RFC 9110 15 */
	enum body	 body;
	int		 validators;	/* Last-Modified and ETag */
	int		 allow;
} resps[] = {
	{ HTTP_RESP_GET, "GET", 200, "OK", B_LYRICS, 1, 0 },
	{ HTTP_RESP_HEAD, "HEAD", 200, "OK", B_HEAD, 1, 0 },
	{ HTTP_RESP_304, "304", 304, "Not Modified", B_NONE, 1, 0 },
	{ HTTP_RESP_OPTIONS, "OPTIONS", 204, "No Content", B_NONE, 0, 1 },
	{ HTTP_RESP_405, "405", 405, "Method Not Allowed", B_405, 0, 1 },
	{ HTTP_RESP_400, "400", 400, "Bad Request", B_ERROR, 0, 0 },
	{ HTTP_RESP_408, "408", 408, "Request Timeout", B_ERROR, 0, 0 },
	{ HTTP_RESP_413, "413", 413, "Content Too Large", B_ERROR, 0, 0 },
	{ HTTP_RESP_414, "414", 414, "URI Too Long", B_ERROR, 0, 0 },
	{ HTTP_RESP_431, "431", 431, "Request Header Fields Too Large",
	    B_ERROR, 0, 0 },
	{ HTTP_RESP_505, "505", 505, "HTTP Version Not Supported", B_ERROR,
	    0, 0 },
	{ HTTP_RESP_421, "421", 421, "Misdirected Request", B_ERROR, 0, 0 },
	{ HTTP_RESP_400_PLAIN, "400 plain HTTP", 400, "Bad Request", B_ERROR,
	    0, 0 },
	{ HTTP_RESP_HEALTHY, "healthz", 200, "OK", B_HEALTH, 0, 0 },
	{ HTTP_RESP_DRAINING, "healthz draining", 503, "Service Unavailable",
	    B_ERROR, 0, 0 },
	{ HTTP_RESP_403, "403", 403, "Forbidden", B_ERROR, 0, 0 },
	{ HTTP_RESP_404, "404", 404, "Not Found", B_ERROR, 0, 0 },
	{ HTTP_RESP_503, "503", 503, "Service Unavailable", B_ERROR, 0, 0 },
};
/* Built per request, not prebuilt: test_dynamic. */
#define NDYNAMIC	2
#define NRESPS	(sizeof(resps) / sizeof(resps[0]))

static const struct {
	int		 conn;
	const char	*name;
	const char	*header;	/* Connection value, NULL: none */
} conns[] = {
	{ HTTP_CONN_NONE, "no Connection", NULL },
	{ HTTP_CONN_KEEPALIVE, "keep-alive", "keep-alive" },
	{ HTTP_CONN_CLOSE, "close", "close" },
};
#define NCONNS	(sizeof(conns) / sizeof(conns[0]))

static char	*lyrics;
static size_t	 lyrics_len;
static char	 etag[64];	/* the GET response's, for the 304 tests */

struct field {
	const char	*name, *value;
	size_t		 nlen, vlen;
};

/* A response taken apart. */
struct resp {
	char		*buf;		/* a copy: the Date moves */
	size_t		 len;
	size_t		 headlen;	/* through the empty line */
	int		 status;
	char		 reason[64];
	struct field	 f[MAX_FIELDS];
	int		 nf;
	char		 err[256];	/* why it is not well-formed */
};

static int
read_file(const char *path, char **out, size_t *outlen)
{
	FILE	*fp;
	char	*buf;
	size_t	 n;

	if ((fp = fopen(path, "rb")) == NULL)
		return -1;
	if ((buf = malloc(64 * 1024)) == NULL)
		abort();
	n = fread(buf, 1, 64 * 1024, fp);
	fclose(fp);
	*out = buf;
	*outlen = n;
	return 0;
}

static const struct field *
field_get(const struct resp *r, const char *name)
{
	int	i;

	for (i = 0; i < r->nf; i++)
		if (r->f[i].nlen == strlen(name) &&
		    strncasecmp(r->f[i].name, name, r->f[i].nlen) == 0)
			return &r->f[i];
	return NULL;
}

static int
field_is(const struct resp *r, const char *name, const char *value)
{
	const struct field	*f = field_get(r, name);

	return f != NULL && f->vlen == strlen(value) &&
	    memcmp(f->value, value, f->vlen) == 0;
}

/*
 * Splits a response into status line, fields and body; 0 when it is
 * well-formed: CRLF after every line and nowhere else in the head, a
 * status line "HTTP/1.1 DDD reason", fields "name: value" with a token
 * name, one SP after the colon and no trailing whitespace.
 */
static int
resp_parse(struct resp *r, const char *data, size_t len)
{
	const char	*p, *end, *eol, *colon, *hend;
	size_t		 i;

	memset(r, 0, sizeof(*r));
	if ((r->buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(r->buf, data, len);
	r->len = len;
	hend = memmem(r->buf, len, "\r\n\r\n", 4);
	if (hend == NULL) {
		snprintf(r->err, sizeof(r->err), "no CRLF CRLF");
		return -1;
	}
	r->headlen = hend + 4 - r->buf;
	for (i = 0; i < r->headlen; i++) {
		if ((r->buf[i] == '\n' && (i == 0 || r->buf[i - 1] != '\r')) ||
		    (r->buf[i] == '\r' && r->buf[i + 1] != '\n')) {
			snprintf(r->err, sizeof(r->err),
			    "bare CR or LF at offset %zu", i);
			return -1;
		}
		if (r->buf[i] == '\0' || (unsigned char)r->buf[i] >= 0x7f) {
			snprintf(r->err, sizeof(r->err),
			    "NUL or non-ASCII in the head at offset %zu", i);
			return -1;
		}
	}
	p = r->buf;
	end = r->buf + r->headlen - 2;
	eol = memmem(p, end - p, "\r\n", 2);
	if (eol - p < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0 ||
	    !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
	    !isdigit((unsigned char)p[11]) || p[12] != ' ' ||
	    (size_t)(eol - p - 13) >= sizeof(r->reason)) {
		snprintf(r->err, sizeof(r->err), "bad status line");
		return -1;
	}
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	memcpy(r->reason, p + 13, eol - p - 13);
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memmem(p, end - p, "\r\n", 2);
		colon = memchr(p, ':', eol - p);
		if (colon == NULL || colon == p || colon + 2 > eol ||
		    colon[1] != ' ' || colon[2] == ' ' || eol[-1] == ' ' ||
		    eol[-1] == '\t' || r->nf == MAX_FIELDS) {
			snprintf(r->err, sizeof(r->err), "bad field line "
			    "\"%.*s\"", (int)(eol - p), p);
			return -1;
		}
		for (i = 0; p + i < colon; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '-') {
				snprintf(r->err, sizeof(r->err),
				    "bad field name \"%.*s\"",
				    (int)(colon - p), p);
				return -1;
			}
		r->f[r->nf].name = p;
		r->f[r->nf].nlen = colon - p;
		r->f[r->nf].value = colon + 2;
		r->f[r->nf].vlen = eol - colon - 2;
		r->nf++;
	}
	return 0;
}

/* An IMF-fixdate (RFC 9110 5.6.7) naming the second it was made in. */
static int
date_check(const struct field *f, time_t lo, time_t hi, char *why,
    size_t whylen)
{
	static const char	 months[] =
	    "JanFebMarAprMayJunJulAugSepOctNovDec";
	char			 s[TIMECACHE_HTTP_LEN + 1];
	char			 again[TIMECACHE_HTTP_LEN + 1];
	char			 mon[4];
	const char		*m;
	struct tm		 tm;
	time_t			 t;

	if (f == NULL || f->vlen != TIMECACHE_HTTP_LEN) {
		snprintf(why, whylen, "no Date, or not 29 bytes");
		return 0;
	}
	memcpy(s, f->value, TIMECACHE_HTTP_LEN);
	s[TIMECACHE_HTTP_LEN] = '\0';
	memset(&tm, 0, sizeof(tm));
	memcpy(mon, s + 8, 3);
	mon[3] = '\0';
	m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || s[3] != ',' ||
	    s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
	    s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0 ||
	    sscanf(s + 5, "%2d", &tm.tm_mday) != 1 ||
	    sscanf(s + 12, "%4d", &tm.tm_year) != 1 ||
	    sscanf(s + 17, "%2d", &tm.tm_hour) != 1 ||
	    sscanf(s + 20, "%2d", &tm.tm_min) != 1 ||
	    sscanf(s + 23, "%2d", &tm.tm_sec) != 1) {
		snprintf(why, whylen, "\"%s\" is not an IMF-fixdate", s);
		return 0;
	}
	tm.tm_mon = (m - months) / 3;
	tm.tm_year -= 1900;
	t = timegm(&tm);
	/* Round trip: catches a wrong weekday or an impossible date. */
	timecache_format(t, again);
	if (strcmp(s, again) != 0) {
		snprintf(why, whylen, "\"%s\" is not a real date (\"%s\")", s,
		    again);
		return 0;
	}
	if (t < lo || t > hi) {
		snprintf(why, whylen, "\"%s\" is not now (%lld not in "
		    "[%lld, %lld])", s, (long long)t, (long long)lo,
		    (long long)hi);
		return 0;
	}
	return 1;
}

static void
resp_free(struct resp *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Everything about one response in one connection mode. */
static void
check_response(size_t ri, size_t ci, const struct resp *get)
{
	struct resp		 r;
	const struct field	*f;
	const char		*data, *body, *want_body;
	char			 cl[32], why[256];
	size_t			 len, blen, want_blen;
	time_t			 lo, hi;
	int			 resp = resps[ri].resp, i, unexpected;
	const char		*tag;
	char			 tagbuf[64];

	snprintf(tagbuf, sizeof(tagbuf), "%s/%s", resps[ri].name,
	    conns[ci].name);
	tag = tagbuf;
	lo = time(NULL) - 1;	/* the coarse clock may trail time() */
	data = http_response(resp, conns[ci].conn, &len);
	hi = time(NULL);
	if (!ok(data != NULL && resp_parse(&r, data, len) == 0,
	    "%s: well-formed HTTP/1.1 response, CRLF line ends", tag)) {
		diag("%s", data == NULL ? "NULL response" : r.err);
		if (data != NULL) {
			tap_escaped("response: ", data, len);
			resp_free(&r);
		}
		return;
	}
	if (!ok(r.status == resps[ri].status &&
	    strcmp(r.reason, resps[ri].reason) == 0,
	    "%s: status line \"HTTP/1.1 %d %s\"", tag, resps[ri].status,
	    resps[ri].reason))
		diag("got \"%d %s\"", r.status, r.reason);

	/* The fields every response carries, exactly once each. */
	unexpected = 0;
	for (i = 0; i < r.nf; i++) {
		int	j;

		for (j = 0; j < i; j++)
			if (r.f[j].nlen == r.f[i].nlen &&
			    strncasecmp(r.f[j].name, r.f[i].name,
			    r.f[i].nlen) == 0)
				unexpected = 1;
	}
	ok(!unexpected, "%s: no field appears twice", tag);
	ok(field_is(&r, "Server", "astleyd"), "%s: Server: astleyd", tag);
	ok(field_get(&r, "Host") == NULL, "%s: no Host field", tag);
	f = field_get(&r, "Connection");
	if (conns[ci].header == NULL)
		ok(f == NULL, "%s: no Connection field", tag);
	else
		ok(field_is(&r, "Connection", conns[ci].header),
		    "%s: Connection: %s", tag, conns[ci].header);
	if (!ok(date_check(field_get(&r, "Date"), lo, hi, why, sizeof(why)),
	    "%s: Date is an IMF-fixdate of now", tag))
		diag("%s", why);
	f = field_get(&r, "Date");
	ok(f != NULL && f->vlen == strlen(timecache_http()) &&
	    memcmp(f->value, timecache_http(), f->vlen) == 0,
	    "%s: Date is timecache_http()", tag);

	/* Only the fields this response should have. */
	unexpected = 0;
	for (i = 0; i < r.nf; i++) {
		static const char *const known[] = { "Server", "Date",
		    "Content-Type", "Content-Length", "Connection",
		    "Last-Modified", "ETag", "Allow", NULL };
		int	j;

		for (j = 0; known[j] != NULL; j++)
			if (r.f[i].nlen == strlen(known[j]) &&
			    strncasecmp(r.f[i].name, known[j],
			    r.f[i].nlen) == 0)
				break;
		if (known[j] == NULL) {
			diag("unexpected field \"%.*s\"", (int)r.f[i].nlen,
			    r.f[i].name);
			unexpected = 1;
		}
	}
	ok(!unexpected, "%s: no unexpected fields", tag);
	if (resps[ri].validators) {
		ok(field_is(&r, "Last-Modified", LAST_MODIFIED),
		    "%s: Last-Modified: " LAST_MODIFIED, tag);
		f = field_get(&r, "ETag");
		/* strong: no W/, one quoted string of etagc (RFC 9110 8.8.3) */
		ok(f != NULL && f->vlen >= 2 && f->vlen < sizeof(etag) &&
		    f->value[0] == '"' && f->value[f->vlen - 1] == '"' &&
		    memchr(f->value + 1, '"', f->vlen - 2) == NULL &&
		    memchr(f->value, ' ', f->vlen) == NULL,
		    "%s: a strong ETag", tag);
		if (f != NULL && etag[0] != '\0')
			ok(field_is(&r, "ETag", etag), "%s: ETag is GET's %s",
			    tag, etag);
	} else
		ok(field_get(&r, "Last-Modified") == NULL &&
		    field_get(&r, "ETag") == NULL,
		    "%s: no Last-Modified, no ETag", tag);
	if (resps[ri].allow)
		ok(field_is(&r, "Allow", ALLOW), "%s: Allow: " ALLOW, tag);
	else
		ok(field_get(&r, "Allow") == NULL, "%s: no Allow", tag);

	/* Framing: Content-Length is the body that follows, and no more. */
	body = r.buf + r.headlen;
	blen = r.len - r.headlen;
	switch (resps[ri].body) {
	case B_LYRICS:
	case B_HEAD:
		want_body = lyrics;
		want_blen = lyrics_len;
		break;
	case B_405:
		want_body = BODY_405;
		want_blen = strlen(BODY_405);
		break;
	case B_NONE:
		want_body = "";
		want_blen = 0;
		break;
	case B_HEALTH:
		want_body = "ok\n";
		want_blen = 3;
		break;
	default:
		want_body = NULL;
		want_blen = blen;
		break;
	}
	if (resps[ri].body == B_NONE) {
		/* RFC 9110 8.6, 15.3.5, 15.4.5 */
		ok(field_get(&r, "Content-Length") == NULL &&
		    field_get(&r, "Content-Type") == NULL,
		    "%s: no Content-Length, no Content-Type", tag);
		is_int(blen, 0, "%s: no body", tag);
		resp_free(&r);
		return;
	}
	ok(field_is(&r, "Content-Type", "text/plain; charset=UTF-8"),
	    "%s: Content-Type: text/plain; charset=UTF-8", tag);
	snprintf(cl, sizeof(cl), "%zu", want_blen);
	ok(field_is(&r, "Content-Length", cl), "%s: Content-Length: %s",
	    tag, cl);
	if (resps[ri].body == B_HEAD) {
		is_int(blen, 0, "%s: no body after the head", tag);
		if (get != NULL)
			is_mem(r.buf, r.headlen, get->buf, get->headlen,
			    "%s: head identical to GET's", tag);
	} else if (want_body != NULL)
		is_mem(body, blen, want_body, want_blen, "%s: body is %s", tag,
		    resps[ri].body == B_LYRICS ? LYRICS_PATH : "the 405 text");
	else
		ok(blen > 0 && blen < 256 &&
		    memmem(body, blen, resps[ri].reason,
		    strlen(resps[ri].reason)) != NULL,
		    "%s: short text body naming \"%s\" (%zu bytes)", tag,
		    resps[ri].reason, blen);
	resp_free(&r);
}

static void
test_responses(void)
{
	struct resp		 get[NCONNS];
	const struct field	*f;
	const char		*data;
	size_t			 ri, ci, len;

	is_int(NRESPS + NDYNAMIC, HTTP_RESP_MAX,
	    "every response variant is checked");
	for (ci = 0; ci < NCONNS; ci++) {
		data = http_response(HTTP_RESP_GET, conns[ci].conn, &len);
		if (resp_parse(&get[ci], data, len) == -1)
			resp_free(&get[ci]);
	}
	if (get[0].buf != NULL && (f = field_get(&get[0], "ETag")) != NULL &&
	    f->vlen < sizeof(etag)) {
		memcpy(etag, f->value, f->vlen);
		etag[f->vlen] = '\0';
	}
	for (ri = 0; ri < NRESPS; ri++)
		for (ci = 0; ci < NCONNS; ci++)
			check_response(ri, ci,
			    get[ci].buf != NULL ? &get[ci] : NULL);
	for (ci = 0; ci < NCONNS; ci++)
		resp_free(&get[ci]);
}

/* The Date of every response follows the clock, and nothing else moves. */
static void
test_date_update(void)
{
	char		*before[NRESPS][NCONNS];
	char		 old[TIMECACHE_HTTP_LEN + 1];
	const char	*data, *d;
	size_t		 lens[NRESPS][NCONNS], ri, ci, len, off;
	time_t		 start = time(NULL);
	int		 same = 1, moved = 1, i;

	for (ri = 0; ri < NRESPS; ri++)
		for (ci = 0; ci < NCONNS; ci++) {
			data = http_response(resps[ri].resp, conns[ci].conn,
			    &len);
			if ((before[ri][ci] = malloc(len)) == NULL)
				abort();
			memcpy(before[ri][ci], data, len);
			lens[ri][ci] = len;
		}
	strlcpy(old, timecache_http(), sizeof(old));
	/* Wait for the next second, and a little more for the coarse clock. */
	for (i = 0; i < 300 && time(NULL) <= start; i++) {
		struct timespec	ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	{
		struct timespec	ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	for (ri = 0; ri < NRESPS; ri++)
		for (ci = 0; ci < NCONNS; ci++) {
			data = http_response(resps[ri].resp, conns[ci].conn,
			    &len);
			d = memmem(before[ri][ci], lens[ri][ci], old,
			    TIMECACHE_HTTP_LEN);
			if (len != lens[ri][ci] || d == NULL) {
				same = 0;
				free(before[ri][ci]);
				continue;
			}
			off = d - before[ri][ci];
			if (memcmp(data + off, timecache_http(),
			    TIMECACHE_HTTP_LEN) != 0)
				moved = 0;
			if (memcmp(data, before[ri][ci], off) != 0 ||
			    memcmp(data + off + TIMECACHE_HTTP_LEN,
			    before[ri][ci] + off + TIMECACHE_HTTP_LEN,
			    len - off - TIMECACHE_HTTP_LEN) != 0)
				same = 0;
			free(before[ri][ci]);
		}
	ok(strcmp(old, timecache_http()) != 0,
	    "a second later the cached date moved (%s -> %s)", old,
	    timecache_http());
	ok(moved, "every response carries the new Date");
	ok(same, "and nothing but the Date changed in any response");
}

static void
test_mappings(void)
{
	static const struct {
		int	status, resp;
	} map[] = {
		{ 400, HTTP_RESP_400 }, { 408, HTTP_RESP_408 },
		{ 413, HTTP_RESP_413 }, { 414, HTTP_RESP_414 },
		{ 431, HTTP_RESP_431 }, { 505, HTTP_RESP_505 },
		{ 404, HTTP_RESP_400 }, { 0, HTTP_RESP_400 },
	};
	struct http_request	req;
	size_t			i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		is_int(http_resp_for_status(map[i].status), map[i].resp,
		    "http_resp_for_status(%d)", map[i].status);

	memset(&req, 0, sizeof(req));
	req.method = HTTP_METHOD_OTHER;
	is_int(http_resp_for_request(&req), HTTP_RESP_405,
	    "http_resp_for_request(other method) is 405");
	req.method = HTTP_METHOD_CONNECT;
	is_int(http_resp_for_request(&req), HTTP_RESP_405,
	    "http_resp_for_request(CONNECT) is 405");
	req.method = HTTP_METHOD_OPTIONS;
	is_int(http_resp_for_request(&req), HTTP_RESP_OPTIONS,
	    "http_resp_for_request(OPTIONS) is 204 with Allow");
}

/* The connection and the path: 421 and /healthz. */
static void
test_route(void)
{
	static const struct {
		int		 method;
		const char	*target;	/* absolute-form, or NULL */
		const char	*path;
		int		 tls, draining, want;
		const char	*desc;
	} rows[] = {
		{ HTTP_METHOD_GET, NULL, "/", 0, 0, HTTP_RESP_GET, "GET /" },
		{ HTTP_METHOD_GET, "http://h/", "/", 0, 0, HTTP_RESP_GET,
		    "http:// on the cleartext port" },
		{ HTTP_METHOD_GET, "https://h/", "/", 1, 0, HTTP_RESP_GET,
		    "https:// on the TLS port" },
		{ HTTP_METHOD_GET, "HTTPS://h/", "/", 1, 0, HTTP_RESP_GET,
		    "HTTPS:// (schemes are case-insensitive)" },
		{ HTTP_METHOD_GET, "https://h/", "/", 0, 0, HTTP_RESP_421,
		    "https:// on the cleartext port: 421" },
		{ HTTP_METHOD_GET, "http://h/", "/", 1, 0, HTTP_RESP_421,
		    "http:// on the TLS port: 421" },
		{ HTTP_METHOD_HEAD, "http://h/", "/", 1, 0, HTTP_RESP_421,
		    "HEAD http:// on the TLS port: 421" },
		{ HTTP_METHOD_GET, NULL, "/healthz", 0, 0, HTTP_RESP_HEALTHY,
		    "GET /healthz: 200" },
		{ HTTP_METHOD_GET, NULL, "/healthz", 1, 1, HTTP_RESP_DRAINING,
		    "GET /healthz while draining: 503" },
		{ HTTP_METHOD_GET, NULL, "/", 0, 1, HTTP_RESP_GET,
		    "GET / while draining: served" },
		{ HTTP_METHOD_GET, NULL, "/healthz/", 0, 0, HTTP_RESP_GET,
		    "/healthz/ is another path" },
		{ HTTP_METHOD_GET, NULL, "/healthzz", 0, 0, HTTP_RESP_GET,
		    "/healthzz is another path" },
		{ HTTP_METHOD_OTHER, NULL, "/healthz", 0, 0, HTTP_RESP_405,
		    "POST /healthz: 405" },
	};
	struct http_request	req;
	size_t			i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.method = rows[i].method;
		req.content_length = -1;
		if (rows[i].target != NULL) {
			req.target_form = HTTP_TARGET_ABSOLUTE;
			req.target.p = rows[i].target;
			req.target.len = strlen(rows[i].target);
		}
		is_int(http_resp_route(&req, rows[i].path, rows[i].tls,
		    rows[i].draining), rows[i].want, "route: %s", rows[i].desc);
	}
}

/* The status listener's routes. */
static void
test_status_route(void)
{
	static const struct {
		int		 method;
		const char	*path;
		int		 allowed, draining, want;
		const char	*desc;
	} rows[] = {
		{ HTTP_METHOD_GET, "/metrics", 1, 0, HTTP_RESP_METRICS,
		    "/metrics" },
		{ HTTP_METHOD_GET, "/status", 1, 0, HTTP_RESP_STUB, "/status" },
		{ HTTP_METHOD_GET, "/healthz", 1, 0, HTTP_RESP_HEALTHY,
		    "/healthz" },
		{ HTTP_METHOD_GET, "/healthz", 1, 1, HTTP_RESP_DRAINING,
		    "/healthz draining" },
		{ HTTP_METHOD_GET, "/", 1, 0, HTTP_RESP_404,
		    "/: no lyrics here" },
		{ HTTP_METHOD_GET, "/metrics/", 1, 0, HTTP_RESP_404,
		    "/metrics/ is another path" },
		{ HTTP_METHOD_HEAD, "/metrics", 1, 0, HTTP_RESP_METRICS,
		    "HEAD /metrics" },
		{ HTTP_METHOD_HEAD, "/status", 1, 0, HTTP_RESP_STUB,
		    "HEAD /status" },
		{ HTTP_METHOD_HEAD, "/healthz", 1, 0, HTTP_RESP_405,
		    "HEAD /healthz: 405" },
		{ HTTP_METHOD_OTHER, "/metrics", 1, 0, HTTP_RESP_405,
		    "POST /metrics: 405" },
		{ HTTP_METHOD_GET, "/metrics", 0, 0, HTTP_RESP_403,
		    "outside status_allow: 403" },
		{ HTTP_METHOD_OTHER, "/nope", 0, 0, HTTP_RESP_403,
		    "outside status_allow, anything: 403" },
	};
	struct http_request	req;
	size_t			i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.method = rows[i].method;
		is_int(http_resp_status_route(&req, rows[i].path,
		    rows[i].allowed, rows[i].draining), rows[i].want,
		    "status route: %s", rows[i].desc);
	}
}

/* /metrics and /status: built per request, length and type right. */
static void
test_dynamic(void)
{
	static const struct {
		int		 resp;
		const char	*type;
		const char	*start;
	} rows[] = {
		{ HTTP_RESP_METRICS, "text/plain; version=0.0.4; charset=utf-8",
		    "# HELP astleyd_" },
		{ HTTP_RESP_STUB, "text/plain", "Active connections: 0 \n"
		    "server accepts handled requests\n 0 0 0 \n"
		    "Reading: 0 Writing: 0 Waiting: 0 \n" },
	};
	const struct field	*f;
	struct resp		 r;
	char			*data, len_s[32];
	size_t			 i, len, blen;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ok(http_dynamic_body(rows[i].resp) == 0, "body %zu built", i);
		is_int(http_resp_status(rows[i].resp, &blen), 200,
		    "dynamic %zu: 200", i);
		data = http_dynamic_response(rows[i].resp, HTTP_CONN_CLOSE, 0,
		    &len);
		if (!ok(data != NULL && resp_parse(&r, data, len) == 0,
		    "dynamic %zu: well-formed", i)) {
			free(data);
			continue;
		}
		snprintf(len_s, sizeof(len_s), "%zu", blen);
		f = field_get(&r, "Content-Length");
		ok(f != NULL && f->vlen == strlen(len_s) &&
		    memcmp(f->value, len_s, f->vlen) == 0,
		    "dynamic %zu: Content-Length is the body's", i);
		f = field_get(&r, "Content-Type");
		ok(f != NULL && f->vlen == strlen(rows[i].type) &&
		    memcmp(f->value, rows[i].type, f->vlen) == 0,
		    "dynamic %zu: Content-Type %s", i, rows[i].type);
		f = field_get(&r, "Connection");
		ok(f != NULL && f->vlen == 5 && memcmp(f->value, "close", 5) ==
		    0, "dynamic %zu: Connection: close", i);
		ok(r.len - r.headlen == blen && blen >= strlen(rows[i].start) &&
		    memcmp(r.buf + r.headlen, rows[i].start,
		    strlen(rows[i].start)) == 0,
		    "dynamic %zu: body starts %.20s", i, rows[i].start);
		resp_free(&r);
		free(data);
	}
}

/* "@" in a pattern stands for the page's ETag. */
static void
expand(char *out, size_t outlen, const char *pat)
{
	size_t	n = 0;

	for (; *pat != '\0' && n + sizeof(etag) + 1 < outlen; pat++)
		if (*pat == '@')
			n += strlcpy(out + n, etag, outlen - n);
		else
			out[n++] = *pat;
	out[n] = '\0';
}

/* Conditional requests: RFC 9110 13.1.2, 13.1.3, 13.2.2. */
static void
test_conditional(void)
{
	static const struct {
		int		 method;
		const char	*inm, *ims;	/* NULL: field absent */
		int		 want;
		const char	*desc;
	} rows[] = {
		{ HTTP_METHOD_GET, NULL, NULL, HTTP_RESP_GET, "plain GET" },
		{ HTTP_METHOD_HEAD, NULL, NULL, HTTP_RESP_HEAD, "plain HEAD" },
		{ HTTP_METHOD_GET, "@", NULL, HTTP_RESP_304,
		    "If-None-Match: our tag" },
		{ HTTP_METHOD_HEAD, "@", NULL, HTTP_RESP_304,
		    "HEAD If-None-Match: our tag" },
		{ HTTP_METHOD_GET, "*", NULL, HTTP_RESP_304,
		    "If-None-Match: *" },
		{ HTTP_METHOD_GET, "W/@", NULL, HTTP_RESP_304,
		    "If-None-Match: W/tag (weak comparison)" },
		{ HTTP_METHOD_GET, "\"x\", @", NULL, HTTP_RESP_304,
		    "If-None-Match: our tag second in a list" },
		{ HTTP_METHOD_GET, "@,\"y\"", NULL, HTTP_RESP_304,
		    "If-None-Match: our tag first in a list" },
		{ HTTP_METHOD_GET, "\"other\"", NULL, HTTP_RESP_GET,
		    "If-None-Match: another tag" },
		{ HTTP_METHOD_GET, "\"a\", W/\"b\"", NULL, HTTP_RESP_GET,
		    "If-None-Match: a list without our tag" },
		{ HTTP_METHOD_GET, "", NULL, HTTP_RESP_GET,
		    "If-None-Match: empty" },
		{ HTTP_METHOD_GET, "\"other\"",
		    "Mon, 27 Jul 1987 00:00:00 GMT", HTTP_RESP_GET,
		    "If-None-Match decides alone, If-Modified-Since ignored" },
		{ HTTP_METHOD_GET, NULL, "Mon, 27 Jul 1987 00:00:00 GMT",
		    HTTP_RESP_304, "If-Modified-Since: Last-Modified" },
		{ HTTP_METHOD_HEAD, NULL, "Sun, 06 Nov 1994 08:49:37 GMT",
		    HTTP_RESP_304, "HEAD If-Modified-Since: later" },
		{ HTTP_METHOD_GET, NULL, "Sun, 26 Jul 1987 23:59:59 GMT",
		    HTTP_RESP_GET, "If-Modified-Since: one second earlier" },
		{ HTTP_METHOD_GET, NULL, "Monday, 27-Jul-87 00:00:00 GMT",
		    HTTP_RESP_304, "If-Modified-Since in RFC 850 form" },
		{ HTTP_METHOD_GET, NULL, "Mon Jul 27 00:00:00 1987",
		    HTTP_RESP_304, "If-Modified-Since in asctime form" },
		{ HTTP_METHOD_GET, NULL, "yesterday", HTTP_RESP_GET,
		    "invalid If-Modified-Since ignored" },
		{ HTTP_METHOD_GET, NULL,
		    "Mon, 27 Jul 1987 00:00:00 GMT, Tue, 28 Jul 1987 "
		    "00:00:00 GMT", HTTP_RESP_GET,
		    "If-Modified-Since with two dates ignored" },
		{ HTTP_METHOD_GET, NULL, "Fri, 29 Feb 2019 00:00:00 GMT",
		    HTTP_RESP_GET, "If-Modified-Since: 29 Feb of a common "
		    "year is invalid, ignored" },
		{ HTTP_METHOD_GET, NULL, "Mon, 27 Jul 1987 00:00:00 UTC",
		    HTTP_RESP_GET, "If-Modified-Since not in GMT ignored" },
		{ HTTP_METHOD_OTHER, "@", NULL, HTTP_RESP_405,
		    "POST with our tag is still 405" },
		{ HTTP_METHOD_OPTIONS, "*", NULL, HTTP_RESP_OPTIONS,
		    "OPTIONS with If-None-Match: * is still 204" },
	};
	struct http_request	 req;
	char			 inm[256];
	size_t			 i;

	if (!ok(etag[0] == '"', "the GET response has an ETag: %s", etag))
		return;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.method = rows[i].method;
		req.content_length = -1;
		if (rows[i].inm != NULL) {
			expand(inm, sizeof(inm), rows[i].inm);
			req.if_none_match.p = inm;
			req.if_none_match.len = strlen(inm);
		}
		if (rows[i].ims != NULL) {
			req.if_modified_since.p = rows[i].ims;
			req.if_modified_since.len = strlen(rows[i].ims);
		}
		is_int(http_resp_for_request(&req), rows[i].want,
		    "conditional: %s", rows[i].desc);
	}
}

int
main(void)
{
	const char	*data;
	size_t		 len;

	if (!ok(read_file(LYRICS_PATH, &lyrics, &lyrics_len) == 0,
	    "read " LYRICS_PATH " (run from the project root)"))
		return done_testing();
	is_int(lyrics_len, 980, LYRICS_PATH " is 980 bytes");
	ok(lyrics_len >= 2 && lyrics[0] == '\n' && lyrics[1] == '\n',
	    LYRICS_PATH " starts with two newlines");

	is_int(http_init(), 0, "http_init()");
	test_responses();
	test_date_update();
	test_mappings();
	test_route();
	test_status_route();
	test_dynamic();
	test_conditional();

	/* Freed and built again, then freed twice: nothing leaks or breaks. */
	http_free();
	is_int(http_init(), 0, "http_init() after http_free()");
	data = http_response(HTTP_RESP_405, HTTP_CONN_CLOSE, &len);
	ok(len > strlen(BODY_405) && memcmp(data + len - strlen(BODY_405),
	    BODY_405, strlen(BODY_405)) == 0, "rebuilt 405 ends with its body");
	http_free();
	http_free();
	ok(1, "http_free() twice is harmless");
	free(lyrics);
	return done_testing();
}
