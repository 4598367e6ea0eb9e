/*
 * libFuzzer target for the request parser, the path normalizer and the
 * chunked body reader: the code that reads hostile bytes first.  Input
 * is parsed as a stream of pipelined requests, as conn.c does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits	 lim = { 512, 1024, HTTP_MAX_FIELDS };
	struct http_request	 req;
	struct http_chunked	 ch;
	const char		*p;
	char			*buf, *path;
	size_t			 off = 0;
	long			 n;
	int			 r;

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
