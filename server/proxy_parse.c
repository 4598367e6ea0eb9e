/*
 * PROXY protocol header parser, versions 1 and 2 (HAProxy's
 * proxy-protocol.txt), pure and resumable like http_parse.c: each call
 * reads the bytes received so far from the start, so no state is kept
 * between calls.  The spec asks receivers to abort "as soon as possible"
 * on anything that does not match exactly, so every check is made on
 * the earliest byte that can decide it: a first byte that starts neither
 * signature, a v2 length byte that is already too large, a TLV running
 * past the declared length, all fail before the rest arrives.  That is
 * also what lets a client that never sends a header be refused on its
 * first bytes instead of at the header timeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy_parse.h"

/* What the two address families share, to be filled generically. */
union proxy_sa {
	struct sockaddr_in	v4;
	struct sockaddr_in6	v6;
};

/*
 * Zeroes u as an address of family af; returns its size and where its
 * address and port go.
 */
static socklen_t
sa_init(union proxy_sa *u, int af, void **addr, in_port_t **port)
{
	memset(u, 0, sizeof(*u));
	if (af == AF_INET) {
		u->v4.sin_family = AF_INET;
		*addr = &u->v4.sin_addr;
		*port = &u->v4.sin_port;
		return sizeof(u->v4);
	}
	u->v6.sin6_family = AF_INET6;
	*addr = &u->v6.sin6_addr;
	*port = &u->v6.sin6_port;
	return sizeof(u->v6);
}

/*
 * Version 1 (spec 2.1): one line of US-ASCII,
 *	"PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
 *	"PROXY" SP "UNKNOWN" [ SP anything ] CRLF
 * with exactly one space between fields, nothing else before the CRLF,
 * and the CRLF within the first PROXY_V1_MAX bytes.  The spec is read
 * strictly where it leaves a choice:
 * - a bare CR or LF never ends the line (it says so), and neither may
 *   appear inside it: what follows UNKNOWN is printable ASCII, so a line
 *   ended by a lone LF is not searched for a CRLF in the request after;
 * - "UNKNOWN" is a whole word: "UNKNOWNX" is an unknown protocol name;
 * - an address is judged whole, by inet_pton of the announced family,
 *   when the space after it arrives; until then only its characters and
 *   length are checked.  IPv4 octets with leading zeros are refused here
 *   too, as the spec requires, whatever the libc's inet_pton does;
 * - ports are decimal 0-65535 without leading zeros, checked digit by
 *   digit.
 */
struct v1 {
	const char	*p, *end;
	int		 capped;	/* end is at PROXY_V1_MAX, not len */
};

/* Out of bytes: more may come, unless the line is already too long. */
#define V1_MORE(c)	((c)->capped ? PROXY_ERROR : PROXY_INCOMPLETE)

/* The scanners below return 1 when done, else what proxy_parse returns. */
static int
v1_lit(struct v1 *c, const char *lit)
{
	for (; *lit != '\0'; lit++, c->p++) {
		if (c->p == c->end)
			return V1_MORE(c);
		if (*c->p != *lit)
			return PROXY_ERROR;
	}
	return 1;
}

/* After "UNKNOWN": CRLF, or SP and printable bytes up to the CRLF. */
static int
v1_unknown(struct v1 *c)
{
	if (c->p == c->end)
		return V1_MORE(c);
	if (*c->p == ' ') {
		for (c->p++; c->p < c->end && *c->p != '\r'; c->p++)
			if (*c->p < 0x20 || *c->p > 0x7e)
				return PROXY_ERROR;
		if (c->p == c->end)
			return V1_MORE(c);
	}
	return v1_lit(c, "\r\n");
}

/* "TCP4" or "TCP6", then SP. */
static int
v1_family(struct v1 *c, int *af)
{
	int	r;

	if ((r = v1_lit(c, "TCP")) != 1)
		return r;
	if (c->p == c->end)
		return V1_MORE(c);
	if (*c->p == '4')
		*af = AF_INET;
	else if (*c->p == '6')
		*af = AF_INET6;
	else
		return PROXY_ERROR;
	c->p++;
	return v1_lit(c, " ");
}

static int
v1_addr_char(int af, char ch)
{
	if (ch >= '0' && ch <= '9')
		return 1;
	if (ch == '.')
		return 1;	/* IPv4, or an IPv6 with an IPv4 tail */
	if (af == AF_INET)
		return 0;
	return ch == ':' || (ch >= 'a' && ch <= 'f') ||
	    (ch >= 'A' && ch <= 'F');
}

/* An address of family af, then SP. */
static int
v1_addr(struct v1 *c, int af, void *addr)
{
	char	text[INET6_ADDRSTRLEN];
	size_t	i, n = 0, max;

	max = (af == AF_INET ? INET_ADDRSTRLEN : INET6_ADDRSTRLEN) - 1;
	for (;;) {
		if (c->p == c->end)
			return V1_MORE(c);
		if (*c->p == ' ')
			break;
		if (n == max || !v1_addr_char(af, *c->p))
			return PROXY_ERROR;
		text[n++] = *c->p++;
	}
	if (n == 0)
		return PROXY_ERROR;
	text[n] = '\0';
	if (af == AF_INET)
		for (i = 0; i + 1 < n; i++)
			if (text[i] == '0' && (i == 0 || text[i - 1] == '.') &&
			    text[i + 1] != '.')
				return PROXY_ERROR;
	if (inet_pton(af, text, addr) != 1)
		return PROXY_ERROR;
	c->p++;
	return 1;
}

/* A port, then the byte term. */
static int
v1_port(struct v1 *c, char term, in_port_t *port)
{
	unsigned int	v = 0;
	size_t		n = 0;

	for (;;) {
		if (c->p == c->end)
			return V1_MORE(c);
		if (*c->p == term && n > 0)
			break;
		if (*c->p < '0' || *c->p > '9' || (n == 1 && v == 0))
			return PROXY_ERROR;
		if ((v = v * 10 + (*c->p - '0')) > 65535)
			return PROXY_ERROR;
		n++;
		c->p++;
	}
	c->p++;
	*port = htons(v);
	return 1;
}

static int
v1_parse(const char *buf, size_t len, struct proxy_hdr *hdr)
{
	struct v1	 c;
	union proxy_sa	 src, dst;
	void		*saddr, *daddr;
	in_port_t	*sport, *dport;
	socklen_t	 salen;
	int		 af, r;

	c.p = buf;
	c.capped = len >= PROXY_V1_MAX;
	c.end = buf + (c.capped ? PROXY_V1_MAX : len);
	if ((r = v1_lit(&c, "PROXY ")) != 1)
		return r;
	if (c.p == c.end)
		return V1_MORE(&c);
	if (*c.p == 'U') {
		if ((r = v1_lit(&c, "UNKNOWN")) != 1 ||
		    (r = v1_unknown(&c)) != 1)
			return r;
		hdr->version = 1;
		hdr->local = 1;
		return (int)(c.p - buf);
	}
	if ((r = v1_family(&c, &af)) != 1)
		return r;
	salen = sa_init(&src, af, &saddr, &sport);
	sa_init(&dst, af, &daddr, &dport);
	if ((r = v1_addr(&c, af, saddr)) != 1 ||
	    (r = v1_addr(&c, af, daddr)) != 1 ||
	    (r = v1_port(&c, ' ', sport)) != 1 ||
	    (r = v1_port(&c, '\r', dport)) != 1 ||
	    (r = v1_lit(&c, "\n")) != 1)
		return r;
	hdr->version = 1;
	memcpy(&hdr->src, &src, salen);
	memcpy(&hdr->dst, &dst, salen);
	hdr->srclen = hdr->dstlen = salen;
	return (int)(c.p - buf);
}

/*
 * Version 2 (spec 2.2): the 12-byte signature, version and command, family
 * and protocol, a big-endian length, then that many bytes: addresses and
 * TLVs.  Choices:
 * - LOCAL (health checks): the spec says the family is ignored and the
 *   block discarded, so neither is looked at beyond its length;
 * - PROXY with UNSPEC: no addresses to use, and the block's layout is
 *   unknown, so it is skipped whole like LOCAL's;
 * - PROXY with AF_UNIX stream: a path is no client address to log, so
 *   it is taken as local (the spec allows falling back to UNSPEC for a
 *   family a receiver does not implement), but its 216 bytes must be
 *   there and the TLVs after them are checked;
 * - DGRAM (UDP) is not what a TCP listener received: an error, as is
 *   any family or protocol the spec does not list;
 * - TLVs are not interpreted, but each one's 3-byte header and value
 *   must lie within the declared length, checked as they arrive, so a
 *   header that lies about its own structure is refused.
 */
#define V2_HDR		16
#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static int
v2_parse(const unsigned char *b, size_t len, struct proxy_hdr *hdr)
{
	union proxy_sa	 src, dst;
	void		*saddr, *daddr;
	in_port_t	*sport, *dport;
	socklen_t	 salen;
	size_t		 alen = 0, asz, blen, end, off, tlen;
	int		 af = AF_UNSPEC, local = 0, tlvs = 0;

	if (memcmp(b, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)))
		return PROXY_ERROR;
	if (len <= 12)
		return PROXY_INCOMPLETE;
	if ((b[12] & 0xf0) != 0x20 || (b[12] & 0x0f) > V2_CMD_PROXY)
		return PROXY_ERROR;
	if (len == 13)
		return PROXY_INCOMPLETE;
	if ((b[12] & 0x0f) == V2_CMD_LOCAL)
		local = 1;
	else {
		switch (b[13]) {
		case 0x00:		/* UNSPEC */
			local = 1;
			break;
		case 0x11:		/* TCP over IPv4 */
			af = AF_INET;
			alen = 2 * 4 + 2 * 2;
			tlvs = 1;
			break;
		case 0x21:		/* TCP over IPv6 */
			af = AF_INET6;
			alen = 2 * 16 + 2 * 2;
			tlvs = 1;
			break;
		case 0x31:		/* UNIX stream */
			local = 1;
			alen = 2 * 108;
			tlvs = 1;
			break;
		default:
			return PROXY_ERROR;
		}
	}
	if (len == 14)
		return PROXY_INCOMPLETE;
	/* The length's high byte alone may already say too much. */
	if ((size_t)b[14] << 8 > PROXY_V2_MAX - V2_HDR)
		return PROXY_ERROR;
	if (len == 15)
		return PROXY_INCOMPLETE;
	blen = (size_t)b[14] << 8 | b[15];
	if (blen > PROXY_V2_MAX - V2_HDR || blen < alen)
		return PROXY_ERROR;
	end = V2_HDR + blen;
	for (off = V2_HDR + alen; tlvs && off < end; off += 3 + tlen) {
		if (end - off < 3)
			return PROXY_ERROR;
		/* ... and so may a TLV length's. */
		if (len < off + 2)
			return PROXY_INCOMPLETE;
		if ((size_t)b[off + 1] << 8 > end - off - 3)
			return PROXY_ERROR;
		if (len < off + 3)
			return PROXY_INCOMPLETE;
		tlen = (size_t)b[off + 1] << 8 | b[off + 2];
		if (tlen > end - off - 3)
			return PROXY_ERROR;
	}
	if (len < end)
		return PROXY_INCOMPLETE;

	hdr->version = 2;
	hdr->local = local;
	if (local)
		return (int)end;
	/* addresses, then ports, all already in network byte order */
	salen = sa_init(&src, af, &saddr, &sport);
	sa_init(&dst, af, &daddr, &dport);
	asz = (alen - 2 * 2) / 2;
	memcpy(saddr, b + V2_HDR, asz);
	memcpy(daddr, b + V2_HDR + asz, asz);
	memcpy(sport, b + V2_HDR + 2 * asz, 2);
	memcpy(dport, b + V2_HDR + 2 * asz + 2, 2);
	memcpy(&hdr->src, &src, salen);
	memcpy(&hdr->dst, &dst, salen);
	hdr->srclen = hdr->dstlen = salen;
	return (int)end;
}

int
proxy_parse(const char *buf, size_t len, struct proxy_hdr *hdr)
{
	memset(hdr, 0, sizeof(*hdr));
	if (len == 0)
		return PROXY_INCOMPLETE;
	/* "PROXY" for v1, CR for v2's signature; nothing else may start. */
	if (buf[0] == 'P')
		return v1_parse(buf, len, hdr);
	if (buf[0] == '\r')
		return v2_parse((const unsigned char *)buf, len, hdr);
	return PROXY_ERROR;
}
