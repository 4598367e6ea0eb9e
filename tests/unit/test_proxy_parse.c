/*
 * Unit tests for server/proxy_parse.c: a table of PROXY v1 and v2
 * headers (valid, truncated, oversized, malformed, wrong signature) with
 * the exact result each must give, fed whole and as every prefix, since
 * conn.c calls the parser again with whatever has arrived.  A failing
 * row names the first bad byte, and the parser must say PROXY_ERROR as
 * soon as that byte is in, and not before.  Every input is copied into
 * a buffer of exactly its length, so ASan catches a read past the end.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_parse.h"
#include "tap.h"

struct row {
	const char	*raw;
	size_t		 len;
	int		 want;	/* header length, PROXY_INCOMPLETE or _ERROR */
	size_t		 at;	/* _ERROR: the shortest prefix that fails */
	int		 version;
	int		 local;
	const char	*src, *dst;	/* as inet_ntop writes them */
	int		 sport, dport;
	const char	*desc;
};

/*
 * The whole input is a header with addresses: src, sport, dst, dport,
 * desc follow, or S4/S6 and desc (hence the extra level of expansion).
 */
#define PASS(raw, v, ...)	PASS_(raw, v, __VA_ARGS__)
#define PASS_(raw, v, src, sp, dst, dp, desc)				\
	{ raw, sizeof(raw) - 1, sizeof(raw) - 1, 0, v, 0, src, dst,	\
	    sp, dp, desc }
/* A header with addresses, then other bytes (a request, a handshake). */
#define PASSB(head, rest, v, ...) PASSB_(head, rest, v, __VA_ARGS__)
#define PASSB_(head, rest, v, src, sp, dst, dp, desc)			\
	{ head rest, sizeof(head rest) - 1, sizeof(head) - 1, 0, v, 0,	\
	    src, dst, sp, dp, desc }
/* A header that says to keep the connection's own addresses. */
#define LOCAL(raw, v, desc)						\
	{ raw, sizeof(raw) - 1, sizeof(raw) - 1, 0, v, 1, NULL, NULL,	\
	    0, 0, desc }
#define LOCALB(head, rest, v, desc)					\
	{ head rest, sizeof(head rest) - 1, sizeof(head) - 1, 0, v, 1,	\
	    NULL, NULL, 0, 0, desc }
/* good may still become a header; the first byte of bad ends that. */
#define FAIL(good, bad, desc)						\
	{ good bad, sizeof(good bad) - 1, PROXY_ERROR, sizeof(good), 0,	\
	    0, NULL, NULL, 0, 0, desc }
/* Not a header yet, nor wrong yet. */
#define MORE(raw, desc)							\
	{ raw, sizeof(raw) - 1, PROXY_INCOMPLETE, 0, 0, 0, NULL, NULL,	\
	    0, 0, desc }

#define REQ	"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
#define HELLO	"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"

#define X10	"xxxxxxxxxx"
#define X90	X10 X10 X10 X10 X10 X10 X10 X10 X10
#define F39	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
#define A45	"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
#define V4	"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"

/* v2: the signature, then addresses as the spec lays them out. */
#define SIG	"\r\n\r\n\0\r\nQUIT\n"
/* 192.0.2.1 -> 198.51.100.2, 56324 -> 443 */
#define A4	"\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\xdc\x04" "\x01\xbb"
/* 2001:db8::1 -> 2001:db8::2, 1234 -> 80 */
#define A6	"\x20\x01\x0d\xb8" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x01"	\
		"\x20\x01\x0d\xb8" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x02"	\
		"\x04\xd2" "\x00\x50"
#define Z12	"\0\0\0\0" "\0\0\0\0" "\0\0\0\0"
#define Z108	Z12 Z12 Z12 Z12 Z12 Z12 Z12 Z12 Z12
#define V2T4	SIG "\x21\x11\x00\x0c" A4
#define V2T6	SIG "\x21\x21\x00\x24" A6
#define V2LOC	SIG "\x20\x00\x00\x00"

#define S4	"192.0.2.1", 56324, "198.51.100.2", 443
#define S6	"2001:db8::1", 1234, "2001:db8::2", 80

static const struct row rows[] = {
	/* v1 TCP4 and TCP6 (spec 2.1) */
	PASS("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", 1,
	    "192.168.0.1", 56324, "192.168.0.11", 443, "v1 TCP4, the spec's"),
	PASS(V4, 1, S4, "v1 TCP4"),
	PASS("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", 1,
	    "255.255.255.255", 65535, "255.255.255.255", 65535,
	    "v1 TCP4 at its longest, 56 bytes"),
	PASS("PROXY TCP4 0.0.0.0 10.0.0.100 0 0\r\n", 1,
	    "0.0.0.0", 0, "10.0.0.100", 0, "v1 TCP4, zeros and ports 0"),
	PASS("PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n", 1, S6,
	    "v1 TCP6"),
	PASS("PROXY TCP6 2001:DB8::A ::1 1 65535\r\n", 1,
	    "2001:db8::a", 1, "::1", 65535, "v1 TCP6, uppercase hex"),
	PASS("PROXY TCP6 ::ffff:192.0.2.1 :: 9 10\r\n", 1,
	    "::ffff:192.0.2.1", 9, "::", 10,
	    "v1 TCP6, IPv4-mapped and unspecified"),
	PASS("PROXY TCP6 " F39 " " F39 " 65535 65535\r\n", 1,
	    F39, 65535, F39, 65535, "v1 TCP6 at the spec's longest, 104 bytes"),
	PASS("PROXY TCP6 " A45 " ::1 1 2\r\n", 1,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, "::1", 2,
	    "v1 TCP6, an address of 45 characters"),
	PASSB(V4, REQ, 1, S4, "v1 TCP4 then a request: only the line"),
	PASSB(V4, V4, 1, S4, "v1 TCP4 twice: only the first line"),
	PASSB(V4, HELLO, 1, S4, "v1 TCP4 then a TLS ClientHello"),

	/* v1 UNKNOWN */
	LOCAL("PROXY UNKNOWN\r\n", 1, "v1 UNKNOWN, short form"),
	LOCAL("PROXY UNKNOWN 192.0.2.1 198.51.100.2 1 2\r\n", 1,
	    "v1 UNKNOWN with addresses, ignored"),
	LOCAL("PROXY UNKNOWN \r\n", 1, "v1 UNKNOWN, space, nothing"),
	LOCAL("PROXY UNKNOWN ~!@ junk #$%\r\n", 1,
	    "v1 UNKNOWN with printable junk"),
	LOCAL("PROXY UNKNOWN " X90 "x\r\n", 1,
	    "v1 UNKNOWN line of exactly 107 bytes"),
	LOCALB("PROXY UNKNOWN\r\n", REQ, 1, "v1 UNKNOWN then a request"),

	/* v1 truncated: may still become a header */
	MORE("", "nothing yet"),
	MORE("P", "P"),
	MORE("PROXY", "PROXY"),
	MORE("PROXY ", "PROXY SP"),
	MORE("PROXY TCP", "PROXY TCP"),
	MORE("PROXY TCP4 192.0.2", "in the source address"),
	MORE("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443",
	    "up to the last port"),
	MORE("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r", "up to CR"),
	MORE("PROXY TCP6 ::1 ::1 65535", "in the ports"),
	MORE("PROXY UNKNOWN", "PROXY UNKNOWN"),
	MORE("PROXY UNKNOWN 1.2.3.4\r", "v1 UNKNOWN up to CR"),
	MORE("PROXY UNKNOWN " X90, "v1 UNKNOWN of 104 bytes, no CRLF yet"),

	/* v1: wrong from the first byte */
	FAIL("", REQ, "an HTTP request, refused on its first byte"),
	FAIL("", HELLO, "a TLS ClientHello, refused on its first byte"),
	FAIL("", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "lowercase proxy"),
	FAIL("", " PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "leading space"),
	FAIL("P", "OST / HTTP/1.1\r\n", "POST: refused at the O"),
	FAIL("PR", "I * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 preface"),
	FAIL("PROX", "y TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXy"),

	/* v1: the protocol */
	FAIL("PROXY", "TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "no space after PROXY"),
	FAIL("PROXY", "\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "tab after PROXY"),
	FAIL("PROXY ", " TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "two spaces after PROXY"),
	FAIL("PROXY", "\r\n", "PROXY alone"),
	FAIL("PROXY ", "\r\n", "PROXY SP alone"),
	FAIL("PROXY ", "tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "lowercase tcp4"),
	FAIL("PROXY ", "unknown\r\n", "lowercase unknown"),
	FAIL("PROXY TCP", "5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP5"),
	FAIL("PROXY TCP", " 1.2.3.4 5.6.7.8 1 2\r\n", "TCP without 4 or 6"),
	FAIL("PROXY TCP4", "4 1.2.3.4 5.6.7.8 1 2\r\n", "TCP44"),
	FAIL("PROXY U", "DP4 1.2.3.4 5.6.7.8 1 2\r\n", "UDP4"),
	FAIL("PROXY UNKNOWN", "X\r\n", "UNKNOWNX is no protocol"),
	FAIL("PROXY UNKNOWN", "\n", "UNKNOWN, LF only"),
	FAIL("PROXY UNKNOWN\r", "\r\n", "UNKNOWN, CR CR LF"),
	FAIL("PROXY UNKNOWN a", "\nb\r\n", "UNKNOWN, a bare LF inside"),
	FAIL("PROXY UNKNOWN a\r", "b\r\n", "UNKNOWN, a bare CR inside"),
	FAIL("PROXY UNKNOWN a", "\tb\r\n", "UNKNOWN, a tab inside"),
	FAIL("PROXY UNKNOWN a", "\0b\r\n", "UNKNOWN, a NUL inside"),
	FAIL("PROXY UNKNOWN a", "\xc3\xa9\r\n", "UNKNOWN, UTF-8 inside"),
	FAIL("PROXY UNKNOWN " X90 "xx", "\r\n",
	    "v1 UNKNOWN line of 108 bytes: the CR is byte 107"),
	FAIL("PROXY UNKNOWN " X90 "xx", "x\r\n",
	    "v1 line of 107 bytes with no CR at all"),
	FAIL("PROXY TCP6 " A45 " " A45 " 655", "35 65535\r\n",
	    "v1 TCP6 of valid but 45-character addresses: over 107 bytes"),

	/* v1: fields and spaces */
	FAIL("PROXY TCP4", "\r\n", "TCP4 without addresses"),
	FAIL("PROXY TCP4 ", " 1.2.3.4 5.6.7.8 1 2\r\n", "two spaces before src"),
	FAIL("PROXY TCP4 1.2.3.4", "\r\n", "TCP4 with the source only"),
	FAIL("PROXY TCP4 1.2.3.4 ", " 5.6.7.8 1 2\r\n",
	    "two spaces before dst"),
	FAIL("PROXY TCP4 1.2.3.4", "\t5.6.7.8 1 2\r\n", "tab before dst"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8", "\r\n", "no ports"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 ", " 1 2\r\n",
	    "two spaces before sport"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1", "\r\n", "no dport"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 ", " 2\r\n",
	    "two spaces before dport"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 ", "\r\n", "empty dport"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " \r\n", "space before CRLF"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " 3\r\n", "a fifth field"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "\n", "LF only"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "\r\n", "CR CR LF"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "GET / HTTP/1.1\r\n",
	    "CR alone"),

	/* v1: addresses, by inet_pton of the announced family */
	FAIL("PROXY TCP4 1.2.3.256", " 5.6.7.8 1 2\r\n", "octet 256"),
	FAIL("PROXY TCP4 1.2.3.04", " 5.6.7.8 1 2\r\n",
	    "octet with a leading zero"),
	FAIL("PROXY TCP4 010.0.0.1", " 5.6.7.8 1 2\r\n",
	    "first octet with a leading zero"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.00", " 1 2\r\n", "octet 00"),
	FAIL("PROXY TCP4 1.2.3", " 5.6.7.8 1 2\r\n", "three octets"),
	FAIL("PROXY TCP4 1.2.3.4.5", " 5.6.7.8 1 2\r\n", "five octets"),
	FAIL("PROXY TCP4 1..3.4", " 5.6.7.8 1 2\r\n", "empty octet"),
	FAIL("PROXY TCP4 1.2.3.4.", " 5.6.7.8 1 2\r\n", "trailing dot"),
	FAIL("PROXY TCP4 1.2", "\0.3.4 5.6.7.8 1 2\r\n", "NUL in an address"),
	FAIL("PROXY TCP4 255.255.255.255", "5 5.6.7.8 1 2\r\n",
	    "TCP4 address over 15 characters"),
	FAIL("PROXY TCP4 ", "::1 ::1 1 2\r\n", "TCP4 with IPv6 addresses"),
	FAIL("PROXY TCP4 1.2.3.4 ", "::1 1 2\r\n", "TCP4, IPv6 dst"),
	FAIL("PROXY TCP4 ", "a.b.c.d 5.6.7.8 1 2\r\n", "TCP4 host name"),
	FAIL("PROXY TCP6 1.2.3.4", " 5.6.7.8 1 2\r\n",
	    "TCP6 with IPv4 addresses"),
	FAIL("PROXY TCP6 :::1", " ::1 1 2\r\n", "TCP6 :::1"),
	FAIL("PROXY TCP6 1::2::3", " ::1 1 2\r\n", "TCP6 with two ::"),
	FAIL("PROXY TCP6 12345::1", " ::1 1 2\r\n", "TCP6 group of 5 digits"),
	FAIL("PROXY TCP6 1:2:3:4:5:6:7:8:9", " ::1 1 2\r\n",
	    "TCP6 of nine groups"),
	FAIL("PROXY TCP6 1:2:3:4:5:6:7", " ::1 1 2\r\n",
	    "TCP6 of seven groups"),
	FAIL("PROXY TCP6 fe80::", "g ::1 1 2\r\n", "TCP6 with a g"),
	FAIL("PROXY TCP6 fe80::1", "%eth0 ::1 1 2\r\n", "TCP6 with a zone"),
	FAIL("PROXY TCP6 ", "[::1] ::1 1 2\r\n", "TCP6 in brackets"),
	FAIL("PROXY TCP6 " A45, "f ::1 1 2\r\n",
	    "TCP6 address over 45 characters"),

	/* v1: ports, 0-65535, no leading zeros, digit by digit */
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 6553", "6 2\r\n", "sport 65536"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 6553", "6\r\n", "dport 65536"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 9999", "9 2\r\n", "sport 99999"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 10000", "0 2\r\n", "sport 100000"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "0\r\n", "dport 00"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 0", "80 2\r\n", "sport 080"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "443\r\n", "dport 0443"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 ", "-1 2\r\n", "sport -1"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 ", "+1 2\r\n", "sport +1"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 0", "x50 2\r\n", "sport 0x50"),
	FAIL("PROXY TCP4 1.2.3.4 5.6.7.8 1 ", "http\r\n", "dport http"),

	/* v2 (spec 2.2) */
	PASS(V2T4, 2, S4, "v2 PROXY TCP4"),
	PASS(V2T6, 2, S6, "v2 PROXY TCP6"),
	PASS(SIG "\x21\x11\x00\x14" A4 "\x01\x00\x02" "h2" "\x04\x00\x00", 2,
	    S4, "v2 TCP4 with ALPN and an empty NOOP TLV"),
	PASS(SIG "\x21\x21\x00\x32" A6 "\x02\x00\x0b" "example.com", 2, S6,
	    "v2 TCP6 with an AUTHORITY TLV"),
	PASS(SIG "\x21\x11\x00\x1b" A4 "\x20\x00\x0c" "\x01" "\0\0\0\0"
	    "\x21\x00\x04" "TLS1", 2, S4,
	    "v2 TCP4 with an SSL TLV holding a sub-TLV, not looked into"),
	PASSB(V2T4, REQ, 2, S4, "v2 TCP4 then a request: only the header"),
	PASSB(V2T4, HELLO, 2, S4, "v2 TCP4 then a TLS ClientHello"),
	PASSB(V2T6, V2T4, 2, S6, "v2 twice: only the first header"),
	LOCAL(V2LOC, 2, "v2 LOCAL, the health check"),
	LOCAL(SIG "\x20\x11\x00\x0c" A4, 2,
	    "v2 LOCAL with a TCP4 block: skipped"),
	LOCAL(SIG "\x20\x12\x00\x03" "abc", 2,
	    "v2 LOCAL: its family is ignored (spec), even DGRAM"),
	LOCAL(SIG "\x20\xff\x00\x00", 2,
	    "v2 LOCAL: its family is ignored, even an unknown one"),
	LOCAL(SIG "\x20\x00\x00\x03" "\x01\x00\x09", 2,
	    "v2 LOCAL: the block is skipped unread, whatever it holds"),
	LOCALB(V2LOC, REQ, 2, "v2 LOCAL then a request"),
	LOCAL(SIG "\x21\x00\x00\x00", 2, "v2 PROXY UNSPEC"),
	LOCAL(SIG "\x21\x00\x00\x04" "junk", 2,
	    "v2 PROXY UNSPEC with a block: skipped"),
	LOCAL(SIG "\x21\x31\x00\xd8" Z108 Z108, 2,
	    "v2 PROXY UNIX stream: kept local"),
	LOCAL(SIG "\x21\x31\x00\xdb" Z108 Z108 "\x04\x00\x00", 2,
	    "v2 PROXY UNIX stream with a TLV"),

	/* v2 truncated */
	MORE("\r", "CR"),
	MORE("\r\n\r\n\0", "into the signature's NUL"),
	MORE(SIG, "the signature"),
	MORE(SIG "\x21", "up to the command"),
	MORE(SIG "\x21\x11", "up to the family"),
	MORE(SIG "\x21\x11\x00", "half the length"),
	MORE(SIG "\x21\x11\x00\x0c", "the fixed 16 bytes"),
	MORE(SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\xdc\x04" "\x01", "a TCP4 block short of a byte"),
	MORE(SIG "\x21\x11\x00\x14" A4 "\x01", "a TLV's type"),
	MORE(SIG "\x21\x11\x00\x14" A4 "\x01\x00", "a TLV's type and half"),
	MORE(SIG "\x21\x11\x00\x14" A4 "\x01\x00\x02" "h",
	    "into a TLV's value"),
	MORE(SIG "\x20\x00\x00\x05" "abc", "a LOCAL block short of 2"),

	/* v2: the signature */
	FAIL("\r", "\r\n\r\n\0\r\nQUIT\n", "CR CR"),
	FAIL("\r\n", REQ, "an HTTP request after an empty line"),
	FAIL("\r\n\r\n", "\r\n" REQ, "three empty lines"),
	FAIL("\r\n\r\n", "\x01\r\nQUIT\n\x21\x11\x00\x0c" A4,
	    "signature with 01 for its NUL"),
	FAIL("\r\n\r\n\0\r\nQUI", "t\n\x21\x11\x00\x0c" A4,
	    "signature with QUIt"),
	FAIL("\r\n\r\n\0\r\nQUIT", "\r\x21\x11\x00\x0c" A4,
	    "signature ending in CR"),

	/* v2: version and command */
	FAIL(SIG, "\x11\x11\x00\x0c" A4, "version 1 in binary"),
	FAIL(SIG, "\x01\x11\x00\x0c" A4, "version 0"),
	FAIL(SIG, "\x31\x11\x00\x0c" A4, "version 3"),
	FAIL(SIG, "\xf1\x11\x00\x0c" A4, "version 15"),
	FAIL(SIG, "\x22\x11\x00\x0c" A4, "command 2"),
	FAIL(SIG, "\x2f\x11\x00\x0c" A4, "command 15"),

	/* v2: family and protocol, with the PROXY command */
	FAIL(SIG "\x21", "\x12\x00\x0c" A4, "UDP over IPv4"),
	FAIL(SIG "\x21", "\x22\x00\x24" A6, "UDP over IPv6"),
	FAIL(SIG "\x21", "\x32\x00\xd8" Z108 Z108, "UNIX datagram"),
	FAIL(SIG "\x21", "\x41\x00\x0c" A4, "family 4"),
	FAIL(SIG "\x21", "\x13\x00\x0c" A4, "protocol 3"),
	FAIL(SIG "\x21", "\x10\x00\x0c" A4, "IPv4 with protocol UNSPEC"),
	FAIL(SIG "\x21", "\x01\x00\x00", "UNSPEC with STREAM"),
	FAIL(SIG "\x21", "\xff\x00\x00", "family ff"),

	/* v2: the length */
	FAIL(SIG "\x21\x11\x00", "\x0b" A4, "TCP4 block of 11 bytes"),
	FAIL(SIG "\x21\x11\x00", "\x00" REQ, "TCP4 block of 0 bytes"),
	FAIL(SIG "\x21\x21\x00", "\x0c" A4, "TCP6 with a TCP4-sized block"),
	FAIL(SIG "\x21\x31\x00", "\x0c" A4, "UNIX with a TCP4-sized block"),
	FAIL(SIG "\x21\x11\x08", "\x01", "length 2049: over PROXY_V2_MAX"),
	FAIL(SIG "\x21\x11", "\x09\x00", "length 2304: its high byte says"),
	FAIL(SIG "\x21\x11", "\xff\xff", "length 65535"),
	FAIL(SIG "\x20\x00", "\x10\x00", "LOCAL of length 4096"),

	/* v2: TLVs must fit in the declared length */
	FAIL(SIG "\x21\x11\x00", "\x0e" A4 "\x01\x00",
	    "2 bytes after the addresses: no room for a TLV header"),
	FAIL(SIG "\x21\x11\x00", "\x0d" A4 "\x04",
	    "1 byte after the addresses"),
	FAIL(SIG "\x21\x11\x00\x11" A4 "\x01\x00", "\x03" "ab",
	    "TLV of 3 bytes with 2 left"),
	FAIL(SIG "\x21\x11\x00\x0f" A4 "\x04", "\xff\xff",
	    "TLV of 65535 bytes: its high byte says"),
	FAIL(SIG "\x21\x11\x00\x15" A4 "\x01\x00\x02" "h2" "\x04\x00",
	    "\x02" "x", "second TLV overruns"),
	FAIL(SIG "\x21\x11\x00\x16" A4 "\x01\x00\x02" "h2" "\x04\x00",
	    "\x00" "\x04\x00",
	    "an empty TLV leaves 2 bytes: no room for the next TLV header"),
	FAIL(SIG "\x21\x21\x00\x31" A6 "\x02\x00", "\x0b" "example.co",
	    "TCP6: an AUTHORITY TLV longer than the block"),
	FAIL(SIG "\x21\x31\x00\xdb" Z108 Z108 "\x04\x00", "\x01",
	    "UNIX: a TLV overruns"),
};
#define NROWS	(sizeof(rows) / sizeof(rows[0]))

/* Copies raw into a buffer of exactly len bytes and parses it. */
static int
parse_exact(const char *raw, size_t len, struct proxy_hdr *hdr)
{
	char	*buf;
	int	 rv;

	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(buf, raw, len);
	rv = proxy_parse(buf, len, hdr);
	free(buf);
	return rv;
}

/* What the first k bytes of r must give. */
static int
prefix_want(const struct row *r, size_t k)
{
	if (r->want == PROXY_ERROR)
		return k < r->at ? PROXY_INCOMPLETE : PROXY_ERROR;
	if (r->want == PROXY_INCOMPLETE || k < (size_t)r->want)
		return PROXY_INCOMPLETE;
	return r->want;
}

/* The address and port in ss as text; NULL when they disagree with len. */
static const char *
ntop(const struct sockaddr_storage *ss, socklen_t len, char *buf,
    size_t size, int *port)
{
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;

	*port = -1;
	if (ss->ss_family == AF_INET && len == sizeof(sin)) {
		memcpy(&sin, ss, sizeof(sin));
		*port = ntohs(sin.sin_port);
		return inet_ntop(AF_INET, &sin.sin_addr, buf, size);
	}
	if (ss->ss_family == AF_INET6 && len == sizeof(sin6)) {
		memcpy(&sin6, ss, sizeof(sin6));
		if (sin6.sin6_flowinfo != 0 || sin6.sin6_scope_id != 0)
			return NULL;
		*port = ntohs(sin6.sin6_port);
		return inet_ntop(AF_INET6, &sin6.sin6_addr, buf, size);
	}
	return NULL;
}

static void
check_hdr(const struct row *r, const struct proxy_hdr *hdr)
{
	char	a[INET6_ADDRSTRLEN];
	int	port;

	is_int(hdr->version, r->version, "%s: version", r->desc);
	is_int(hdr->local, r->local, "%s: local", r->desc);
	if (r->local) {
		ok(hdr->srclen == 0 && hdr->dstlen == 0 &&
		    hdr->src.ss_family == AF_UNSPEC &&
		    hdr->dst.ss_family == AF_UNSPEC,
		    "%s: no addresses", r->desc);
		return;
	}
	is_str(ntop(&hdr->src, hdr->srclen, a, sizeof(a), &port), r->src,
	    "%s: source address", r->desc);
	is_int(port, r->sport, "%s: source port", r->desc);
	is_str(ntop(&hdr->dst, hdr->dstlen, a, sizeof(a), &port), r->dst,
	    "%s: destination address", r->desc);
	is_int(port, r->dport, "%s: destination port", r->desc);
}

static void
test_table(void)
{
	const struct row	*r;
	struct proxy_hdr	 hdr;
	size_t			 i, k;
	int			 rv = 0;

	for (i = 0; i < NROWS; i++) {
		r = &rows[i];
		if (r->want == PROXY_ERROR && (r->at == 0 || r->at > r->len))
			abort();	/* a FAIL row without its bad byte */
		is_int(parse_exact(r->raw, r->len, &hdr), r->want, "%s",
		    r->desc);
		if (r->want > 0)
			check_hdr(r, &hdr);
		for (k = 0; k <= r->len; k++)
			if ((rv = parse_exact(r->raw, k, &hdr)) !=
			    prefix_want(r, k))
				break;
		if (!ok(k > r->len, "%s: byte by byte", r->desc))
			diag("prefix of %zu bytes returned %d, not %d", k,
			    rv, prefix_want(r, k));
	}
}

/* The first byte decides whether a header can follow at all. */
static void
test_first_byte(void)
{
	struct proxy_hdr	hdr;
	char			c;
	int			i, rv, bad = 0;

	for (i = 0; i < 256; i++) {
		c = (char)i;
		rv = parse_exact(&c, 1, &hdr);
		if (rv != (c == 'P' || c == '\r' ? PROXY_INCOMPLETE :
		    PROXY_ERROR)) {
			diag("first byte 0x%02x returned %d", i, rv);
			bad++;
		}
	}
	ok(bad == 0, "only P and CR may start a header");
}

/* Every prefix of buf shorter than want is incomplete, then want. */
static void
prefixes(const char *buf, size_t len, int want, const char *desc)
{
	struct proxy_hdr	hdr;
	size_t			k;
	int			rv = 0;

	for (k = 0; k < len; k++) {
		rv = parse_exact(buf, k, &hdr);
		if (rv != (k < (size_t)want ? PROXY_INCOMPLETE : want))
			break;
	}
	if (!ok(k == len, "%s: every prefix", desc))
		diag("prefix of %zu bytes returned %d", k, rv);
	is_int(parse_exact(buf, len, &hdr), want, "%s", desc);
}

/* v2 headers at PROXY_V2_MAX and just past it, built here. */
static void
test_limits(void)
{
	static const char	 head[] = SIG "\x21\x11\x00\x00" A4;
	struct proxy_hdr	 hdr;
	char			 buf[PROXY_V2_MAX + 64];
	size_t			 blen, n, i;

	/* addresses, then one NOOP TLV filling the rest */
	blen = PROXY_V2_MAX - 16;
	memset(buf, 'v', sizeof(buf));
	memcpy(buf, head, sizeof(head) - 1);
	buf[14] = blen >> 8;
	buf[15] = blen & 0xff;
	n = sizeof(head) - 1;
	buf[n] = 0x04;
	buf[n + 1] = (blen - 12 - 3) >> 8;
	buf[n + 2] = (blen - 12 - 3) & 0xff;
	prefixes(buf, PROXY_V2_MAX + 10, PROXY_V2_MAX,
	    "v2 of PROXY_V2_MAX bytes, one TLV");
	ok(parse_exact(buf, PROXY_V2_MAX, &hdr) == PROXY_V2_MAX &&
	    hdr.version == 2 && hdr.srclen == sizeof(struct sockaddr_in),
	    "v2 of PROXY_V2_MAX bytes: addresses");

	/* one byte more is refused on the length alone */
	blen++;
	buf[14] = blen >> 8;
	buf[15] = blen & 0xff;
	is_int(parse_exact(buf, 16, &hdr), PROXY_ERROR,
	    "v2 of PROXY_V2_MAX + 1 bytes: refused at byte 16");
	is_int(parse_exact(buf, 15, &hdr), PROXY_INCOMPLETE,
	    "v2 of PROXY_V2_MAX + 1 bytes: not at byte 15");

	/* as many empty TLVs as fit: the walk over them is resumable */
	n = sizeof(head) - 1;
	for (i = 0; n + 3 <= PROXY_V2_MAX; i++, n += 3) {
		buf[n] = 0x04;
		buf[n + 1] = buf[n + 2] = 0;
	}
	blen = n - 16;
	buf[14] = blen >> 8;
	buf[15] = blen & 0xff;
	prefixes(buf, n, (int)n, "v2 holding as many empty TLVs as fit");
	diag("%zu TLVs in %zu bytes", i, n);

	/* a LOCAL block at the limit is skipped whole */
	memcpy(buf, V2LOC, sizeof(V2LOC) - 1);
	buf[14] = (PROXY_V2_MAX - 16) >> 8;
	buf[15] = (PROXY_V2_MAX - 16) & 0xff;
	prefixes(buf, PROXY_V2_MAX + 1, PROXY_V2_MAX,
	    "v2 LOCAL of PROXY_V2_MAX bytes");
	ok(parse_exact(buf, PROXY_V2_MAX, &hdr) == PROXY_V2_MAX &&
	    hdr.local == 1, "v2 LOCAL of PROXY_V2_MAX bytes: local");
}

/*
 * Each header's result does not depend on what follows it, whatever
 * that byte is: conn.c hands over the request with the header.
 */
static void
test_trailing(void)
{
	static const char	 v1[] = V4, v2[] = V2T6;
	struct proxy_hdr	 hdr;
	char			 buf[128];
	int			 i, bad = 0;

	for (i = 0; i < 256; i++) {
		memcpy(buf, v1, sizeof(v1) - 1);
		buf[sizeof(v1) - 1] = (char)i;
		if (parse_exact(buf, sizeof(v1), &hdr) != sizeof(v1) - 1)
			bad++;
		memcpy(buf, v2, sizeof(v2) - 1);
		buf[sizeof(v2) - 1] = (char)i;
		if (parse_exact(buf, sizeof(v2), &hdr) != sizeof(v2) - 1)
			bad++;
	}
	ok(bad == 0, "any byte after a header is left alone");
}

int
main(void)
{
	test_table();
	test_first_byte();
	test_limits();
	test_trailing();
	return done_testing();
}
