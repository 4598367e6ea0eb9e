/*
 * The pure PROXY protocol header parser (HAProxy's proxy-protocol.txt,
 * versions 1 and 2): bytes in, the addresses the balancer saw out.  No
 * I/O, no allocation; like http_parse.c it is called again with every
 * byte received so far until it answers something other than
 * PROXY_INCOMPLETE.
 */
#ifndef PROXY_PARSE_H
#define PROXY_PARSE_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_INCOMPLETE	0
#define PROXY_ERROR		(-1)
#define PROXY_V1_MAX		107		/* longest v1 line, CRLF included */
#define PROXY_V2_MAX		(16 + 2048)	/* longest v2 header accepted */

/*
 * local is set for v2 LOCAL, v2 UNSPEC (and AF_UNIX) or v1 UNKNOWN: the
 * header carries no addresses to use, so the connection keeps its own.
 * Otherwise src and dst are a sockaddr_in or sockaddr_in6 with family,
 * address and port (network byte order), and srclen, dstlen their size.
 */
struct proxy_hdr {
	int			 version;	/* 1 or 2 */
	int			 local;		/* no addresses: keep the socket's */
	struct sockaddr_storage	 src;		/* the client, when !local */
	struct sockaddr_storage	 dst;
	socklen_t		 srclen, dstlen; /* 0 when local */
};

/*
 * Returns the header's length once it is complete, PROXY_INCOMPLETE when
 * more bytes may still make a valid header, or PROXY_ERROR when these
 * bytes can never be one (wrong signature, malformed, truncated fields,
 * oversized): the caller closes the connection.  hdr is meaningful only
 * after a complete header; bytes after the header are never looked at.
 */
int	proxy_parse(const char *buf, size_t len, struct proxy_hdr *hdr);

#endif
