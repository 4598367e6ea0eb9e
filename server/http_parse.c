/*
 * HTTP/1.1 request head parser (RFC 9112 sections 2-7), in the manner of
 * picohttpparser: one pass over the bytes received so far, with every
 * limit checked inside.  Policy decisions, each from RFC 9112:
 * - a bare LF ends a head line like CRLF (2.2 allows it), but not a line
 *   of a chunked body (see there); a CR not followed by LF is an error,
 *   as are NUL and other controls (5.5);
 * - empty lines before the request line are skipped (2.2);
 * - obs-fold and whitespace before a field's colon are rejected (5.1, 5.2);
 * - message framing that could be read two ways is rejected (6.1, 6.3).
 */
#include <limits.h>
#include <string.h>

#include "http_parse.h"

/* tchar (RFC 9110 5.6.2) */
static const unsigned char tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
	['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
	['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
	['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
	['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

#define IS_TCHAR(c)	(tchar[(unsigned char)(c)])
/* request-target bytes: VCHAR; no obs-text, no controls, no space */
#define IS_TARGET(c)	((unsigned char)(c) > 0x20 && (unsigned char)(c) < 0x7f)
/* field-value bytes: VCHAR, SP, HTAB, obs-text */
#define IS_FIELD(c)	((unsigned char)(c) >= 0x20 ? (unsigned char)(c) != 0x7f \
			    : (c) == '\t')

static int
str_eq(const char *p, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(p, lit, len) == 0;
}

static int
str_caseeq(const char *p, size_t len, const char *lit)
{
	size_t	i;

	if (strlen(lit) != len)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char	c = p[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != (unsigned char)lit[i])
			return 0;
	}
	return 1;
}

/*
 * Finds the end of the line starting at p.  Returns a pointer to its
 * terminator (CRLF or a bare LF) and sets *next past it, or NULL when the
 * line is not complete yet.  A CR elsewhere stays in the line, for the
 * caller's byte checks to reject.
 */
static const char *
line_end(const char *p, const char *end, const char **next)
{
	const char	*lf;

	if ((lf = memchr(p, '\n', end - p)) == NULL)
		return NULL;
	*next = lf + 1;
	if (lf > p && lf[-1] == '\r')
		return lf - 1;
	return lf;
}

/* Iterates a comma-separated list element (RFC 9110 5.6.1), trimmed. */
static int
list_next(const char **pp, const char *end, struct http_str *elem)
{
	const char	*p = *pp, *e;

	while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
		p++;
	if (p == end)
		return 0;
	e = memchr(p, ',', end - p);
	if (e == NULL)
		e = end;
	*pp = e;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	elem->p = p;
	elem->len = e - p;
	return 1;
}

static int
parse_content_length(const char *v, size_t len, long long *out)
{
	struct http_str	 e;
	const char	*p = v, *end = v + len;
	long long	 n;
	size_t		 i;
	int		 any = 0;

	/* "5, 5" is allowed by RFC 9110 8.6 when every element agrees. */
	while (list_next(&p, end, &e)) {
		if (e.len == 0)
			return -1;
		n = 0;
		for (i = 0; i < e.len; i++) {
			if (e.p[i] < '0' || e.p[i] > '9')
				return -1;
			if (n > (LLONG_MAX - 9) / 10)
				n = LLONG_MAX;	/* too large: 413 later */
			else
				n = n * 10 + (e.p[i] - '0');
		}
		if (*out != -1 && *out != n)
			return -1;
		*out = n;
		any = 1;
	}
	return any ? 0 : -1;
}

static int	hexval(unsigned char);

/* unreserved / sub-delims (RFC 3986 2.3, 2.2): what a reg-name holds. */
static int
host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=", c) != NULL;
}

/*
 * uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2-3); empty is valid.
 * No userinfo: RFC 9110 4.2.4 forbids it in http URIs.
 */
static int
valid_authority(const char *p, size_t len)
{
	const char	*end = p + len, *close;

	if (len > 0 && *p == '[') {
		if ((close = memchr(p, ']', len)) == NULL)
			return 0;
		for (p++; p < close; p++)
			if (*p != ':' && !host_char(*p))
				return 0;
		p = close + 1;
	} else {
		for (; p < end && *p != ':'; p++) {
			if (*p == '%') {
				if (end - p < 3 || hexval(p[1]) < 0 ||
				    hexval(p[2]) < 0)
					return 0;
				p += 2;
			} else if (*p == '\0' || !host_char(*p))
				return 0;
		}
	}
	if (p == end)
		return 1;
	if (*p++ != ':')
		return 0;
	for (; p < end; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static int
parse_target(struct http_request *req)
{
	const char	*t = req->target.p, *end = t + req->target.len, *h;

	if (t[0] == '/') {
		req->target_form = HTTP_TARGET_ORIGIN;
		return 0;
	}
	if (req->target.len == 1 && t[0] == '*') {
		req->target_form = HTTP_TARGET_ASTERISK;
		return req->method == HTTP_METHOD_OPTIONS ? 0 : -1;
	}
	if (req->method == HTTP_METHOD_CONNECT) {
		req->target_form = HTTP_TARGET_AUTHORITY;
		req->host = req->target;
		return valid_authority(t, req->target.len) ? 0 : -1;
	}
	if (req->target.len > 7 && str_caseeq(t, 7, "http://"))
		h = t + 7;
	else if (req->target.len > 8 && str_caseeq(t, 8, "https://"))
		h = t + 8;
	else
		return -1;
	req->target_form = HTTP_TARGET_ABSOLUTE;
	req->host.p = h;
	while (h < end && *h != '/' && *h != '?' && *h != '#')
		h++;
	req->host.len = h - req->host.p;
	return req->host.len > 0 && valid_authority(req->host.p,
	    req->host.len) ? 0 : -1;
}

static void
parse_connection(const char *v, size_t len, int *close, int *keepalive)
{
	struct http_str	 e;
	const char	*p = v;

	while (list_next(&p, v + len, &e)) {
		if (str_caseeq(e.p, e.len, "close"))
			*close = 1;
		else if (str_caseeq(e.p, e.len, "keep-alive"))
			*keepalive = 1;
	}
}

/*
 * Transfer-Encoding: chunked may appear once, and last (RFC 9112 6.1).
 * *state collects TE_* bits across every Transfer-Encoding field.
 */
#define TE_CHUNKED	0x01	/* chunked was listed */
#define TE_LAST		0x02	/* ... and nothing after it */
#define TE_ANY		0x04	/* some coding was listed */
static int
parse_transfer_encoding(const char *v, size_t len, int *state)
{
	struct http_str	 e;
	const char	*p = v;
	int		 any = 0;

	while (list_next(&p, v + len, &e)) {
		any = 1;
		*state |= TE_ANY;
		if (str_caseeq(e.p, e.len, "chunked")) {
			if (*state & TE_CHUNKED)
				return -1;	/* chunked twice */
			*state |= TE_CHUNKED | TE_LAST;
		} else
			*state &= ~TE_LAST;
	}
	return any ? 0 : -1;
}

/*
 * Empty lines, then method SP request-target SP HTTP-version and the line
 * end (RFC 9112 2.2, 3).  Returns the bytes up to and including that line
 * end, HTTP_PARSE_INCOMPLETE, or minus the status.
 */
static int
parse_request_line(const char *buf, size_t len,
    const struct http_limits *lim, struct http_request *req)
{
	const char	*p = buf, *end = buf + len, *rl, *eol, *next;
	size_t		 mlen;

	/* Empty lines before the request line are ignored (RFC 9112 2.2). */
	while (p < end && (*p == '\r' || *p == '\n')) {
		if (*p == '\r') {
			if (p + 1 == end)
				return HTTP_PARSE_INCOMPLETE;
			if (p[1] != '\n')
				return -400;
			p++;
		}
		p++;
		if ((size_t)(p - buf) > lim->max_uri)
			return -400;
	}
	rl = p;

	/* method SP */
	while (p < end && IS_TCHAR(*p))
		p++;
	if (p == end)
		goto incomplete;
	if (*p != ' ' || p == rl)
		return -400;
	req->method_name.p = rl;
	req->method_name.len = mlen = p - rl;
	if (str_eq(rl, mlen, "GET"))
		req->method = HTTP_METHOD_GET;
	else if (str_eq(rl, mlen, "HEAD"))
		req->method = HTTP_METHOD_HEAD;
	else if (str_eq(rl, mlen, "OPTIONS"))
		req->method = HTTP_METHOD_OPTIONS;
	else if (str_eq(rl, mlen, "CONNECT"))
		req->method = HTTP_METHOD_CONNECT;
	else
		req->method = HTTP_METHOD_OTHER;
	p++;

	/* request-target SP */
	req->target.p = p;
	while (p < end && IS_TARGET(*p))
		p++;
	if (p == end)
		goto incomplete;
	if (*p != ' ' || p == req->target.p)
		return -400;
	req->target.len = p - req->target.p;
	p++;

	/* HTTP-version CRLF */
	if ((eol = line_end(p, end, &next)) == NULL)
		goto incomplete;
	if ((size_t)(eol - rl) > lim->max_uri)
		return -414;
	if (eol - p != 8 || memcmp(p, "HTTP/", 5) != 0 ||
	    p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
		return -400;
	if (p[5] != '1')
		return -505;
	req->version_minor = p[7] - '0';
	if (parse_target(req) == -1)
		return -400;
	return next - buf;

 incomplete:
	/* An unfinished line is measured as a complete one would be. */
	if (end > rl && end[-1] == '\r')
		end--;
	if ((size_t)(end - rl) > lim->max_uri)
		return -414;
	return HTTP_PARSE_INCOMPLETE;
}

/* What the field lines say together, gathered line by line. */
struct fields {
	int	hosts;
	int	close;		/* Connection: close */
	int	keepalive;	/* Connection: keep-alive */
	int	te;		/* TE_* bits */
	int	have_cl;
};

/* One field line's meaning, for the fields the server acts on. */
static int
parse_field(const char *name, size_t nlen, const char *v, size_t vlen,
    struct http_request *req, struct fields *f)
{
	if (str_caseeq(name, nlen, "host")) {
		/* RFC 9112 3.2: an invalid Host value is a 400. */
		if (!valid_authority(v, vlen))
			return -1;
		if (++f->hosts == 1 &&
		    req->target_form != HTTP_TARGET_ABSOLUTE &&
		    req->target_form != HTTP_TARGET_AUTHORITY) {
			req->host.p = v;
			req->host.len = vlen;
		}
	} else if (str_caseeq(name, nlen, "content-length")) {
		f->have_cl = 1;
		return parse_content_length(v, vlen, &req->content_length);
	} else if (str_caseeq(name, nlen, "transfer-encoding"))
		return parse_transfer_encoding(v, vlen, &f->te);
	else if (str_caseeq(name, nlen, "connection"))
		parse_connection(v, vlen, &f->close, &f->keepalive);
	else if (str_caseeq(name, nlen, "if-modified-since")) {
		req->if_modified_since.p = v;
		req->if_modified_since.len = vlen;
	} else if (str_caseeq(name, nlen, "if-none-match")) {
		req->if_none_match.p = v;
		req->if_none_match.len = vlen;
	} else if (str_caseeq(name, nlen, "expect"))
		req->expect_continue = str_caseeq(v, vlen, "100-continue");
	else if (str_caseeq(name, nlen, "referer")) {
		req->referer.p = v;
		req->referer.len = vlen;
	} else if (str_caseeq(name, nlen, "user-agent")) {
		req->user_agent.p = v;
		req->user_agent.len = vlen;
	}
	return 0;
}

/*
 * field-line CRLF ... CRLF (RFC 9112 5), after the request line, then what
 * they decide together: Host, framing, keep-alive.  Returns the bytes up
 * to and including the empty line, HTTP_PARSE_INCOMPLETE, or minus the
 * status.
 */
static int
parse_fields(const char *buf, size_t len, const struct http_limits *lim,
    struct http_request *req)
{
	const char	*p = buf, *end = buf + len, *eol, *next, *name, *v;
	const char	*vend;
	struct fields	 f;
	size_t		 nlen;

	memset(&f, 0, sizeof(f));
	for (;;) {
		if ((eol = line_end(p, end, &next)) == NULL) {
			if ((size_t)(end - buf) > lim->max_header)
				return -431;
			/* Reject what is already wrong without waiting. */
			if (p < end && (*p == ' ' || *p == '\t'))
				return -400;
			return HTTP_PARSE_INCOMPLETE;
		}
		if ((size_t)(next - buf) > lim->max_header)
			return -431;
		if (eol == p)
			break;		/* the empty line */
		if (*p == ' ' || *p == '\t')
			return -400;	/* obs-fold, or space before a field */
		name = p;
		while (p < eol && IS_TCHAR(*p))
			p++;
		if (p == eol || *p != ':' || p == name)
			return -400;
		nlen = p - name;
		p++;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		v = p;
		for (; p < eol; p++)
			if (!IS_FIELD(*p))
				return -400;	/* CTL, NUL, bare CR */
		vend = eol;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		if (++req->nfields > lim->max_fields)
			return -431;
		if (parse_field(name, nlen, v, vend - v, req, &f) == -1)
			return -400;
		p = next;
	}

	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in 1.0. */
	if (f.hosts > 1 || (f.hosts == 0 && req->version_minor >= 1))
		return -400;
	/* RFC 9112 6.1, 6.3: framing must be unambiguous. */
	if (f.te != 0) {
		if (!(f.te & TE_LAST) || f.have_cl || req->version_minor == 0)
			return -400;
		req->chunked = 1;
	}
	if (req->version_minor >= 1)
		req->keepalive = !f.close;
	else
		req->keepalive = f.keepalive && !f.close;
	return next - buf;
}

/* The request line, then the field lines, as picohttpparser splits them. */
int
http_parse_request(const char *buf, size_t len,
    const struct http_limits *lim, struct http_request *req)
{
	int	rl, fl;

	memset(req, 0, sizeof(*req));
	req->content_length = -1;
	if ((rl = parse_request_line(buf, len, lim, req)) <= 0)
		return rl;
	if ((fl = parse_fields(buf + rl, len - rl, lim, req)) <= 0)
		return fl;
	return rl + fl;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
http_path_normalize(const struct http_request *req, char *out, size_t outlen)
{
	const char	*p = req->target.p, *end = p + req->target.len;
	size_t		 n = 0, r, w, e;
	int		 hi, lo;

	if (req->target_form == HTTP_TARGET_ABSOLUTE)
		p = req->host.p + req->host.len;
	else if (req->target_form != HTTP_TARGET_ORIGIN)
		p = end;	/* "*" and authority-form have no path */
	if (outlen < (size_t)(end - p) + 2)
		return -1;
	out[n++] = '/';
	if (p < end && *p == '/')
		p++;
	for (; p < end && *p != '?'; p++) {
		if (*p != '%') {
			out[n++] = *p;
			continue;
		}
		if (end - p < 3 || (hi = hexval(p[1])) < 0 ||
		    (lo = hexval(p[2])) < 0 || (hi | lo) == 0)
			return -1;
		out[n++] = hi << 4 | lo;
		p += 2;
	}

	/*
	 * Dot-segments, in place: each segment is copied down or dropped,
	 * and ".." also drops the last segment written.  w never passes r.
	 */
	for (r = w = 0; r < n; r = e) {
		for (e = r + 1; e < n && out[e] != '/'; e++)
			;
		if (e - r == 2 && out[r + 1] == '.') {
			if (e == n)
				out[w++] = '/';
			continue;
		}
		if (e - r == 3 && out[r + 1] == '.' && out[r + 2] == '.') {
			while (w > 0 && out[--w] != '/')
				;
			if (e == n)
				out[w++] = '/';
			continue;
		}
		memmove(out + w, out + r, e - r);
		w += e - r;
	}
	if (w == 0)
		out[w++] = '/';
	out[w] = '\0';
	return (int)w;
}

/*
 * Chunked framing, RFC 9112 7.1, read only to be discarded.  Stricter
 * than the head, since a proxy in front reads the same bytes, and any
 * framing the two could split differently is a smuggling hole:
 * - every line ends in CRLF: the bare LF that 2.2 lets a head line end
 *   in is a 400 here;
 * - the size may be followed only by a chunk-ext, which starts with ";",
 *   with BWS before it (7.1.1): "5 ;x" is valid, "5 5" and "5 " are not.
 *   HAProxy, the reference, rejects "5 5" too but takes "5 " and bare
 *   LFs; it forwards the body framed anew, so being stricter costs
 *   nothing behind it.  Extension bytes need only be field bytes: they
 *   mean nothing here, so their grammar is not checked;
 * - a trailer line is a field line (7.1.2, 5.1): token name, colon,
 *   field bytes; no obs-fold.
 * Leading zeros in the size are fine, overflow is not; extension and
 * trailer bytes count against max along with the data.
 */
enum {
	CH_SIZE,	/* hex digits */
	CH_BWS,		/* spaces after the size: ";" must follow */
	CH_EXT,		/* chunk-ext, up to the CR */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER,	/* at the start of a trailer line */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,
	CH_DONE
};

void
http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

int
http_chunked_done(const struct http_chunked *c)
{
	return c->state == CH_DONE;
}

long
http_parse_chunked(struct http_chunked *c, const char *buf, size_t len,
    unsigned long long max)
{
	size_t		i = 0, n;
	unsigned char	ch;
	int		h;

	while (i < len && c->state != CH_DONE) {
		ch = buf[i];
		switch (c->state) {
		case CH_SIZE:
			if ((h = hexval(ch)) >= 0) {
				/*
				 * A leading zero past the first counts like
				 * extension bytes: zeros must not make the
				 * reader take unbounded input (nor overflow
				 * digits).  Other digits are bounded by the
				 * size they make.
				 */
				if (c->digits++ > 0 && c->remain == 0 && h == 0)
					c->meta++;
				if (c->remain > (ULLONG_MAX - 15) / 16)
					return -413;
				c->remain = c->remain * 16 + h;
				if (c->total + c->meta + c->remain > max)
					return -413;
				break;
			}
			if (c->digits == 0)
				return -400;
			if (ch == ';')
				c->state = CH_EXT;
			else if (ch == ' ' || ch == '\t')
				c->state = CH_BWS;
			else if (ch == '\r')
				c->state = CH_SIZE_LF;
			else
				return -400;
			break;
		case CH_BWS:
			if (c->total + ++c->meta > max)
				return -413;
			if (ch == ';')
				c->state = CH_EXT;
			else if (ch != ' ' && ch != '\t')
				return -400;
			break;
		case CH_EXT:
			if (c->total + ++c->meta > max)
				return -413;
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!IS_FIELD(ch))
				return -400;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -400;
			c->digits = 0;
			c->state = c->remain == 0 ? CH_TRAILER : CH_DATA;
			break;
		case CH_DATA:
			n = len - i;
			if (n > c->remain)
				n = c->remain;
			c->remain -= n;
			c->total += n;
			i += n;
			if (c->remain == 0)
				c->state = CH_DATA_CR;
			continue;
		case CH_DATA_CR:
			if (ch != '\r')
				return -400;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -400;
			c->state = CH_SIZE;
			break;
		case CH_TRAILER:
			if (ch == '\r') {
				c->state = CH_END_LF;
				break;
			}
			if (!IS_TCHAR(ch))
				return -400;
			c->state = CH_TRAILER_NAME;
			/* FALLTHROUGH */
		case CH_TRAILER_NAME:
			if (c->total + ++c->meta > max)
				return -413;
			if (ch == ':')
				c->state = CH_TRAILER_VALUE;
			else if (!IS_TCHAR(ch))
				return -400;
			break;
		case CH_TRAILER_VALUE:
			if (c->total + ++c->meta > max)
				return -413;
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (!IS_FIELD(ch))
				return -400;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -400;
			c->state = CH_TRAILER;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -400;
			c->state = CH_DONE;
			break;
		}
		i++;
	}
	return (long)i;
}
