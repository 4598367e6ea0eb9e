/*
 * Unit tests for server/http_parse.c: a table of raw requests drawn from
 * RFC 9112 and RFC 9110 with the exact result each must give, then the
 * limits, resumability (every prefix is incomplete), pipelining, and the
 * chunked body reader.  Every input is copied into a buffer of exactly
 * its length, so ASan catches a read past the end.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "tap.h"

#define M_GET	HTTP_METHOD_GET
#define M_HEAD	HTTP_METHOD_HEAD
#define M_OPT	HTTP_METHOD_OPTIONS
#define M_CONN	HTTP_METHOD_CONNECT
#define M_OTHER	HTTP_METHOD_OTHER
#define T_ORIG	HTTP_TARGET_ORIGIN
#define T_ABS	HTTP_TARGET_ABSOLUTE
#define T_AUTH	HTTP_TARGET_AUTHORITY
#define T_STAR	HTTP_TARGET_ASTERISK

#define H	"Host: a\r\n"
#define GET11	"GET / HTTP/1.1\r\n"
#define GET10	"GET / HTTP/1.0\r\n"
#define POST11	"POST / HTTP/1.1\r\n"

static const struct http_limits	deflim = {
	8192, 16384, HTTP_MAX_FIELDS
};

struct row {
	const char	*raw;
	size_t		 len;
	int		 want;		/* head length, 0 or -status */
	int		 method;
	int		 form;
	int		 minor;
	int		 keepalive;
	long long	 cl;
	int		 chunked;
	const char	*host;		/* NULL: none */
	const char	*desc;
};

/* The whole input is one request head. */
#define PASS(raw, m, f, v, ka, cl, ch, host, desc)			\
	{ raw, sizeof(raw) - 1, sizeof(raw) - 1, m, f, v, ka, cl, ch,	\
	    host, desc }
/* A request head followed by other bytes (a body, the next request). */
#define PASSB(head, rest, m, f, v, ka, cl, ch, host, desc)		\
	{ head rest, sizeof(head rest) - 1, sizeof(head) - 1, m, f, v,	\
	    ka, cl, ch, host, desc }
#define FAIL(raw, status, desc)						\
	{ raw, sizeof(raw) - 1, -(status), 0, 0, 0, 0, 0, 0, NULL, desc }
#define MORE(raw, desc)							\
	{ raw, sizeof(raw) - 1, HTTP_PARSE_INCOMPLETE, 0, 0, 0, 0, 0,	\
	    0, NULL, desc }

static const struct row rows[] = {
	/* Request line (RFC 9112 3) and its four target forms (3.2). */
	PASS("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "example.com", "simple GET"),
	PASS("HEAD / HTTP/1.1\r\n" H "\r\n",
	    M_HEAD, T_ORIG, 1, 1, -1, 0, "a", "simple HEAD"),
	PASS("GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "www.example.org",
	    "origin-form with query (3.2.1)"),
	PASS("GET //double//slash HTTP/1.1\r\n" H "\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "origin-form starting //"),
	PASS("GET /%7Euser/a%20b?x=%2F#frag HTTP/1.1\r\n" H "\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "percent-encoded target"),
	PASS("GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\n"
	    "Host: www.example.org\r\n\r\n",
	    M_GET, T_ABS, 1, 1, -1, 0, "www.example.org",
	    "absolute-form (3.2.2)"),
	PASS("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
	    M_GET, T_ABS, 1, 1, -1, 0, "a.example",
	    "absolute-form host overrides Host (7.2)"),
	PASS("GET https://x.example:8443/p?q HTTP/1.1\r\nHost: x\r\n\r\n",
	    M_GET, T_ABS, 1, 1, -1, 0, "x.example:8443",
	    "absolute-form https with port"),
	PASS("GET HTTP://UP.example HTTP/1.1\r\nHost: u\r\n\r\n",
	    M_GET, T_ABS, 1, 1, -1, 0, "UP.example",
	    "absolute-form: scheme is case-insensitive, no path"),
	PASS("GET http://q.example?x=1 HTTP/1.1\r\nHost: q\r\n\r\n",
	    M_GET, T_ABS, 1, 1, -1, 0, "q.example",
	    "absolute-form: host ends at ?"),
	PASS("GET http://a.example/ HTTP/1.0\r\n\r\n",
	    M_GET, T_ABS, 0, 0, -1, 0, "a.example",
	    "absolute-form in HTTP/1.0 without Host"),
	FAIL("GET http://a.example/ HTTP/1.1\r\n\r\n", 400,
	    "absolute-form in HTTP/1.1 still needs Host (3.2)"),
	FAIL("GET http:/// HTTP/1.1\r\n" H "\r\n", 400,
	    "absolute-form with empty authority"),
	FAIL("GET ftp://a.example/ HTTP/1.1\r\n" H "\r\n", 400,
	    "absolute-form with an unknown scheme"),
	PASS("CONNECT server.example.com:80 HTTP/1.1\r\n"
	    "Host: server.example.com:80\r\n\r\n",
	    M_CONN, T_AUTH, 1, 1, -1, 0, "server.example.com:80",
	    "authority-form with CONNECT (3.2.3)"),
	PASS("CONNECT a.example:443 HTTP/1.1\r\nHost: other\r\n\r\n",
	    M_CONN, T_AUTH, 1, 1, -1, 0, "a.example:443",
	    "authority-form host overrides Host"),
	FAIL("CONNECT a.example:443/x HTTP/1.1\r\n" H "\r\n", 400,
	    "authority-form with a path"),
	FAIL("GET example.com:80 HTTP/1.1\r\n" H "\r\n", 400,
	    "authority-form only for CONNECT"),
	FAIL("OPTIONS example.com:80 HTTP/1.1\r\n" H "\r\n", 400,
	    "authority-form not for OPTIONS"),
	PASS("OPTIONS * HTTP/1.1\r\n" H "\r\n",
	    M_OPT, T_STAR, 1, 1, -1, 0, "a",
	    "asterisk-form with OPTIONS (3.2.4)"),
	PASS("OPTIONS / HTTP/1.1\r\n" H "\r\n",
	    M_OPT, T_ORIG, 1, 1, -1, 0, "a", "OPTIONS with origin-form"),
	FAIL("GET * HTTP/1.1\r\n" H "\r\n", 400, "asterisk-form with GET"),
	FAIL("HEAD * HTTP/1.1\r\n" H "\r\n", 400, "asterisk-form with HEAD"),
	FAIL("POST * HTTP/1.1\r\n" H "\r\n", 400, "asterisk-form with POST"),
	FAIL("options * HTTP/1.1\r\n" H "\r\n", 400,
	    "asterisk-form with lowercase options (not OPTIONS)"),
	FAIL("OPTIONS ** HTTP/1.1\r\n" H "\r\n", 400, "target **"),
	FAIL("GET index.html HTTP/1.1\r\n" H "\r\n", 400,
	    "relative target"),

	/* Methods (RFC 9110 9.1: case-sensitive tokens). */
	PASSB(POST11 H "Content-Length: 5\r\n\r\n", "hello",
	    M_OTHER, T_ORIG, 1, 1, 5, 0, "a", "POST with a body"),
	PASS("PUT /x HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, 0, 0, "a", "PUT"),
	PASS("DELETE /x HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a", "DELETE"),
	PASS("TRACE / HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a", "TRACE"),
	PASS("BREW /pot HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a", "unknown method token"),
	PASS("get / HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a",
	    "lowercase get is another method"),
	PASS("Head / HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a", "Head is another method"),
	PASS("GETS / HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a", "GETS is not GET"),
	PASS("M-_!#$%&'*+.^`|~9 / HTTP/1.1\r\n" H "\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 0, "a", "method of every tchar"),
	FAIL("GE(T / HTTP/1.1\r\n" H "\r\n", 400, "method with (, not a tchar"),
	FAIL("G\xc3\x89T / HTTP/1.1\r\n" H "\r\n", 400, "non-ASCII method"),
	FAIL(" GET / HTTP/1.1\r\n" H "\r\n", 400, "leading space"),
	FAIL("GET  / HTTP/1.1\r\n" H "\r\n", 400, "two spaces after method"),
	FAIL("GET /  HTTP/1.1\r\n" H "\r\n", 400, "two spaces after target"),
	FAIL("GET\t/\tHTTP/1.1\r\n" H "\r\n", 400, "tabs as separators"),
	FAIL("GET / HTTP/1.1 \r\n" H "\r\n", 400, "space after version"),
	FAIL("GET /\r\n" H "\r\n", 400, "HTTP/0.9 simple request"),
	FAIL("GET HTTP/1.1\r\n" H "\r\n", 400, "no target"),
	FAIL("GET\r\n" H "\r\n", 400, "method only"),
	FAIL("/ HTTP/1.1\r\n" H "\r\n", 400, "no method"),
	FAIL("GET /a b HTTP/1.1\r\n" H "\r\n", 400, "space in target"),
	FAIL("GET /a\tb HTTP/1.1\r\n" H "\r\n", 400, "tab in target"),
	FAIL("GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400,
	    "raw UTF-8 in target"),
	FAIL("GET /\x7f HTTP/1.1\r\n" H "\r\n", 400, "DEL in target"),

	/* HTTP-version (2.3): 1.x served, other majors 505, garbage 400. */
	PASS("GET / HTTP/1.0\r\n\r\n",
	    M_GET, T_ORIG, 0, 0, -1, 0, NULL, "HTTP/1.0 without Host"),
	PASS("GET / HTTP/1.0\r\n" H "\r\n",
	    M_GET, T_ORIG, 0, 0, -1, 0, "a", "HTTP/1.0 with Host"),
	PASS("GET / HTTP/1.9\r\n" H "\r\n",
	    M_GET, T_ORIG, 9, 1, -1, 0, "a", "HTTP/1.9 treated as 1.1"),
	FAIL("GET / HTTP/1.9\r\n\r\n", 400, "HTTP/1.9 without Host"),
	FAIL("GET / HTTP/2.0\r\n" H "\r\n", 505, "HTTP/2.0"),
	FAIL("GET / HTTP/3.0\r\n" H "\r\n", 505, "HTTP/3.0"),
	FAIL("GET / HTTP/9.9\r\n" H "\r\n", 505, "HTTP/9.9"),
	FAIL("GET / HTTP/0.9\r\n" H "\r\n", 505, "HTTP/0.9"),
	FAIL("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2 preface"),
	FAIL("GET / HTTP/1.10\r\n" H "\r\n", 400, "HTTP/1.10"),
	FAIL("GET / HTTP/1\r\n" H "\r\n", 400, "HTTP/1"),
	FAIL("GET / HTTP/1.\r\n" H "\r\n", 400, "HTTP/1."),
	FAIL("GET / HTTP/11\r\n" H "\r\n", 400, "HTTP/11"),
	FAIL("GET / http/1.1\r\n" H "\r\n", 400, "lowercase http/1.1 (2.3)"),
	FAIL("GET / HTTP/1.a\r\n" H "\r\n", 400, "HTTP/1.a"),
	FAIL("GET / HTTP/x.1\r\n" H "\r\n", 400, "HTTP/x.1"),
	FAIL("GET / HTTP/1,1\r\n" H "\r\n", 400, "HTTP/1,1"),
	FAIL("GET / HTTPS/1.1\r\n" H "\r\n", 400, "HTTPS/1.1"),
	FAIL("GET / HTTP/-1.1\r\n" H "\r\n", 400, "HTTP/-1.1"),
	FAIL("GET / FOO\r\n" H "\r\n", 400, "version FOO"),

	/* Line ends (2.2): leading empty lines skipped, bare LF accepted. */
	PASS("\r\nGET / HTTP/1.1\r\n" H "\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "leading CRLF skipped"),
	PASS("\n\r\n\nGET / HTTP/1.1\r\n" H "\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "several leading empty lines"),
	PASS("GET / HTTP/1.1\nHost: a\n\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "bare LF everywhere"),
	PASS("GET / HTTP/1.1\r\nHost: a\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "mixed CRLF and LF"),
	PASS("GET / HTTP/1.1\nHost: a\r\n\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "bare LF ending the head"),
	FAIL("\r\r\nGET / HTTP/1.1\r\n" H "\r\n", 400,
	    "bare CR before the request line"),
	FAIL("GET / HTTP/1.1\rHost: a\r\n\r\n", 400,
	    "bare CR ending the request line"),
	FAIL("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400,
	    "bare CR inside a field value"),
	FAIL("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400,
	    "CR CR LF ending a field"),
	FAIL("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400,
	    "bare CR in the empty line"),
	FAIL("GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n", 400,
	    "bare CR in a field name"),
	/*
	 * Host values are checked as authorities too, which would hide a
	 * bare CR let through by the field-value check: these go through
	 * that check alone.
	 */
	FAIL(GET11 H "X: a\rb\r\n\r\n", 400,
	    "bare CR inside another field's value"),
	FAIL(GET11 H "X: a\r\r\n\r\n", 400, "CR CR LF ending another field"),
	FAIL(GET11 H "X: \r\r\n\r\n", 400, "bare CR as a whole field value"),
	FAIL(GET11 H "X:\rb\r\n\r\n", 400, "bare CR right after the colon"),
	FAIL(GET11 H "X: a \r b\r\n\r\n", 400, "bare CR between spaces"),
	FAIL(GET11 H "User-Agent: a\rb\r\n\r\n", 400,
	    "bare CR in a value kept for the access log"),
	FAIL(POST11 H "Content-Length: 5\r\r\n\r\n", 400,
	    "CR CR LF ending Content-Length"),
	FAIL(POST11 H "Transfer-Encoding: chunked\r\r\n\r\n", 400,
	    "CR CR LF ending Transfer-Encoding"),
	FAIL(POST11 H "Transfer-Encoding: chunked\rX: y\r\n\r\n", 400,
	    "bare CR splitting Transfer-Encoding from another field"),

	/* NUL and other controls (5.5). */
	FAIL("\0GET / HTTP/1.1\r\n" H "\r\n", 400, "NUL first"),
	FAIL("GET\0/ HTTP/1.1\r\n" H "\r\n", 400, "NUL in method"),
	FAIL("GET /\0 HTTP/1.1\r\n" H "\r\n", 400, "NUL in target"),
	FAIL("GET / HTTP/1.1\0\r\n" H "\r\n", 400, "NUL after version"),
	FAIL("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 400,
	    "NUL in a field value"),
	FAIL("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n", 400, "NUL in a field name"),
	FAIL("GET / HTTP/1.1\r\n" H "X: \0\r\n\r\n", 400,
	    "NUL as a whole field value"),
	FAIL("GET / HTTP/1.1\r\n" H "X: a\x01" "b\r\n\r\n", 400,
	    "SOH in a field value"),
	FAIL("GET / HTTP/1.1\r\n" H "X: a\x1f\r\n\r\n", 400,
	    "US in a field value"),
	FAIL("GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", 400,
	    "DEL in a field value"),
	FAIL("GET / HTTP/1.1\r\n" H "X: a\x0b\r\n\r\n", 400,
	    "VT in a field value"),
	FAIL("GET / HTTP/1.1\r\n" H "X\x01: a\r\n\r\n", 400,
	    "control in a field name"),
	PASS("GET / HTTP/1.1\r\n" H "X: a\tb\t\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "HTAB allowed in a field value"),
	PASS("GET / HTTP/1.1\r\n" H "X: caf\xc3\xa9 \x80\xff\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a",
	    "obs-text allowed in a field value"),

	/* Field syntax (5.1, 5.2). */
	FAIL("GET / HTTP/1.1\r\n" H "X: b\r\n c\r\n\r\n", 400,
	    "obs-fold with SP"),
	FAIL("GET / HTTP/1.1\r\n" H "X: b\r\n\tc\r\n\r\n", 400,
	    "obs-fold with HTAB"),
	FAIL("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400,
	    "whitespace before the first field (2.2)"),
	FAIL("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400,
	    "space before the colon (5.1)"),
	FAIL("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400,
	    "tab before the colon"),
	FAIL("GET / HTTP/1.1\r\n" H ": a\r\n\r\n", 400, "empty field name"),
	FAIL("GET / HTTP/1.1\r\n" H "X a\r\n\r\n", 400, "no colon"),
	FAIL("GET / HTTP/1.1\r\n" H "X\r\n\r\n", 400, "name alone"),
	FAIL("GET / HTTP/1.1\r\n" H "X Y: a\r\n\r\n", 400, "space in a name"),
	FAIL("GET / HTTP/1.1\r\n" H "X(Y): a\r\n\r\n", 400, "( in a name"),
	FAIL("GET / HTTP/1.1\r\n" H "H\xc3\xb3st: a\r\n\r\n", 400,
	    "non-ASCII field name"),
	PASS("GET / HTTP/1.1\r\nHost:a\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "no whitespace after the colon"),
	PASS("GET / HTTP/1.1\r\nHost: \t a.example \t \r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a.example", "OWS trimmed both sides"),
	PASS("GET / HTTP/1.1\r\nX-y_!#$%&'*+.^`|~: v\r\n" H "\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "field name of every tchar"),
	PASS("GET / HTTP/1.1\r\nX:\r\n" H "\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "empty field value"),

	/* Host (RFC 9112 3.2, RFC 9110 7.2). */
	FAIL("GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
	FAIL("GET / HTTP/1.1\r\nX: a\r\n\r\n", 400,
	    "HTTP/1.1 with fields but no Host"),
	FAIL("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
	    "two different Host"),
	FAIL("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400,
	    "two identical Host"),
	FAIL("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400,
	    "two Host in HTTP/1.0"),
	FAIL("GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400,
	    "two Host with absolute-form"),
	PASS("GET / HTTP/1.1\r\nhost: lower\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "lower",
	    "host name is case-insensitive"),
	PASS("GET / HTTP/1.1\r\nHOST: example.com:8080\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "example.com:8080", "Host with a port"),
	PASS("GET / HTTP/1.1\r\nHost: [::1]:1337\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "[::1]:1337", "Host with IPv6 literal"),
	/* RFC 9112 3.2: a Host that is not uri-host [":" port] is a 400. */
	FAIL("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "Host with a space"),
	FAIL("GET / HTTP/1.1\r\nHost: a\x80\r\n\r\n", 400,
	    "Host with obs-text"),
	FAIL("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400,
	    "Host with a bad port"),
	FAIL("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "Host with userinfo"),
	FAIL("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400,
	    "Host with an unclosed IPv6 literal"),
	FAIL("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Host with a slash"),
	FAIL("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
	    "absolute-form with userinfo"),
	PASS("GET / HTTP/1.1\r\nHost: \r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "", "empty Host (RFC 9112 3.2)"),
	PASS("GET / HTTP/1.1\r\nHost: ex%41mple.com:\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "ex%41mple.com:",
	    "Host with a pct-encoded byte and an empty port"),
	PASS("GET / HTTP/1.1\r\nHost:\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "", "empty Host value (7.2)"),

	/* Content-Length (RFC 9110 8.6, RFC 9112 6.3). */
	PASS(GET11 H "Content-Length: 0\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, 0, 0, "a", "Content-Length: 0"),
	PASSB(GET11 H "Content-Length: 3\r\n\r\n", "abc",
	    M_GET, T_ORIG, 1, 1, 3, 0, "a", "GET with a body"),
	PASSB(POST11 H "content-length: 10\r\n\r\n", "0123456789",
	    M_OTHER, T_ORIG, 1, 1, 10, 0, "a",
	    "content-length is case-insensitive"),
	PASS(POST11 H "Content-Length: 005\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, 5, 0, "a", "leading zeros"),
	PASS(POST11 H "Content-Length: 5, 5\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, 5, 0, "a", "list of equal values"),
	PASS(POST11 H "Content-Length: 7,7 ,\t7\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, 7, 0, "a", "list of equal values, OWS"),
	PASS(POST11 H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, 5, 0, "a", "equal duplicate lines"),
	PASS(POST11 H "Content-Length: 1234567890123\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, 1234567890123LL, 0, "a",
	    "Content-Length beyond 32 bits"),
	PASS(POST11 H "Content-Length: 99999999999999999999999\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, LLONG_MAX, 0, "a",
	    "Content-Length beyond 64 bits saturates (413 later)"),
	FAIL(POST11 H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
	    "differing duplicate lines"),
	FAIL(POST11 H "Content-Length: 5, 6\r\n\r\n", 400,
	    "list of differing values"),
	FAIL(POST11 H "Content-Length: abc\r\n\r\n", 400, "not digits"),
	FAIL(POST11 H "Content-Length: +5\r\n\r\n", 400, "plus sign"),
	FAIL(POST11 H "Content-Length: -1\r\n\r\n", 400, "negative"),
	FAIL(POST11 H "Content-Length: 0x10\r\n\r\n", 400, "hex"),
	FAIL(POST11 H "Content-Length: 5.0\r\n\r\n", 400, "decimal point"),
	FAIL(POST11 H "Content-Length: 1e3\r\n\r\n", 400, "exponent"),
	FAIL(POST11 H "Content-Length: 5 5\r\n\r\n", 400, "space inside"),
	FAIL(POST11 H "Content-Length:\r\n\r\n", 400, "empty"),
	FAIL(POST11 H "Content-Length: ,\r\n\r\n", 400, "only a comma"),

	/* Transfer-Encoding (RFC 9112 6.1, 6.3). */
	PASSB(POST11 H "Transfer-Encoding: chunked\r\n\r\n",
	    "5\r\nhello\r\n0\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 1, "a", "chunked"),
	PASS(POST11 H "transfer-encoding: Chunked\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 1, "a", "chunked, any case"),
	PASS(GET11 H "Transfer-Encoding: chunked\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 1, "a", "GET with a chunked body"),
	PASS(POST11 H "Transfer-Encoding: gzip, chunked\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 1, "a", "gzip, chunked"),
	PASS(POST11 H "Transfer-Encoding: gzip\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n",
	    M_OTHER, T_ORIG, 1, 1, -1, 1, "a",
	    "gzip then chunked on two lines"),
	FAIL(POST11 H "Transfer-Encoding: gzip\r\n\r\n", 400,
	    "gzip alone: no framing"),
	FAIL(POST11 H "Transfer-Encoding: identity\r\n\r\n", 400, "identity"),
	FAIL(POST11 H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
	    "chunked, gzip: chunked not last"),
	FAIL(POST11 H "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", 400,
	    "chunked then gzip on two lines"),
	FAIL(POST11 H "Transfer-Encoding: chunked, chunked\r\n\r\n", 400,
	    "chunked twice in a list"),
	FAIL(POST11 H "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400,
	    "chunked twice on two lines"),
	FAIL(POST11 H "Transfer-Encoding: chunked, gzip, chunked\r\n\r\n", 400,
	    "chunked applied twice, last one final"),
	FAIL(POST11 H "Transfer-Encoding:\r\n\r\n", 400, "empty TE"),
	FAIL(POST11 H "Transfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n", 400, "TE then CL"),
	FAIL(POST11 H "Content-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400, "CL then TE"),
	FAIL("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	    "TE in HTTP/1.0"),

	/* Connection (RFC 9112 9.3). */
	PASS(GET11 H "Connection: close\r\n\r\n",
	    M_GET, T_ORIG, 1, 0, -1, 0, "a", "1.1 Connection: close"),
	PASS(GET11 H "connection: CLOSE\r\n\r\n",
	    M_GET, T_ORIG, 1, 0, -1, 0, "a", "1.1 close, any case"),
	PASS(GET11 H "Connection: keep-alive\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "1.1 Connection: keep-alive"),
	PASS(GET11 H "Connection: Upgrade, close\r\n\r\n",
	    M_GET, T_ORIG, 1, 0, -1, 0, "a", "1.1 close in a list"),
	PASS(GET11 H "Connection: keep-alive, close\r\n\r\n",
	    M_GET, T_ORIG, 1, 0, -1, 0, "a", "1.1 close wins over keep-alive"),
	PASS(GET11 H "Connection: , ,close ,\r\n\r\n",
	    M_GET, T_ORIG, 1, 0, -1, 0, "a", "1.1 close among empty elements"),
	PASS(GET11 H "Connection: TE, foo\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "1.1 other options keep alive"),
	PASS(GET11 H "Connection: closed\r\n\r\n",
	    M_GET, T_ORIG, 1, 1, -1, 0, "a", "1.1 closed is not close"),
	PASS(GET10 "Connection: keep-alive\r\n\r\n",
	    M_GET, T_ORIG, 0, 1, -1, 0, NULL, "1.0 Connection: keep-alive"),
	PASS(GET10 "Connection: Keep-Alive\r\n\r\n",
	    M_GET, T_ORIG, 0, 1, -1, 0, NULL, "1.0 Keep-Alive, any case"),
	PASS(GET10 "Connection: foo, keep-alive\r\n\r\n",
	    M_GET, T_ORIG, 0, 1, -1, 0, NULL, "1.0 keep-alive in a list"),
	PASS(GET10 "Connection: close\r\n\r\n",
	    M_GET, T_ORIG, 0, 0, -1, 0, NULL, "1.0 Connection: close"),
	PASS(GET10 "Connection: keep-alive, close\r\n\r\n",
	    M_GET, T_ORIG, 0, 0, -1, 0, NULL, "1.0 keep-alive and close"),
	PASS(GET10 "Connection: keep-alive\r\nConnection: close\r\n\r\n",
	    M_GET, T_ORIG, 0, 0, -1, 0, NULL, "1.0 keep-alive, close lines"),
	PASS(GET10 "Connection: keep-alives\r\n\r\n",
	    M_GET, T_ORIG, 0, 0, -1, 0, NULL,
	    "1.0 keep-alives is not keep-alive"),
	PASS("GET / HTTP/1.9\r\n" H "Connection: close\r\n\r\n",
	    M_GET, T_ORIG, 9, 0, -1, 0, "a", "1.9 Connection: close"),

	/* Incomplete input. */
	MORE("", "empty input"),
	MORE("G", "one byte"),
	MORE("\r", "a lone CR"),
	MORE("\r\n", "an empty line only"),
	MORE("GET / HTTP/1.1", "request line without its end"),
	MORE("GET / HTTP/1.1\r", "request line up to CR"),
	MORE("GET / HTTP/1.1\r\n" H, "no empty line yet"),
	MORE("GET / HTTP/1.1\r\n" H "\r", "empty line up to CR"),
	FAIL("GET / HTTP/1.1\r\n" H " x", 400,
	    "incomplete, but already an obs-fold"),
};
#define NROWS	(sizeof(rows) / sizeof(rows[0]))

static const char *const method_names[] = {
	"OTHER", "GET", "HEAD", "OPTIONS", "CONNECT"
};

static int
str_is(const struct http_str *s, const char *want)
{
	if (want == NULL)
		return s->p == NULL && s->len == 0;
	return s->p != NULL && s->len == strlen(want) &&
	    memcmp(s->p, want, s->len) == 0;
}

/* Copies raw into a buffer of exactly len bytes and parses it. */
static int
parse_exact(const char *raw, size_t len, const struct http_limits *lim,
    struct http_request *req)
{
	char	*buf;
	int	 rv;

	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(buf, raw, len);
	rv = http_parse_request(buf, len, lim, req);
	free(buf);
	return rv;
}

/*
 * Row R fed a byte at a time, as the conn layer does: it parses all it
 * has again whenever more arrives.  Until the head is complete the
 * answer is "incomplete", or at once the row's own error, never another
 * verdict; from the head's end on, the row's.
 */
static void
growing(const struct row *r, size_t i)
{
	struct http_request	req;
	size_t			k;
	int			rv = 0, want;

	for (k = 1; k <= r->len; k++) {
		rv = parse_exact(r->raw, k, &deflim, &req);
		if (r->want > 0)
			want = k < (size_t)r->want ? 0 : r->want;
		else
			want = rv == 0 && k < r->len ? 0 : r->want;
		if (rv != want || rv < 0)
			break;
	}
	if (!ok(rv == r->want && (k > r->len || r->want < 0),
	    "row %zu byte by byte: %s -> %d", i + 1, r->desc, r->want))
		diag("after %zu of %zu bytes: returned %d", k, r->len, rv);
}

static void
test_table(void)
{
	struct http_request	 req;
	const struct row	*r;
	char			 why[1024], *buf;
	size_t			 i, n;
	int			 rv;

	ok(NROWS >= 100, "the table has %zu rows (at least 100)", NROWS);
	for (i = 0; i < NROWS; i++) {
		r = &rows[i];
		/* A copy of exactly len bytes, kept until compared. */
		if ((buf = malloc(r->len ? r->len : 1)) == NULL)
			abort();
		memcpy(buf, r->raw, r->len);
		rv = http_parse_request(buf, r->len, &deflim, &req);
		why[0] = '\0';
		n = 0;
#define WHY(...)	n += snprintf(why + n, n < sizeof(why) ? \
			    sizeof(why) - n : 0, __VA_ARGS__)
		if (rv != r->want)
			WHY("returned %d, expected %d; ", rv, r->want);
		else if (r->want > 0) {
			if (req.method != r->method)
				WHY("method %s, expected %s; ",
				    method_names[req.method],
				    method_names[r->method]);
			if (req.target_form != r->form)
				WHY("target_form %d, expected %d; ",
				    req.target_form, r->form);
			if (req.version_minor != r->minor)
				WHY("version_minor %d, expected %d; ",
				    req.version_minor, r->minor);
			if (req.keepalive != r->keepalive)
				WHY("keepalive %d, expected %d; ",
				    req.keepalive, r->keepalive);
			if (req.content_length != r->cl)
				WHY("content_length %lld, expected %lld; ",
				    req.content_length, r->cl);
			if (req.chunked != r->chunked)
				WHY("chunked %d, expected %d; ", req.chunked,
				    r->chunked);
			if (!str_is(&req.host, r->host))
				WHY("host \"%.*s\"%s, expected \"%s\"; ",
				    (int)req.host.len,
				    req.host.p ? req.host.p : "",
				    req.host.p ? "" : " (none)",
				    r->host ? r->host : "(none)");
		}
#undef WHY
		if (!ok(why[0] == '\0', "row %zu: %s -> %d", i + 1, r->desc,
		    r->want)) {
			diag("%s", why);
			tap_escaped("request: ", r->raw, r->len);
		}
		free(buf);
		growing(r, i);
	}
}

/* The request line, method and target point into the caller's buffer. */
static void
test_fields(void)
{
	static const char	 raw[] = "\r\nPATCH /a/b?c HTTP/1.1\r\n"
	    "Host: h\r\nIf-Modified-Since: Mon, 27 Jul 1987 00:00:00 GMT\r\n"
	    "If-None-Match:  \"xyz\" \r\nX: 1\r\n\r\n";
	struct http_request	 req;
	int			 rv;

	rv = http_parse_request(raw, sizeof(raw) - 1, &deflim, &req);
	is_int(rv, sizeof(raw) - 1, "PATCH request parses");
	ok(req.method_name.p == raw + 2, "method_name points into the buffer");
	is_mem(req.method_name.p, req.method_name.len, "PATCH", 5,
	    "method_name is PATCH");
	is_mem(req.target.p, req.target.len, "/a/b?c", 6, "target is /a/b?c");
	is_int(req.nfields, 4, "nfields counts every field line");
	is_mem(req.if_modified_since.p, req.if_modified_since.len,
	    "Mon, 27 Jul 1987 00:00:00 GMT", 29, "If-Modified-Since value");
	is_mem(req.if_none_match.p, req.if_none_match.len, "\"xyz\"", 5,
	    "If-None-Match value, OWS trimmed");
}

/* Builds "GET /aaa... HTTP/1.1" of exactly linelen bytes, then rest. */
static size_t
build_line(char *buf, size_t linelen, const char *rest)
{
	size_t	n = 0, pad;

	pad = linelen - strlen("GET / HTTP/1.1");
	memcpy(buf, "GET /", 5);
	n = 5;
	memset(buf + n, 'a', pad);
	n += pad;
	memcpy(buf + n, " HTTP/1.1", 9);
	n += 9;
	memcpy(buf + n, rest, strlen(rest));
	return n + strlen(rest);
}

static void
test_limits(void)
{
	static const struct http_limits	 small = { 64, 128, 5 };
	struct http_request		 req;
	char				*buf;
	size_t				 n, cap = 64 * 1024;
	int				 i;

	if ((buf = malloc(cap)) == NULL)
		abort();

	/* Request line limit: 414 (RFC 9112 3). */
	n = build_line(buf, 8192, "\r\n" H "\r\n");
	is_int(parse_exact(buf, n, &deflim, &req), n,
	    "request line of exactly max_uri (8192) is accepted");
	n = build_line(buf, 8193, "\r\n" H "\r\n");
	is_int(parse_exact(buf, n, &deflim, &req), -414,
	    "request line of max_uri + 1 gets 414");
	n = build_line(buf, 8193, "");
	is_int(parse_exact(buf, n, &deflim, &req), -414,
	    "unfinished request line over max_uri gets 414 at once");
	n = build_line(buf, 20000, "\r\n" H "\r\n");
	is_int(parse_exact(buf, n, &deflim, &req), -414,
	    "request line of 20000 bytes gets 414");
	n = build_line(buf, 64, "\r\n" H "\r\n");
	is_int(parse_exact(buf, n, &small, &req), n,
	    "small limit: request line of exactly 64 accepted");
	n = build_line(buf, 65, "\r\n" H "\r\n");
	is_int(parse_exact(buf, n, &small, &req), -414,
	    "small limit: request line of 65 gets 414");
	memset(buf, '\n', 9000);
	is_int(parse_exact(buf, 9000, &deflim, &req), -400,
	    "9000 empty lines: refused, not waited for");

	/* Header section limit: 431 (RFC 6585 5). */
	for (i = 0; i < 2; i++) {
		size_t	sect = 16384 + i, pad;

		n = build_line(buf, 14, "\r\n" H "X: ");
		/* section = "Host: a\r\n" "X: " pad "\r\n" "\r\n" */
		pad = sect - strlen(H) - 3 - 2 - 2;
		memset(buf + n, 'v', pad);
		n += pad;
		memcpy(buf + n, "\r\n\r\n", 4);
		n += 4;
		is_int(parse_exact(buf, n, &deflim, &req), i ? -431 : (int)n,
		    "header section of %zu bytes (max_header 16384) -> %s",
		    sect, i ? "431" : "accepted");
	}
	n = build_line(buf, 14, "\r\n" H "X: ");
	memset(buf + n, 'v', 17000);
	n += 17000;
	is_int(parse_exact(buf, n, &deflim, &req), -431,
	    "unfinished header section over max_header gets 431 at once");
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	is_int(parse_exact(buf, n, &deflim, &req), -431,
	    "one complete field line over max_header gets 431 at once");

	/*
	 * Field count: HTTP_MAX_FIELDS, else 431.  Issue 11: 100 fields of
	 * the client's own plus the few a proxy or browser adds must pass.
	 */
	ok(HTTP_MAX_FIELDS >= 100 + 8, "HTTP_MAX_FIELDS (%d) leaves room "
	    "for 100 fields and the usual few", HTTP_MAX_FIELDS);
	n = build_line(buf, 14, "\r\n" H "User-Agent: u\r\nAccept: */*\r\n"
	    "Accept-Encoding: gzip\r\nX-Forwarded-For: 192.0.2.1\r\n"
	    "X-Forwarded-Proto: http\r\nConnection: keep-alive\r\n");
	for (i = 1; i <= 100; i++)
		n += snprintf(buf + n, cap - n, "X-%d: v\r\n", i);
	n += snprintf(buf + n, cap - n, "\r\n");
	is_int(parse_exact(buf, n, &deflim, &req), n,
	    "100 fields plus Host and 6 usual ones accepted");
	is_int(req.nfields, 107, "nfields is 107");
	for (i = 0; i < 2; i++) {
		int	k, nf = HTTP_MAX_FIELDS + i;

		n = build_line(buf, 14, "\r\n" H);
		for (k = 1; k < nf; k++)
			n += snprintf(buf + n, cap - n, "X-%d: v\r\n", k);
		n += snprintf(buf + n, cap - n, "\r\n");
		if (i == 0) {
			is_int(parse_exact(buf, n, &deflim, &req), n,
			    "%d fields accepted", nf);
			is_int(req.nfields, nf, "nfields is %d", nf);
		} else
			is_int(parse_exact(buf, n, &deflim, &req), -431,
			    "%d fields get 431", nf);
	}
	n = build_line(buf, 14,
	    "\r\n" H "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
	is_int(parse_exact(buf, n, &small, &req), n,
	    "small limit: 5 fields accepted");
	n = build_line(buf, 14, "\r\n" H "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
	    "E: 5\r\n\r\n");
	is_int(parse_exact(buf, n, &small, &req), -431,
	    "small limit: 6 fields get 431");
	free(buf);
}

/*
 * Every proper prefix of a valid request is incomplete, whatever the
 * split: the conn layer feeds the parser what has arrived so far.
 */
static void
prefixes(const char *raw, size_t len, const struct http_limits *lim,
    const char *desc)
{
	struct http_request	req;
	size_t			k;
	int			rv = 0;

	for (k = 0; k < len; k++)
		if ((rv = parse_exact(raw, k, lim, &req)) != 0)
			break;
	if (!ok(k == len, "every proper prefix of %s is incomplete", desc))
		diag("prefix of %zu bytes returned %d", k, rv);
	is_int(parse_exact(raw, len, lim, &req), len,
	    "and the whole of %s parses", desc);
}

static void
test_prefixes(void)
{
	static const struct http_limits	 small = { 64, 128, 5 };
	static const char		 a[] = "GET / HTTP/1.1\r\n"
	    "Host: example.com\r\nConnection: close\r\n\r\n";
	static const char		 b[] = "\r\n\nPOST /form?x HTTP/1.0\n"
	    "Content-Length: 5\nConnection: keep-alive\n\n";
	static const char		 c[] = "OPTIONS * HTTP/1.1\r\n"
	    "Host: a\r\nTransfer-Encoding: gzip, chunked\r\n"
	    "X-Empty:\r\n\r\n";
	static const char		 d[] = "GET http://a.example:80/p "
	    "HTTP/1.1\r\nHost: b\r\n\r\n";
	char				 buf[256];
	size_t				 n;

	prefixes(a, sizeof(a) - 1, &deflim, "a GET with CRLF");
	prefixes(b, sizeof(b) - 1, &deflim, "a POST with bare LF");
	prefixes(c, sizeof(c) - 1, &deflim, "an OPTIONS *");
	prefixes(d, sizeof(d) - 1, &deflim, "an absolute-form GET");

	/* At the limits the answer must not depend on the split either. */
	n = build_line(buf, 64, "\r\n" H "\r\n");
	prefixes(buf, n, &small, "a request line of exactly max_uri");
	buf[0] = '\r';
	buf[1] = '\n';
	n = 2 + build_line(buf + 2, 63, "\r\n" H "\r\n");
	prefixes(buf, n, &small,
	    "a leading CRLF and a request line of max_uri - 1");
}

#define P1	"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
#define P2	"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
#define P2B	"hello"
#define P3	"\r\nHEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n"
#define P4	"PUT /4 HTTP/1.1\r\nHost: a\r\n" \
		"Transfer-Encoding: chunked\r\n\r\n"
#define P4B	"3\r\nabc\r\n0\r\n\r\n"
#define P5	"GET /5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

static void
test_pipeline(void)
{
	static const char	 raw[] = P1 P2 P2B P3 P4 P4B P5;
	static const struct {
		int		 method;
		const char	*target;
		int		 len;
		int		 keepalive;
	} want[] = {
		{ M_GET, "/1", sizeof(P1) - 1, 1 },
		{ M_OTHER, "/2", sizeof(P2) - 1, 1 },
		/* the stray CRLF before it is skipped, and counted */
		{ M_HEAD, "/3", sizeof(P3) - 1, 1 },
		{ M_OTHER, "/4", sizeof(P4) - 1, 1 },
		{ M_GET, "/5", sizeof(P5) - 1, 1 },
	};
	struct http_request	 req;
	struct http_chunked	 ch;
	size_t			 off = 0, len = sizeof(raw) - 1;
	long			 n;
	int			 i, rv;

	for (i = 0; i < 5; i++) {
		rv = http_parse_request(raw + off, len - off, &deflim, &req);
		if (!is_int(rv, want[i].len, "pipelined request %d: length",
		    i + 1))
			return;
		ok(req.method == want[i].method &&
		    str_is(&req.target, want[i].target) &&
		    req.keepalive == want[i].keepalive,
		    "pipelined request %d: method, target %s, keep-alive",
		    i + 1, want[i].target);
		off += rv;
		if (req.content_length > 0)
			off += req.content_length;
		if (req.chunked) {
			http_chunked_init(&ch);
			n = http_parse_chunked(&ch, raw + off, len - off,
			    1024);
			ok(n == sizeof(P4B) - 1 && http_chunked_done(&ch),
			    "pipelined request %d: chunked body of %zu bytes "
			    "(got %ld)", i + 1, sizeof(P4B) - 1, n);
			if (n > 0)
				off += n;
		}
	}
	is_int(off, len, "pipeline consumed to the last byte");
}

/* http_parse_chunked: RFC 9112 7.1. */
struct crow {
	const char		*raw;
	size_t			 len;
	unsigned long long	 max;
	long			 want;	/* consumed, or -status */
	int			 done;
	unsigned long long	 total;
	const char		*desc;
};

#define BIG	(1ULL << 40)
#define CDONE(raw, total, desc)						\
	{ raw, sizeof(raw) - 1, BIG, sizeof(raw) - 1, 1, total, desc }
#define CPART(raw, rest, total, desc)					\
	{ raw rest, sizeof(raw rest) - 1, BIG, sizeof(raw) - 1, 1, total, \
	    desc }
#define CMORE(raw, total, desc)						\
	{ raw, sizeof(raw) - 1, BIG, sizeof(raw) - 1, 0, total, desc }
#define CMAX(raw, max, total, desc)					\
	{ raw, sizeof(raw) - 1, max, sizeof(raw) - 1, 1, total, desc }
#define CFAIL(raw, max, status, desc)					\
	{ raw, sizeof(raw) - 1, max, -(status), 0, 0, desc }

static const struct crow crows[] = {
	CDONE("5\r\nhello\r\n0\r\n\r\n", 5, "one chunk"),
	CDONE("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11, "two chunks"),
	CDONE("0\r\n\r\n", 0, "empty body"),
	CDONE("A\r\n0123456789\r\n0\r\n\r\n", 10, "uppercase hex"),
	CDONE("a\r\n0123456789\r\n0\r\n\r\n", 10, "lowercase hex"),
	CDONE("1f\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n", 31,
	    "two hex digits"),
	CDONE("000000000000005\r\nhello\r\n0\r\n\r\n", 5,
	    "15 hex digits with leading zeros"),
	CDONE("3\r\n\r\n\0\r\n0\r\n\r\n", 3, "data may hold CR LF NUL"),
	CDONE("5;name=value\r\nhello\r\n0;last\r\n\r\n", 5,
	    "chunk extensions"),
	CDONE("5 ; a=\"b c\";d\r\nhello\r\n0\r\n\r\n", 5,
	    "extension with BWS and a quoted string"),
	CDONE("5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n", 5, "one trailer"),
	CDONE("5\r\nhello\r\n0\r\nA: 1\r\nB: 2\r\n\r\n", 5, "two trailers"),
	CDONE("5\t;x\r\nhello\r\n0  \t ;y\r\n\r\n", 5,
	    "BWS before ; (7.1.1), on the last chunk too"),
	CDONE("5;\r\nhello\r\n0\r\n\r\n", 5,
	    "an empty extension: skipped unparsed"),
	CDONE("0\r\nX:\r\n\r\n", 0, "empty trailer value"),
	CDONE("0\r\nX:v\r\n\r\n", 0, "no space after a trailer's colon"),
	CDONE("0\r\nX-y_!#$%&'*+.^`|~: v \t\r\n\r\n", 0,
	    "trailer name of every tchar"),
	CDONE("0\r\nX: caf\xc3\xa9 \"q\"\r\n\r\n", 0,
	    "obs-text and a quote in a trailer value"),
	CPART("5\r\nhello\r\n0\r\n\r\n", "GET / HTTP/1.1\r\n", 5,
	    "stops at the end of the body"),
	CMORE("5\r\nhel", 3, "incomplete data"),
	CMORE("5\r\nhello\r\n0\r\n", 5, "incomplete: no final line"),
	CMORE("5\r\nhello\r\n0\r\nX: y\r\n", 5, "incomplete: in trailers"),
	CMORE("5 \t", 0, "incomplete: BWS, a ; may follow"),
	CMORE("0\r\nX-Tra", 0, "incomplete: in a trailer name"),
	CFAIL("g\r\n", BIG, 400, "bad hex digit"),
	CFAIL("\r\n", BIG, 400, "no size"),
	CFAIL(";ext\r\n", BIG, 400, "extension without a size"),
	CFAIL("5x\r\nhello\r\n", BIG, 400, "junk after the size"),
	/* Issue 11: "5 5" was size 5 with an "extension" of "5". */
	CFAIL("5 5\r\nhello\r\n0\r\n\r\n", BIG, 400,
	    "space and junk after the size (5 5)"),
	CFAIL("5\t5\r\nhello\r\n0\r\n\r\n", BIG, 400,
	    "tab and junk after the size"),
	CFAIL("5 x=1\r\nhello\r\n0\r\n\r\n", BIG, 400,
	    "extension without its ;"),
	CFAIL("5 \r\nhello\r\n0\r\n\r\n", BIG, 400,
	    "BWS with no ; after it"),
	CFAIL("5\r\nhello\r\n0 0\r\n\r\n", BIG, 400,
	    "space and junk after the last chunk's size"),
	CFAIL("5 ;a\r\nhello\r\n0 \r\n\r\n", BIG, 400,
	    "last chunk: BWS with no ; after it"),
	/* Issue 11: a chunked body takes no bare LF. */
	CFAIL("5\nhello\r\n0\r\n\r\n", BIG, 400, "bare LF after the size"),
	CFAIL("5;x=y\nhello\r\n0\r\n\r\n", BIG, 400,
	    "bare LF after an extension"),
	CFAIL("5\r\nhello\n0\r\n\r\n", BIG, 400, "bare LF after the data"),
	CFAIL("5\r\nhello\r\n0\n\r\n", BIG, 400,
	    "bare LF after the last chunk's size"),
	CFAIL("5\r\nhello\r\n0\r\n\n", BIG, 400,
	    "bare LF ending the trailer section"),
	CFAIL("0\r\nT: x\n\r\n", BIG, 400, "bare LF after a trailer"),
	CFAIL("5\nhello\n0\n\n", BIG, 400, "bare LF everywhere"),
	CFAIL("5\nhello\n0\nT: x\n\n", BIG, 400, "bare LF with a trailer"),
	CFAIL("5;a\rb\r\nhello\r\n", BIG, 400, "bare CR in an extension"),
	CFAIL("-5\r\n", BIG, 400, "negative size"),
	CFAIL(" 5\r\n", BIG, 400, "space before the size"),
	CFAIL("0x5\r\nhello\r\n", BIG, 400, "0x prefix"),
	CFAIL("5\rX", BIG, 400, "CR without LF after the size"),
	CFAIL("5;\x01\r\n", BIG, 400, "control in an extension"),
	CFAIL("5\r\nhelloX0\r\n\r\n", BIG, 400, "no CRLF after the data"),
	CFAIL("5\r\nhello\rX", BIG, 400, "CR without LF after the data"),
	CFAIL("5\r\nhello world\r\n0\r\n\r\n", BIG, 400,
	    "more data than the size"),
	CFAIL("0\r\n bad\r\n\r\n", BIG, 400, "trailer starting with space"),
	CFAIL("0\r\nA: 1\r\n\tb\r\n\r\n", BIG, 400, "obs-fold in trailers"),
	/* Issue 11: a trailer is a field line, name ":" value (7.1.2). */
	CFAIL("0\r\nX\r\n\r\n", BIG, 400, "trailer name alone"),
	CFAIL("0\r\nX y\r\n\r\n", BIG, 400, "trailer without a colon"),
	CFAIL("0\r\nX : y\r\n\r\n", BIG, 400,
	    "space before a trailer's colon"),
	CFAIL("0\r\n: y\r\n\r\n", BIG, 400, "empty trailer name"),
	CFAIL("0\r\nX(Y): y\r\n\r\n", BIG, 400, "( in a trailer name"),
	CFAIL("0\r\nX\xc3\xa9: y\r\n\r\n", BIG, 400,
	    "non-ASCII trailer name"),
	CFAIL("0\r\nX: a\rb\r\n\r\n", BIG, 400, "bare CR in a trailer"),
	CFAIL("0\r\nX: a\r\r\n\r\n", BIG, 400,
	    "CR CR LF ending a trailer"),
	CFAIL("0\r\nX: a\x7f\r\n\r\n", BIG, 400, "DEL in a trailer"),
	CFAIL("0\r\nX: a\0b\r\n\r\n", BIG, 400, "NUL in a trailer"),
	CFAIL("0\r\n\rX", BIG, 400, "CR without LF at the end"),
	CFAIL("10\r\n", 15, 413, "chunk size over max"),
	CFAIL("8\r\n12345678\r\n8\r\n", 15, 413, "total over max"),
	CFAIL("1\r\na\r\n", 0, 413, "any data over max 0"),
	/* RFC 9112 7.1 allows leading zeros: the value decides, not the length. */
	CMAX("0000000000000001\r\na\r\n0\r\n\r\n", BIG, 1,
	    "16 hex digits with leading zeros"),
	CFAIL("000000000000000000005\r\nhello\r\n0\r\n\r\n", 15, 413,
	    "leading zeros count against max"),
	CFAIL("000000000000000000000\r\n\r\n", 15, 413,
	    "leading zeros of the last chunk count against max"),
	CMAX("00005\r\nhello\r\n0\r\n\r\n", 9, 5,
	    "a few leading zeros within max"),
	CFAIL("5;" "xxxxxxxxxxxxxxxxxxxx" "\r\nhello\r\n0\r\n\r\n", 15, 413,
	    "extension bytes count against max"),
	CFAIL("0\r\nX: " "yyyyyyyyyyyyyyyyyyyy" "\r\n\r\n", 15, 413,
	    "trailer bytes count against max"),
	CFAIL("5" "                    " ";x\r\nhello\r\n0\r\n\r\n", 15, 413,
	    "BWS bytes count against max"),
	CFAIL("0\r\n" "NNNNNNNNNNNNNNNNNNNN" ": v\r\n\r\n", 15, 413,
	    "trailer name bytes count against max"),
	CFAIL("ffffffffffffffff\r\n", BIG, 413, "16 hex digits, all f"),
	CFAIL("10000000000000000\r\n", BIG, 413, "17 hex digits"),
	CMAX("f\r\n123456789abcdef\r\n0\r\n\r\n", 15, 15, "exactly max"),
	CMAX("8\r\n12345678\r\n7\r\n1234567\r\n0\r\n\r\n", 15, 15,
	    "two chunks adding up to exactly max"),
	CMAX("0\r\n\r\n", 0, 0, "empty body with max 0"),
};
#define NCROWS	(sizeof(crows) / sizeof(crows[0]))

static void
test_chunked(void)
{
	struct http_chunked	 c;
	const struct crow	*r;
	char			*buf;
	size_t			 i, k;
	long			 rv, sum;

	for (i = 0; i < NCROWS; i++) {
		r = &crows[i];
		if ((buf = malloc(r->len)) == NULL)
			abort();
		memcpy(buf, r->raw, r->len);

		http_chunked_init(&c);
		rv = http_parse_chunked(&c, buf, r->len, r->max);
		if (r->want < 0) {
			if (!is_int(rv, r->want, "chunked whole: %s",
			    r->desc))
				tap_escaped("body: ", r->raw, r->len);
		} else if (!ok(rv == r->want &&
		    http_chunked_done(&c) == r->done && c.total == r->total,
		    "chunked whole: %s", r->desc)) {
			diag("consumed %ld (want %ld), done %d (want %d), "
			    "total %llu (want %llu)", rv, r->want,
			    http_chunked_done(&c), r->done, c.total, r->total);
			tap_escaped("body: ", r->raw, r->len);
		}

		/* Byte by byte, each in a buffer of its own. */
		http_chunked_init(&c);
		sum = 0;
		rv = 0;
		for (k = 0; k < r->len; k++) {
			char	*one;

			if ((one = malloc(1)) == NULL)
				abort();
			*one = r->raw[k];
			rv = http_parse_chunked(&c, one, 1, r->max);
			free(one);
			if (rv < 0)
				break;
			if (rv != 1 && !http_chunked_done(&c))
				break;
			sum += rv;
		}
		if (r->want < 0)
			is_int(rv, r->want, "chunked byte by byte: %s",
			    r->desc);
		else if (!ok(sum == r->want &&
		    http_chunked_done(&c) == r->done && c.total == r->total,
		    "chunked byte by byte: %s", r->desc))
			diag("consumed %ld (want %ld), done %d, total %llu, "
			    "last call %ld", sum, r->want,
			    http_chunked_done(&c), c.total, rv);
		free(buf);
	}

	/* After the end, nothing more is taken. */
	http_chunked_init(&c);
	rv = http_parse_chunked(&c, "0\r\n\r\n", 5, BIG);
	ok(rv == 5 && http_chunked_done(&c), "chunked: done after 0 CRLF CRLF");
	is_int(http_parse_chunked(&c, "5\r\nhello", 8, BIG), 0,
	    "chunked: a done reader consumes nothing");
	http_chunked_init(&c);
	is_int(http_chunked_done(&c), 0, "chunked: a fresh reader is not done");
}

/*
 * http_path_normalize: percent-decoding and dot-segment removal (RFC 3986
 * 2.1, 5.2.4), done once for every request.
 */
static void
test_path(void)
{
	static const struct {
		const char	*line;	/* request line */
		const char	*want;	/* NULL: refused (400) */
		size_t		 wlen;
	} paths[] = {
#define P(line, want)	{ line, want, sizeof(want) - 1 }
#define PBAD(line)	{ line, NULL, 0 }
		P("GET / HTTP/1.1", "/"),
		P("GET /a/b/c HTTP/1.1", "/a/b/c"),
		P("GET /a/b/../c HTTP/1.1", "/a/c"),
		P("GET /a/./b HTTP/1.1", "/a/b"),
		P("GET /a/b/.. HTTP/1.1", "/a/"),
		P("GET /a/b/. HTTP/1.1", "/a/b/"),
		P("GET /. HTTP/1.1", "/"),
		P("GET /.. HTTP/1.1", "/"),
		P("GET /../../etc/passwd HTTP/1.1", "/etc/passwd"),
		P("GET /a/../../b HTTP/1.1", "/b"),
		P("GET /a/b/c/./../../g HTTP/1.1", "/a/g"),
		P("GET /mid/content=5/../6 HTTP/1.1", "/mid/6"),
		P("GET /%2e%2e/%2E%2E/etc HTTP/1.1", "/etc"),
		P("GET /a/%2e/b HTTP/1.1", "/a/b"),
		P("GET /a/..%2f..%2fetc HTTP/1.1", "/etc"),
		P("GET /%41%62c HTTP/1.1", "/Abc"),
		P("GET /caf%C3%A9 HTTP/1.1", "/caf\xc3\xa9"),
		P("GET /%25 HTTP/1.1", "/%"),
		P("GET /%2541 HTTP/1.1", "/%41"),
		P("GET /a%3Fb HTTP/1.1", "/a?b"),
		P("GET /a?b=../c HTTP/1.1", "/a"),
		P("GET /?x HTTP/1.1", "/"),
		P("GET //a//b HTTP/1.1", "//a//b"),
		P("GET /a/.../b HTTP/1.1", "/a/.../b"),
		P("GET /a/..b/.c HTTP/1.1", "/a/..b/.c"),
		P("GET http://h/x/../y HTTP/1.1", "/y"),
		P("GET http://h HTTP/1.1", "/"),
		P("GET http://h?q HTTP/1.1", "/"),
		P("GET http://h:80/%7Eu/ HTTP/1.1", "/~u/"),
		P("OPTIONS * HTTP/1.1", "/"),
		P("CONNECT h:443 HTTP/1.1", "/"),
		PBAD("GET /%00 HTTP/1.1"),
		PBAD("GET /a%00b HTTP/1.1"),
		PBAD("GET /% HTTP/1.1"),
		PBAD("GET /a% HTTP/1.1"),
		PBAD("GET /%4 HTTP/1.1"),
		PBAD("GET /%zz HTTP/1.1"),
		PBAD("GET /%4g HTTP/1.1"),
		PBAD("GET /%g4 HTTP/1.1"),
#undef P
#undef PBAD
	};
	struct http_request	 req;
	char			 raw[256], *out;
	size_t			 i, n, outlen;
	int			 rv;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		n = snprintf(raw, sizeof(raw), "%s\r\nHost: h\r\n\r\n",
		    paths[i].line);
		if ((rv = http_parse_request(raw, n, &deflim, &req)) <= 0) {
			ok(0, "path: %s parses (%d)", paths[i].line, rv);
			continue;
		}
		/* Room for the path and its NUL, and not a byte more. */
		outlen = req.target.len + 2;
		if ((out = malloc(outlen)) == NULL)
			abort();
		rv = http_path_normalize(&req, out, outlen);
		if (paths[i].want == NULL)
			is_int(rv, -1, "path: %s refused", paths[i].line);
		else if (!ok(rv == (int)paths[i].wlen &&
		    memcmp(out, paths[i].want, paths[i].wlen) == 0 &&
		    out[rv] == '\0', "path: %s -> %s", paths[i].line,
		    paths[i].want)) {
			diag("returned %d", rv);
			if (rv >= 0)
				tap_escaped("got: ", out, rv);
		}
		free(out);
	}

	/*
	 * The header promises target length + 2 bytes are enough, also for
	 * an absolute-form path that gains a leading "/".
	 */
	n = snprintf(raw, sizeof(raw), "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n");
	rv = http_parse_request(raw, n, &deflim, &req);
	if ((out = malloc(req.target.len + 2)) == NULL)
		abort();
	rv = http_path_normalize(&req, out, req.target.len + 2);
	ok(rv == 4 && memcmp(out, "/abc", 5) == 0,
	    "path: /abc fits in target length + 2 bytes (returned %d)", rv);
	free(out);
	n = snprintf(raw, sizeof(raw),
	    "GET http://h#abc HTTP/1.1\r\nHost: h\r\n\r\n");
	rv = http_parse_request(raw, n, &deflim, &req);
	if ((out = malloc(req.target.len + 2)) == NULL)
		abort();
	rv = http_path_normalize(&req, out, req.target.len + 2);
	ok(rv == 5 && memcmp(out, "/#abc", 6) == 0,
	    "path: http://h#abc fits in target length + 2 bytes (returned %d)",
	    rv);
	free(out);
}

int
main(void)
{
	test_table();
	test_fields();
	test_limits();
	test_prefixes();
	test_pipeline();
	test_chunked();
	test_path();
	return done_testing();
}
