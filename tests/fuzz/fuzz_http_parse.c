/*
 * libFuzzer target for the PROXY header parser, the request parser, the
 * path normalizer and the chunked body reader: the code that reads
 * hostile bytes first.  Every input goes through both parsers, as on a
 * proxy_protocol listener: a PROXY header first, then, after it (or
 * from the start, when there is none), a stream of pipelined requests,
 * as conn.c parses them.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "proxy_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* proxy_parse on a copy of exactly len bytes, so ASan sees any overread. */
static int
proxy_exact(const uint8_t *data, size_t len, struct proxy_hdr *hdr)
{
	char	*buf;
	int	 r;

	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(buf, data, len);
	r = proxy_parse(buf, len, hdr);
	free(buf);
	return r;
}

/* An address the parser filled must be one inet_ntop can print. */
static void
proxy_check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	char			text[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET && len == sizeof(sin)) {
		memcpy(&sin, ss, sizeof(sin));
		if (inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text)) ==
		    NULL)
			abort();
	} else if (ss->ss_family == AF_INET6 && len == sizeof(sin6)) {
		memcpy(&sin6, ss, sizeof(sin6));
		if (inet_ntop(AF_INET6, &sin6.sin6_addr, text,
		    sizeof(text)) == NULL)
			abort();
	} else
		abort();
}

/*
 * Parses the PROXY header at the start of data and checks what any
 * answer implies: a header is no longer than the input or the limits,
 * its every shorter prefix is incomplete, its fields agree; an
 * incomplete input was incomplete one byte earlier too.  Returns the
 * header's length, or 0 when there is none.
 */
static size_t
proxy_fuzz(const uint8_t *data, size_t size)
{
	struct proxy_hdr	hdr, again;
	int			r;

	r = proxy_exact(data, size, &hdr);
	if (r == PROXY_INCOMPLETE) {
		if (size > 0 && proxy_exact(data, size - 1, &again) !=
		    PROXY_INCOMPLETE)
			abort();
		return 0;
	}
	if (r == PROXY_ERROR)
		return 0;
	if (r < 0 || (size_t)r > size || r > PROXY_V2_MAX)
		abort();
	if ((hdr.version != 1 && hdr.version != 2) ||
	    (hdr.version == 1 && r > PROXY_V1_MAX))
		abort();
	if (hdr.local) {
		if (hdr.srclen != 0 || hdr.dstlen != 0)
			abort();
	} else {
		if (hdr.src.ss_family != hdr.dst.ss_family)
			abort();
		proxy_check_addr(&hdr.src, hdr.srclen);
		proxy_check_addr(&hdr.dst, hdr.dstlen);
	}
	if (proxy_exact(data, r - 1, &again) != PROXY_INCOMPLETE ||
	    proxy_exact(data, r / 2, &again) != PROXY_INCOMPLETE)
		abort();
	if (proxy_exact(data, r, &again) != r ||
	    memcmp(&hdr, &again, sizeof(hdr)) != 0)
		abort();	/* the bytes after it changed the header */
	return (size_t)r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits	 lim = { 512, 1024, HTTP_MAX_FIELDS };
	struct http_request	 req;
	struct http_chunked	 ch;
	const char		*p;
	char			*buf, *path;
	size_t			 off;
	long			 n;
	int			 r;

	off = proxy_fuzz(data, size);
	/* A copy of exactly size bytes, so ASan sees any overread. */
	if ((buf = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	while (off < size) {
		p = buf + off;
		r = http_parse_request(p, size - off, &lim, &req);
		if (r <= 0)
			break;
		if ((size_t)r > size - off)
			abort();	/* consumed more than it was given */
		if ((path = malloc(req.target.len + 2)) != NULL) {
			if (http_path_normalize(&req, path, req.target.len + 2)
			    > (int)req.target.len + 1)
				abort();
			free(path);
		}
		off += r;
		if (req.chunked) {
			http_chunked_init(&ch);
			n = http_parse_chunked(&ch, buf + off, size - off, 4096);
			if (n < 0 || !http_chunked_done(&ch))
				break;
			off += n;
		} else if (req.content_length > 0) {
			if ((unsigned long long)req.content_length > size - off)
				break;
			off += req.content_length;
		}
	}
	free(buf);
	return 0;
}
