/*
 * The pure HTTP/1.1 request parser: bytes in, a parsed request head or a
 * status code out.  No I/O, no allocation; the conn layer calls it again
 * with more bytes when it answers "incomplete".
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>

enum http_method {
	HTTP_METHOD_OTHER,
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_CONNECT
};

enum http_target_form {
	HTTP_TARGET_ORIGIN,	/* /path?query */
	HTTP_TARGET_ABSOLUTE,	/* http://host/path */
	HTTP_TARGET_AUTHORITY,	/* host:port, CONNECT only */
	HTTP_TARGET_ASTERISK	/* *, OPTIONS only */
};

struct http_limits {
	size_t		 max_uri;	/* request line, else 414 */
	size_t		 max_header;	/* header fields, else 431 */
	int		 max_fields;	/* field count, else 431 */
};

/*
 * The default field count: 100 of the client's own and the few that
 * proxies add (X-Forwarded-For, Via, ...) must fit (issue 11).
 */
#define HTTP_MAX_FIELDS	128

struct http_str {
	const char	*p;
	size_t		 len;
};

/* Pointers in a parsed request point into the caller's buffer. */
struct http_request {
	int		 method;
	struct http_str	 method_name;
	struct http_str	 target;
	int		 target_form;
	struct http_str	 host;		/* from absolute-form, else Host */
	int		 version_minor;	/* HTTP/1.x */
	int		 keepalive;	/* after version and Connection */
	int		 nfields;
	int		 chunked;
	int		 expect_continue; /* Expect: 100-continue */
	long long	 content_length; /* -1: none */
	struct http_str	 if_modified_since;
	struct http_str	 if_none_match;
	struct http_str	 referer;	/* for the access log */
	struct http_str	 user_agent;
};

#define HTTP_PARSE_INCOMPLETE	0

/*
 * Returns the length of the request head (request line through the empty
 * line) when it is complete, HTTP_PARSE_INCOMPLETE when more bytes are
 * needed, or minus the status to answer (-400, -414, -431, -505), after
 * which the connection must be closed.
 */
int	http_parse_request(const char *, size_t, const struct http_limits *,
	    struct http_request *);

/*
 * The path of a request target, percent-decoded and with dot-segments
 * removed (RFC 3986 2.1, 5.2.4), into out (at least target length + 2
 * bytes: a leading "/" may be added, and the NUL).  The query is dropped.
 * Returns the length, or -1 for a bad %-escape or an encoded NUL (400).
 * Every use of a path goes through it.
 */
int	http_path_normalize(const struct http_request *, char *, size_t);

/* Resumable chunked-body reader, used to discard bodies. */
struct http_chunked {
	int			state;
	unsigned long long	remain;	/* bytes left in this chunk */
	unsigned long long	total;	/* body bytes so far */
	unsigned long long	meta;	/* extension and trailer bytes */
	int			digits;
};

void	http_chunked_init(struct http_chunked *);
/*
 * Consumes up to len bytes; returns the number consumed (>= 0), or -400 on
 * malformed framing, -413 when the body exceeds max.  http_chunked_done()
 * tells when the last chunk and trailers were read.
 */
long	http_parse_chunked(struct http_chunked *, const char *, size_t,
	    unsigned long long);
int	http_chunked_done(const struct http_chunked *);

#endif
