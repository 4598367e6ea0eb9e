/*
 * Unit tests for common/conf.c, through conf_parse() on in-memory text:
 * defaults, every directive with valid values, path resolution, and every
 * error with its exact "file:line: " prefix.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"

#define NAME	"/etc/astleyd/astleyd.conf"
#define CERTS	"tls_certificate cert.pem\ntls_certificate_key key.pem\n"

static struct conf	conf, conf2;
static char		err[1024];

static int
parse_len(const char *name, const char *text, size_t len, struct conf *c)
{
	memset(err, 0, sizeof(err));
	return conf_parse(name, text, len, c, err, sizeof(err));
}

static int
parse(const char *text)
{
	return parse_len(NAME, text, strlen(text), &conf);
}

/* One test: the text parses; on failure the error is shown. */
static int
parse_ok(const char *text, const char *desc)
{
	int	rv;

	rv = parse(text);
	if (!ok(rv == 0, "%s: parses", desc)) {
		diag("conf_parse returned %d", rv);
		diag("error: %s", err);
	}
	return rv == 0;
}

/*
 * One test: the text is refused with -1, the message starts with the
 * exact prefix (name, line and usually the directive) and mentions
 * what is wrong.
 */
static void
parse_err_len(const char *text, size_t len, const char *prefix,
    const char *mention, const char *desc)
{
	int	rv, pass;

	rv = parse_len(NAME, text, len, &conf);
	pass = rv == -1 && strncmp(err, prefix, strlen(prefix)) == 0 &&
	    (mention == NULL || strstr(err + strlen(prefix), mention) != NULL);
	if (!ok(pass, "%s: error \"%s...\"", desc, prefix)) {
		diag("conf_parse returned %d (want -1)", rv);
		diag("     error: %s", err);
		diag("want start: %s", prefix);
		if (mention != NULL)
			diag("   mention: %s", mention);
	}
}

static void
parse_err(const char *text, const char *prefix, const char *mention,
    const char *desc)
{
	parse_err_len(text, strlen(text), prefix, mention, desc);
}

/* A listener as one comparable line. */
static const char *
listen_str(const struct conf_listen *l)
{
	static char			 out[256];
	char				 addr[INET6_ADDRSTRLEN];
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	unsigned int			 port = 0;

	strlcpy(addr, "?", sizeof(addr));
	if (l->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)&l->ss;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		port = ntohs(sin->sin_port);
	} else if (l->ss.ss_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)&l->ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		port = ntohs(sin6->sin6_port);
	}
	snprintf(out, sizeof(out), "%s %s %s port %u any=%d sslen=%u name=%s",
	    l->tls ? "tls" : "plain",
	    l->ss.ss_family == AF_INET ? "inet" :
	    l->ss.ss_family == AF_INET6 ? "inet6" : "unspec",
	    addr, port, l->any, (unsigned int)l->sslen, l->name);
	return out;
}

static int
auto_workers(void)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > CONF_MAX_WORKERS ? CONF_MAX_WORKERS : (int)n;
}

static void
test_defaults(void)
{
	struct passwd	*pw;
	struct group	*gr;

	if (!parse_ok(CERTS, "certificate and key only"))
		return;
	is_str(conf.path, NAME, "path is the name given");
	is_int(conf.nlisten, 2, "default: two listeners");
	is_str(listen_str(&conf.listen[0]),
	    "plain inet6 :: port 1337 any=1 sslen=28 name=*:1337",
	    "default listen is *:1337 (dual-stack any)");
	is_str(listen_str(&conf.listen[1]),
	    "tls inet6 :: port 1972 any=1 sslen=28 name=*:1972",
	    "default listen_tls is *:1972 (dual-stack any)");
	ok(conf.workers >= 1, "default workers %d >= 1", conf.workers);
	is_int(conf.workers, auto_workers(),
	    "default workers is the number of CPUs");
	is_str(conf.user, "nobody", "default user nobody");
	is_str(conf.group, "nogroup", "default group nogroup");
	pw = getpwnam("nobody");
	gr = getgrnam("nogroup");
	is_int(conf.uid, pw ? (long long)pw->pw_uid : -1, "uid of nobody");
	is_int(conf.gid, gr ? (long long)gr->gr_gid : -1, "gid of nogroup");
	is_str(conf.pidfile, "/run/astleyd.pid", "default pidfile");
	is_int(conf.header_timeout, 10000, "default header_timeout 10s");
	is_int(conf.handshake_timeout, 10000, "default handshake_timeout 10s");
	is_int(conf.keepalive_timeout, 5000, "default keepalive_timeout 5s");
	is_int(conf.send_timeout, 10000, "default send_timeout 10s");
	is_int(conf.shutdown_timeout, 10000, "default shutdown_timeout 10s");
	is_int(conf.keepalive_requests, 1000,
	    "default keepalive_requests 1000");
	is_int(conf.max_uri_size, 8192, "default max_uri_size 8k");
	is_int(conf.max_header_size, 16384, "default max_header_size 16k");
	is_int(conf.max_body_size, 65536, "default max_body_size 64k");

	/* A second parse into the same struct starts from the defaults. */
	if (parse_ok("workers 3\nlisten 8080\nlisten_tls 8443\n"
	    "header_timeout 1s\n" CERTS, "a non-default config")) {
		parse_ok(CERTS, "then the defaults again");
		is_int(conf.workers, auto_workers(),
		    "re-parse resets workers");
		is_int(conf.nlisten, 2, "re-parse resets the listeners");
		is_int(conf.header_timeout, 10000,
		    "re-parse resets header_timeout");
	}
}

/* Each row: a config line, the field it sets, and the value expected. */
enum field { F_HEADER, F_HANDSHAKE, F_KEEPALIVE, F_SEND, F_SHUTDOWN,
    F_REQUESTS, F_URI, F_HEADERSZ, F_BODY, F_WORKERS };

static const struct {
	const char	*line;
	enum field	 field;
	long long	 want;
} values[] = {
	{ "header_timeout 10", F_HEADER, 10000 },
	{ "header_timeout 10s", F_HEADER, 10000 },
	{ "header_timeout 500ms", F_HEADER, 500 },
	{ "header_timeout 1m", F_HEADER, 60000 },
	{ "header_timeout 1h", F_HEADER, 3600000 },
	{ "header_timeout 1ms", F_HEADER, 1 },
	{ "handshake_timeout 3", F_HANDSHAKE, 3000 },
	{ "handshake_timeout 2500ms", F_HANDSHAKE, 2500 },
	{ "handshake_timeout 2m", F_HANDSHAKE, 120000 },
	{ "keepalive_timeout 0", F_KEEPALIVE, 0 },
	{ "keepalive_timeout 15s", F_KEEPALIVE, 15000 },
	{ "keepalive_timeout 750ms", F_KEEPALIVE, 750 },
	{ "send_timeout 30", F_SEND, 30000 },
	{ "send_timeout 1m", F_SEND, 60000 },
	{ "shutdown_timeout 0", F_SHUTDOWN, 0 },
	{ "shutdown_timeout 20s", F_SHUTDOWN, 20000 },
	{ "keepalive_requests 1", F_REQUESTS, 1 },
	{ "keepalive_requests 100", F_REQUESTS, 100 },
	{ "keepalive_requests 1000000", F_REQUESTS, 1000000 },
	{ "max_uri_size 8192", F_URI, 8192 },
	{ "max_uri_size 8k", F_URI, 8192 },
	{ "max_uri_size 1m", F_URI, 1048576 },
	{ "max_uri_size 256", F_URI, 256 },
	{ "max_header_size 16k", F_HEADERSZ, 16384 },
	{ "max_header_size 32K", F_HEADERSZ, 32768 },
	{ "max_header_size 1M", F_HEADERSZ, 1048576 },
	{ "max_body_size 0", F_BODY, 0 },
	{ "max_body_size 8192", F_BODY, 8192 },
	{ "max_body_size 1m", F_BODY, 1048576 },
	{ "max_body_size 1024m", F_BODY, 1073741824LL },
	{ "workers 3", F_WORKERS, 3 },
	{ "workers 1", F_WORKERS, 1 },
	{ "workers 256", F_WORKERS, 256 },
};

static long long
field_value(enum field f)
{
	switch (f) {
	case F_HEADER:
		return conf.header_timeout;
	case F_HANDSHAKE:
		return conf.handshake_timeout;
	case F_KEEPALIVE:
		return conf.keepalive_timeout;
	case F_SEND:
		return conf.send_timeout;
	case F_SHUTDOWN:
		return conf.shutdown_timeout;
	case F_REQUESTS:
		return conf.keepalive_requests;
	case F_URI:
		return conf.max_uri_size;
	case F_HEADERSZ:
		return conf.max_header_size;
	case F_BODY:
		return conf.max_body_size;
	case F_WORKERS:
		return conf.workers;
	}
	return -1;
}

static void
test_values(void)
{
	char	text[512];
	size_t	i;
	int	rv;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(text, sizeof(text), CERTS "%s\n", values[i].line);
		rv = parse(text);
		if (rv != 0) {
			ok(0, "\"%s\" sets %lld", values[i].line,
			    values[i].want);
			diag("error: %s", err);
			continue;
		}
		is_int(field_value(values[i].field), values[i].want,
		    "\"%s\" sets %lld", values[i].line, values[i].want);
	}

	if (parse_ok(CERTS "workers auto\n", "workers auto"))
		is_int(conf.workers, auto_workers(),
		    "workers auto is the number of CPUs");
	if (parse_ok(CERTS "user nobody\ngroup nogroup\n", "user and group"))
		ok(strcmp(conf.user, "nobody") == 0 &&
		    strcmp(conf.group, "nogroup") == 0,
		    "user nobody, group nogroup");
}

static void
test_listen(void)
{
	static const struct {
		const char	*line;
		const char	*want;
	} forms[] = {
		{ "listen *:1337",
		    "plain inet6 :: port 1337 any=1 sslen=28 name=*:1337" },
		{ "listen [::]:1337",
		    "plain inet6 :: port 1337 any=0 sslen=28 name=[::]:1337" },
		{ "listen [::1]:8443",
		    "plain inet6 ::1 port 8443 any=0 sslen=28 "
		    "name=[::1]:8443" },
		{ "listen 127.0.0.1:8080",
		    "plain inet 127.0.0.1 port 8080 any=0 sslen=16 "
		    "name=127.0.0.1:8080" },
		{ "listen 8080",
		    "plain inet6 :: port 8080 any=1 sslen=28 name=8080" },
		{ "listen 0.0.0.0:1",
		    "plain inet 0.0.0.0 port 1 any=0 sslen=16 "
		    "name=0.0.0.0:1" },
		{ "listen [fe80::1:2]:65535",
		    "plain inet6 fe80::1:2 port 65535 any=0 sslen=28 "
		    "name=[fe80::1:2]:65535" },
		{ "listen_tls *:1972",
		    "tls inet6 :: port 1972 any=1 sslen=28 name=*:1972" },
		{ "listen_tls [::1]:8443",
		    "tls inet6 ::1 port 8443 any=0 sslen=28 name=[::1]:8443" },
		{ "listen_tls 127.0.0.1:8443",
		    "tls inet 127.0.0.1 port 8443 any=0 sslen=16 "
		    "name=127.0.0.1:8443" },
		{ "listen_tls 443",
		    "tls inet6 :: port 443 any=1 sslen=28 name=443" },
	};
	char	text[512];
	size_t	i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(text, sizeof(text), CERTS "%s\n", forms[i].line);
		if (parse(text) != 0) {
			ok(0, "\"%s\"", forms[i].line);
			diag("error: %s", err);
			continue;
		}
		is_str(listen_str(&conf.listen[0]), forms[i].want, "\"%s\"",
		    forms[i].line);
	}

	/* Giving one kind replaces only its own default. */
	if (parse_ok(CERTS "listen_tls 127.0.0.1:8443\n", "only listen_tls")) {
		is_int(conf.nlisten, 2, "listen_tls alone: two listeners");
		is_str(listen_str(&conf.listen[1]),
		    "plain inet6 :: port 1337 any=1 sslen=28 name=*:1337",
		    "listen_tls alone keeps the default listen");
	}
	if (parse_ok(CERTS "listen 127.0.0.1:8080\n", "only listen")) {
		is_int(conf.nlisten, 2, "listen alone: two listeners");
		is_str(listen_str(&conf.listen[1]),
		    "tls inet6 :: port 1972 any=1 sslen=28 name=*:1972",
		    "listen alone keeps the default listen_tls");
	}
	if (parse_ok(CERTS "listen 127.0.0.1:80\nlisten [::1]:80\n"
	    "listen 8080\nlisten_tls 127.0.0.1:443\nlisten_tls [::1]:443\n",
	    "repeated listen and listen_tls")) {
		is_int(conf.nlisten, 5, "five listeners, no defaults added");
		is_str(listen_str(&conf.listen[2]),
		    "plain inet6 :: port 8080 any=1 sslen=28 name=8080",
		    "third listener in file order");
		is_str(listen_str(&conf.listen[4]),
		    "tls inet6 ::1 port 443 any=0 sslen=28 name=[::1]:443",
		    "fifth listener in file order");
	}
}

static void
test_paths(void)
{
	if (parse_ok(CERTS "pidfile run/astleyd.pid\n", "relative paths")) {
		is_str(conf.tls_certificate, "/etc/astleyd/cert.pem",
		    "relative tls_certificate resolved against the "
		    "config's directory");
		is_str(conf.tls_certificate_key, "/etc/astleyd/key.pem",
		    "relative tls_certificate_key resolved");
		is_str(conf.pidfile, "/etc/astleyd/run/astleyd.pid",
		    "relative pidfile resolved");
	}
	if (parse_ok("tls_certificate /srv/tls/chain.pem\n"
	    "tls_certificate_key /srv/tls/key.pem\npidfile /tmp/a.pid\n",
	    "absolute paths")) {
		is_str(conf.tls_certificate, "/srv/tls/chain.pem",
		    "absolute tls_certificate kept");
		is_str(conf.tls_certificate_key, "/srv/tls/key.pem",
		    "absolute tls_certificate_key kept");
		is_str(conf.pidfile, "/tmp/a.pid", "absolute pidfile kept");
	}
	if (parse_len("conf/astleyd.conf", CERTS, strlen(CERTS), &conf) == 0)
		is_str(conf.tls_certificate, "conf/cert.pem",
		    "relative config name: paths relative to its directory");
	else
		ok(0, "relative config name parses: %s", err);
	if (parse_len("astleyd.conf", CERTS, strlen(CERTS), &conf) == 0)
		is_str(conf.tls_certificate_key, "./key.pem",
		    "config name without a directory: paths under .");
	else
		ok(0, "config name without a directory parses: %s", err);
}

static void
test_syntax(void)
{
	static const char	crlf[] = "# comment\r\n\r\nworkers 4\r\n"
	    "tls_certificate c.pem\r\ntls_certificate_key k.pem\r\n";
	static const char	noeol[] = CERTS "workers 6";

	if (parse_ok("# astleyd.conf\n\n   \n\t\n#workers 9\n" CERTS
	    "  workers\t3   # three workers\n"
	    "keepalive_requests 7#no space before the comment\n"
	    "\t# indented comment\n", "comments and blank lines")) {
		is_int(conf.workers, 3, "value before a trailing comment");
		is_int(conf.keepalive_requests, 7,
		    "value directly followed by #");
	}
	if (parse_ok(crlf, "CRLF line ends")) {
		is_int(conf.workers, 4, "CRLF: workers 4");
		is_str(conf.tls_certificate, "/etc/astleyd/c.pem",
		    "CRLF: no CR in the path");
	}
	if (parse_ok(noeol, "no newline at the end"))
		is_int(conf.workers, 6, "last line without a newline");
}

static void
test_errors(void)
{
	char	big[6000];
	char	text[2048];
	size_t	n;
	int	i;

	parse_err("", NAME ": tls_certificate ", NULL,
	    "empty file: tls_certificate required");
	parse_err("tls_certificate_key key.pem\n", NAME ": tls_certificate ",
	    NULL, "missing tls_certificate, named, no line");
	parse_err("tls_certificate cert.pem\n", NAME ": tls_certificate_key ",
	    NULL, "missing tls_certificate_key, named, no line");

	parse_err(CERTS "listne *:80\n", NAME ":3: ", "listne",
	    "unknown directive");
	parse_err("# c\n\n# c\n" CERTS "bogus x\n", NAME ":6: ", "bogus",
	    "unknown directive after comments: line counted");
	parse_err(CERTS "Workers 3\n", NAME ":3: ", "Workers",
	    "directive names are case-sensitive");
	parse_err("workers\n" CERTS, NAME ":1: workers: ", "missing",
	    "missing value");
	parse_err(CERTS "user   \t\n", NAME ":3: user: ", "missing",
	    "missing value, trailing blanks");
	parse_err(CERTS "workers 1 2\n", NAME ":3: workers: ", "one value",
	    "two values");
	parse_err(CERTS "pidfile a b\n", NAME ":3: pidfile: ", "one value",
	    "two values for a path");

	parse_err("workers 1\n" CERTS "workers 2\n", NAME ":4: workers: ",
	    "line 1", "duplicate workers, names the first line");
	parse_err(CERTS "tls_certificate other.pem\n",
	    NAME ":3: tls_certificate: ", "duplicate",
	    "duplicate tls_certificate");
	parse_err(CERTS "user nobody\nuser nobody\n", NAME ":4: user: ",
	    "duplicate", "duplicate user");
	parse_err(CERTS "header_timeout 1s\nheader_timeout 2s\n",
	    NAME ":4: header_timeout: ", "duplicate",
	    "duplicate header_timeout");
	parse_err(CERTS "max_body_size 1k\nmax_body_size 1k\n",
	    NAME ":4: max_body_size: ", "duplicate",
	    "duplicate max_body_size");

	parse_err(CERTS "listen *:80\nlisten [::]:80\n", NAME ":4: listen: ",
	    "[::]:80", "duplicate listen address (* and ::)");
	parse_err(CERTS "listen 8080\nlisten *:8080\n", NAME ":4: listen: ",
	    "*:8080", "duplicate listen address (bare port and *)");
	parse_err(CERTS "listen 127.0.0.1:80\nlisten_tls 127.0.0.1:80\n",
	    NAME ":4: listen_tls: ", "127.0.0.1:80",
	    "same address for listen and listen_tls");
	parse_err(CERTS "listen [::1]:443\nlisten [0:0::1]:443\n",
	    NAME ":4: listen: ", "[0:0::1]:443",
	    "duplicate IPv6 address spelled differently");
	n = strlcpy(text, CERTS, sizeof(text));
	for (i = 1; i <= CONF_MAX_LISTEN + 1; i++)
		n += snprintf(text + n, sizeof(text) - n, "listen %d\n", i);
	parse_err(text, NAME ":19: ", "listen",
	    "17th listen address: too many");

	parse_err(CERTS "listen *:0\n", NAME ":3: listen: ", "0",
	    "port 0");
	parse_err(CERTS "listen 0\n", NAME ":3: listen: ", "0",
	    "bare port 0");
	parse_err(CERTS "listen_tls [::1]:0\n", NAME ":3: listen_tls: ",
	    "0", "listen_tls port 0");
	parse_err(CERTS "listen 127.0.0.1:65536\n", NAME ":3: listen: ",
	    "65536", "port 65536");
	parse_err(CERTS "listen *:http\n", NAME ":3: listen: ", "http",
	    "port name");
	parse_err(CERTS "listen *:\n", NAME ":3: listen: ", "port",
	    "empty port");
	parse_err(CERTS "listen *:-1\n", NAME ":3: listen: ", "-1",
	    "negative port");
	parse_err(CERTS "listen 1.2.3:80\n", NAME ":3: listen: ", "1.2.3:80",
	    "bad IPv4 address");
	parse_err(CERTS "listen 256.1.1.1:80\n", NAME ":3: listen: ",
	    "256.1.1.1:80", "IPv4 octet out of range");
	parse_err(CERTS "listen localhost:80\n", NAME ":3: listen: ",
	    "localhost:80", "host names are not resolved");
	parse_err(CERTS "listen ::1:80\n", NAME ":3: listen: ", "::1:80",
	    "IPv6 without brackets");
	parse_err(CERTS "listen [::1]8080\n", NAME ":3: listen: ",
	    "[::1]8080", "bracket without colon");
	parse_err(CERTS "listen [::g]:80\n", NAME ":3: listen: ", "[::g]:80",
	    "bad IPv6 address");
	parse_err(CERTS "listen [127.0.0.1]:80\n", NAME ":3: listen: ",
	    "[127.0.0.1]:80", "IPv4 in brackets");
	parse_err(CERTS "listen :80\n", NAME ":3: listen: ", ":80",
	    "empty host");

	parse_err(CERTS "workers 0\n", NAME ":3: workers: ", "\"0\"",
	    "workers 0");
	parse_err(CERTS "workers 257\n", NAME ":3: workers: ", "\"257\"",
	    "workers 257");
	parse_err(CERTS "workers abc\n", NAME ":3: workers: ", "\"abc\"",
	    "workers abc");
	parse_err(CERTS "workers -1\n", NAME ":3: workers: ", "\"-1\"",
	    "workers -1");
	parse_err(CERTS "workers 2x\n", NAME ":3: workers: ", "\"2x\"",
	    "workers 2x");

	parse_err(CERTS "header_timeout 10x\n", NAME ":3: header_timeout: ",
	    "10x", "bad duration unit");
	parse_err(CERTS "keepalive_timeout 5sec\n",
	    NAME ":3: keepalive_timeout: ", "5sec", "duration unit sec");
	parse_err(CERTS "send_timeout 1.5s\n", NAME ":3: send_timeout: ",
	    "1.5s", "fractional duration");
	parse_err(CERTS "handshake_timeout s\n",
	    NAME ":3: handshake_timeout: ", "\"s\"", "unit without a number");
	parse_err(CERTS "header_timeout -1\n", NAME ":3: header_timeout: ",
	    "-1", "negative duration");
	parse_err(CERTS "header_timeout 0\n", NAME ":3: header_timeout: ",
	    "\"0\"", "header_timeout 0 (below 1 ms)");
	parse_err(CERTS "send_timeout 0ms\n", NAME ":3: send_timeout: ",
	    "\"0ms\"", "send_timeout 0ms");
	parse_err(CERTS "header_timeout 3601s\n", NAME ":3: header_timeout: ",
	    "3601s", "duration above one hour");
	parse_err(CERTS "header_timeout 2h\n", NAME ":3: header_timeout: ",
	    "2h", "2h above one hour");
	parse_err(CERTS "header_timeout 99999999999999999999s\n",
	    NAME ":3: header_timeout: ", "99999999999999999999s",
	    "duration overflowing 64 bits");
	parse_err(CERTS "max_uri_size 8kb\n", NAME ":3: max_uri_size: ",
	    "8kb", "bad size unit");
	parse_err(CERTS "max_uri_size 255\n", NAME ":3: max_uri_size: ",
	    "255", "max_uri_size below 256");
	parse_err(CERTS "max_uri_size 2m\n", NAME ":3: max_uri_size: ",
	    "2m", "max_uri_size above 1m");
	parse_err(CERTS "max_header_size 0\n", NAME ":3: max_header_size: ",
	    "\"0\"", "max_header_size 0");
	parse_err(CERTS "max_body_size 1025m\n", NAME ":3: max_body_size: ",
	    "1025m", "max_body_size above 1g");
	parse_err(CERTS "keepalive_requests 0\n",
	    NAME ":3: keepalive_requests: ", "\"0\"", "keepalive_requests 0");
	parse_err(CERTS "keepalive_requests 1000001\n",
	    NAME ":3: keepalive_requests: ", "1000001",
	    "keepalive_requests above 1000000");

	parse_err("workers 2\nuser astleyd-no-such-user\n" CERTS,
	    NAME ":2: ", "astleyd-no-such-user",
	    "unknown user: line of the user directive");
	parse_err(CERTS "\n\nuser root\n", NAME ":5: ", "root",
	    "user root refused");
	parse_err(CERTS "group astleyd-no-such-group\n", NAME ":3: ",
	    "astleyd-no-such-group", "unknown group: line of the group "
	    "directive");
	parse_err("group root\n" CERTS, NAME ":1: ", "root",
	    "group root refused");

	parse_err_len(CERTS "workers 1\0\n", sizeof(CERTS "workers 1\0\n") - 1,
	    NAME ":3: ", NULL, "NUL byte in a line");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "pidfile ", 8);
	parse_err(big, NAME ":1: ", NULL, "line of 6000 bytes");

	/* A short error buffer is truncated, not overrun. */
	memset(err, 'X', sizeof(err));
	i = conf_parse(NAME, "bogus x\n", 8, &conf, err, 10);
	ok(i == -1 && memchr(err, '\0', 10) != NULL &&
	    strncmp(err, NAME, strlen(err)) == 0 && err[10] == 'X',
	    "error truncated to a 10-byte buffer");
}

static void
test_listen_equal(void)
{
	static const struct {
		const char	*a, *b;
		int		 equal;
	} pairs[] = {
		{ "listen *:1337", "listen *:1337", 1 },
		{ "listen 1337", "listen *:1337", 1 },
		{ "listen [::1]:8443", "listen [0:0:0:0:0:0:0:1]:8443", 1 },
		{ "listen 127.0.0.1:80", "listen 127.0.0.1:80", 1 },
		{ "listen_tls [::1]:443", "listen_tls [::1]:443", 1 },
		{ "listen *:1337", "listen [::]:1337", 0 },
		{ "listen *:1337", "listen *:1338", 0 },
		{ "listen *:1337", "listen_tls *:1337\nlisten 80", 0 },
		{ "listen 127.0.0.1:80", "listen 127.0.0.2:80", 0 },
		{ "listen 127.0.0.1:80", "listen [::ffff:127.0.0.1]:80", 0 },
		{ "listen [::1]:80", "listen [::2]:80", 0 },
	};
	char	text[256];
	size_t	i;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		snprintf(text, sizeof(text), CERTS "%s\n", pairs[i].a);
		if (parse_len(NAME, text, strlen(text), &conf) != 0) {
			ok(0, "conf_listen_equal: %s: %s", pairs[i].a, err);
			continue;
		}
		snprintf(text, sizeof(text), CERTS "%s\n", pairs[i].b);
		if (parse_len(NAME, text, strlen(text), &conf2) != 0) {
			ok(0, "conf_listen_equal: %s: %s", pairs[i].b, err);
			continue;
		}
		is_int(conf_listen_equal(&conf.listen[0],
		    &conf2.listen[0]) != 0, pairs[i].equal,
		    "conf_listen_equal(\"%s\", \"%s\") is %s", pairs[i].a,
		    pairs[i].b, pairs[i].equal ? "true" : "false");
	}
	is_int(conf_listen_equal(&conf.listen[1], &conf.listen[1]) != 0, 1,
	    "conf_listen_equal(x, x) is true");
}

/* error_log TARGET [LEVEL]: the level is optional, notice by default. */
static void
test_error_log(void)
{
	static const struct {
		const char	*line;
		int		 level;		/* -1: an error */
		const char	*err;
	} cases[] = {
		{ "", LOGL_NOTICE, NULL },
		{ "error_log stderr\n", LOGL_NOTICE, NULL },
		{ "error_log stderr error\n", LOGL_ERROR, NULL },
		{ "error_log syslog warn\n", LOGL_WARN, NULL },
		{ "error_log /x.log notice\n", LOGL_NOTICE, NULL },
		{ "error_log off info\n", LOGL_INFO, NULL },
		{ "error_log e.log debug\n", LOGL_DEBUG, NULL },
		{ "error_log stderr emerg\n", -1, NAME ":3: error_log: invalid "
		    "level \"emerg\" (error, warn, notice, info or debug)" },
		{ "error_log stderr Debug\n", -1, NAME ":3: error_log: invalid "
		    "level \"Debug\" (error, warn, notice, info or debug)" },
		{ "error_log stderr info x\n", -1,
		    NAME ":3: error_log: takes one value" },
		{ "access_log a.log info\n", -1,
		    NAME ":3: access_log: takes one value" },
	};
	char	text[256];
	size_t	i;
	int	r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), CERTS "%s", cases[i].line);
		r = parse_len(NAME, text, strlen(text), &conf);
		if (cases[i].level == -1) {
			is_int(r, -1, "%s is an error", cases[i].line);
			is_str(err, cases[i].err, "%s: the message",
			    cases[i].line);
		} else {
			is_int(r, 0, "%s parses: %s", cases[i].line, err);
			is_int(conf.error_log_level, cases[i].level,
			    "%s: level %d", cases[i].line, cases[i].level);
		}
	}
	snprintf(text, sizeof(text), CERTS "error_log e.log debug\n");
	parse_len(NAME, text, strlen(text), &conf);
	is_str(conf.error_log, "/etc/astleyd/e.log",
	    "error_log's path with a level is resolved like any path");
}

/*
 * conf_print (astleyd -T): every directive is there, and what it prints
 * parses back into the same struct, for a file that changes every
 * directive from its default and for the defaults themselves.
 */
static void
print_roundtrip(const char *text, const char *desc)
{
	static const char	*names[] = { "listen", "listen_tls", "workers",
	    "worker_connections", "user", "group", "pidfile",
	    "tls_certificate", "tls_certificate_key", "error_log",
	    "access_log", "header_timeout", "handshake_timeout",
	    "keepalive_timeout", "send_timeout", "shutdown_timeout",
	    "drain_timeout", "proxy_protocol_from", "keepalive_requests",
	    "max_uri_size", "max_header_size", "max_body_size", "sandbox",
	    "tls_key_process", "status_listen", "status_allow" };
	char	*out = NULL, *line, want[64];
	size_t	 outlen = 0, i;
	FILE	*f;

	if (!parse_ok(text, desc))
		return;
	if ((f = open_memstream(&out, &outlen)) == NULL) {
		ok(0, "%s: open_memstream", desc);
		return;
	}
	conf_print(f, &conf);
	fclose(f);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* At a line's start, or commented out when it has no value. */
		snprintf(want, sizeof(want), "\n%s ", names[i]);
		line = strstr(out, want);
		if (line == NULL) {
			snprintf(want, sizeof(want), "\n#%s ", names[i]);
			line = strstr(out, want);
		}
		ok(line != NULL, "%s: conf_print prints %s", desc, names[i]);
	}
	if (parse_len(NAME, out, outlen, &conf2) != 0) {
		ok(0, "%s: conf_print output parses", desc);
		diag("error: %s", err);
		diag("output:\n%s", out);
	} else
		ok(memcmp(&conf, &conf2, sizeof(conf)) == 0,
		    "%s: conf_print output parses to the same struct", desc);
	free(out);
}

static void
test_print(void)
{
	print_roundtrip(CERTS, "defaults");
	print_roundtrip(
	    "listen 127.0.0.1:8080 proxy_protocol\n"
	    "listen [::1]:8081\n"
	    "listen_tls *:8443\n"
	    "listen_tls [::]:9443 proxy_protocol\n"
	    "workers 3\n"
	    "worker_connections 100\n"
	    "user nobody\n"
	    "group nogroup\n"
	    "pidfile run/a.pid\n"
	    "tls_certificate /tls/c.pem\n"
	    "tls_certificate_key k.pem\n"
	    "error_log syslog debug\n"
	    "access_log logs/access.log\n"
	    "header_timeout 1500ms\n"
	    "handshake_timeout 2s\n"
	    "keepalive_timeout 0\n"
	    "send_timeout 1m\n"
	    "shutdown_timeout 1h\n"
	    "drain_timeout 3s\n"
	    "proxy_protocol_from 10.0.0.0/8\n"
	    "proxy_protocol_from 192.0.2.1\n"
	    "proxy_protocol_from 2001:db8::/32\n"
	    "keepalive_requests 7\n"
	    "max_uri_size 1k\n"
	    "max_header_size 1m\n"
	    "max_body_size 0\n"
	    "sandbox log\n"
	    "tls_key_process off\n"
	    "status_listen 127.0.0.1:9113\n"
	    "status_listen [::1]:9114\n"
	    "status_allow 10.1.0.0/16\n", "every directive changed");
	print_roundtrip(CERTS "error_log stderr info\n",
	    "error_log with a level");
	print_roundtrip(CERTS "error_log /var/log/e.log\nsandbox off\n",
	    "error_log a file, sandbox off");
}

int
main(void)
{
	test_defaults();
	test_error_log();
	test_values();
	test_listen();
	test_paths();
	test_syntax();
	test_errors();
	test_listen_equal();
	test_print();
	return done_testing();
}
