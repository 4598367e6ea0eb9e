/*
 * Config parser: a line tokenizer and a directive table with typed setters,
 * so every directive is checked the same way and every error names
 * file:line.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

#define CONF_MAX_FILE	(1024 * 1024)

struct conf_ctx {
	const char	*name;
	char		 dir[PATH_MAX];
	int		 line;
	char		*err;
	size_t		 errlen;
	int		 seen[32];	/* line of each directive, by index */
	int		 lenient;	/* skip bad lines: conf_load_lenient */
	const char	*opt;		/* a second value, when one is allowed */
};

struct conf_directive {
	const char	*name;
	int		(*set)(struct conf_ctx *, struct conf *,
			    const struct conf_directive *, const char *);
	size_t		 off;
	long long	 min, max;
	int		 repeat;
};

static int	conf_error(struct conf_ctx *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
conf_error(struct conf_ctx *ctx, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (ctx->line > 0)
		n = snprintf(ctx->err, ctx->errlen, "%s:%d: ", ctx->name,
		    ctx->line);
	else
		n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->name);
	if (n < 0 || (size_t)n >= ctx->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
set_path(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	char	*dst = (char *)conf + d->off;
	int	 n;

	if (v[0] == '/')
		n = snprintf(dst, PATH_MAX, "%s", v);
	else
		n = snprintf(dst, PATH_MAX, "%s/%s", ctx->dir, v);
	if (n < 0 || n >= PATH_MAX)
		return conf_error(ctx, "%s: path too long", d->name);
	return 0;
}

/* A log target: a keyword, or a path like any other. */
static int
set_log(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	if (strcmp(v, "syslog") == 0 || strcmp(v, "off") == 0 ||
	    strcmp(v, "stderr") == 0) {
		strlcpy((char *)conf + d->off, v, PATH_MAX);
		return 0;
	}
	return set_path(ctx, conf, d, v);
}

/* error_log TARGET [LEVEL], the level as nginx names them. */
static int
set_error_log(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	if (ctx->opt != NULL &&
	    (conf->error_log_level = log_level_parse(ctx->opt)) == -1)
		return conf_error(ctx, "%s: invalid level \"%s\" (error, warn, "
		    "notice, info or debug)", d->name, ctx->opt);
	return set_log(ctx, conf, d, v);
}

static int
set_name(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	if (strlcpy((char *)conf + d->off, v, 64) >= 64)
		return conf_error(ctx, "%s: name too long", d->name);
	return 0;
}

/* sandbox on|log|off; stored as CONF_SANDBOX_*. */
static int
set_sandbox(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	if (strcmp(v, "on") == 0)
		conf->sandbox = CONF_SANDBOX_ON;
	else if (strcmp(v, "log") == 0)
		conf->sandbox = CONF_SANDBOX_LOG;
	else if (strcmp(v, "off") == 0)
		conf->sandbox = CONF_SANDBOX_OFF;
	else
		return conf_error(ctx, "%s: invalid value \"%s\" (on, log or "
		    "off)", d->name, v);
	return 0;
}

/* tls_key_process on|off. */
static int
set_tls_key_process(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	if (strcmp(v, "on") == 0)
		conf->tls_key_process = 1;
	else if (strcmp(v, "off") == 0)
		conf->tls_key_process = 0;
	else
		return conf_error(ctx, "%s: invalid value \"%s\" (on or off)",
		    d->name, v);
	return 0;
}

/* A number with an optional unit; the units table maps suffix to factor. */
struct conf_unit {
	const char	*suffix;
	long long	 factor;
};

static const struct conf_unit duration_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
	{ "h", 3600000 }, { NULL, 0 }
};
static const struct conf_unit size_units[] = {
	{ "", 1 }, { "k", 1024 }, { "K", 1024 }, { "m", 1024 * 1024 },
	{ "M", 1024 * 1024 }, { NULL, 0 }
};

static int
conf_number(struct conf_ctx *ctx, const struct conf_directive *d,
    const char *v, const struct conf_unit *units, long long *out)
{
	char		 digits[32];
	const char	*errstr;
	size_t		 n = 0;
	long long	 num;

	while (isdigit((unsigned char)v[n]))
		n++;
	if (n == 0 || n >= sizeof(digits))
		return conf_error(ctx, "%s: invalid value \"%s\"", d->name, v);
	memcpy(digits, v, n);
	digits[n] = '\0';
	for (; units->suffix != NULL; units++)
		if (strcmp(v + n, units->suffix) == 0)
			break;
	if (units->suffix == NULL)
		return conf_error(ctx, "%s: invalid unit in \"%s\"", d->name,
		    v);
	num = strtonum(digits, 0, d->max / units->factor, &errstr);
	if (errstr == NULL)
		num *= units->factor;
	if (errstr != NULL || num < d->min || num > d->max)
		return conf_error(ctx, "%s: \"%s\" out of range", d->name, v);
	*out = num;
	return 0;
}

static int
set_duration(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	long long	ms;

	if (conf_number(ctx, d, v, duration_units, &ms) == -1)
		return -1;
	*(int *)((char *)conf + d->off) = (int)ms;
	return 0;
}

static int
set_size(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	return conf_number(ctx, d, v, size_units,
	    (long long *)((char *)conf + d->off));
}

static int
set_workers(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	const char	*errstr;
	long		 n;

	if (strcmp(v, "auto") == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		conf->workers = n < 1 ? 1 : n > d->max ? d->max : n;
		return 0;
	}
	conf->workers = strtonum(v, d->min, d->max, &errstr);
	if (errstr != NULL)
		return conf_error(ctx, "workers: \"%s\" is %s (auto or %lld-%lld)",
		    v, errstr, d->min, d->max);
	return 0;
}

/*
 * "*:1337", "1337", "[::1]:8443", "127.0.0.1:8080".  Names are not
 * resolved: a listener must not depend on DNS at start-up.
 */
static int
set_listen(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	struct conf_listen	*l;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	char			 host[64];
	const char		*port, *errstr;
	size_t			 hlen;
	long long		 num;
	int			 i;

	if (conf->nlisten == CONF_MAX_LISTEN)
		return conf_error(ctx, "too many listen addresses (max %d)",
		    CONF_MAX_LISTEN);
	l = &conf->listen[conf->nlisten];
	memset(l, 0, sizeof(*l));
	l->tls = d->off == 1;
	l->status = d->off == 2;

	if (v[0] == '[') {
		port = strstr(v, "]:");
		if (port == NULL)
			goto bad;
		hlen = port - (v + 1);
		port += 2;
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, v + 1, hlen);
		host[hlen] = '\0';
		if (strchr(host, ':') == NULL)
			goto bad;
	} else if ((port = strrchr(v, ':')) != NULL) {
		hlen = port - v;
		port++;
		if (hlen >= sizeof(host) || memchr(v, ':', hlen) != NULL)
			goto bad;
		memcpy(host, v, hlen);
		host[hlen] = '\0';
	} else {
		strlcpy(host, "*", sizeof(host));
		port = v;
	}
	num = strtonum(port, 1, 65535, &errstr);
	if (errstr != NULL)
		return conf_error(ctx, "%s: port \"%s\" is %s (1-65535)",
		    d->name, port, errstr);

	if (strcmp(host, "*") == 0 || strcmp(host, "::") == 0) {
		/* Both mean dual-stack; "*" may fall back to IPv4 only. */
		l->any = host[0] == '*';
		sin6 = (struct sockaddr_in6 *)&l->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(num);
		l->sslen = sizeof(*sin6);
	} else if (strchr(host, ':') != NULL) {
		sin6 = (struct sockaddr_in6 *)&l->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			goto bad;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(num);
		l->sslen = sizeof(*sin6);
	} else {
		sin = (struct sockaddr_in *)&l->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			goto bad;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(num);
		l->sslen = sizeof(*sin);
	}
	strlcpy(l->name, v, sizeof(l->name));
	for (i = 0; i < conf->nlisten; i++)
		if (memcmp(&conf->listen[i].ss, &l->ss, l->sslen) == 0)
			return conf_error(ctx, "%s: address %s already used",
			    d->name, v);
	conf->nlisten++;
	return 0;
 bad:
	return conf_error(ctx, "%s: invalid address \"%s\" (expected "
	    "ADDR:PORT, [ADDR6]:PORT or *:PORT)", d->name, v);
}

/* An address as 16 bytes, IPv4 as IPv4-mapped IPv6; -1 if neither. */
static int
conf_addr16(const struct sockaddr *sa, unsigned char out[16])
{
	const struct sockaddr_in	*sin;

	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	if (sa->sa_family != AF_INET)
		return -1;
	sin = (const struct sockaddr_in *)sa;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, &sin->sin_addr, 4);
	return 0;
}

int
conf_cidr_match(const struct conf_cidr *cidr, int n, const struct sockaddr *sa)
{
	unsigned char	a[16];
	int		i, full, rest;

	if (conf_addr16(sa, a) == -1)
		return 0;
	for (i = 0; i < n; i++) {
		full = cidr[i].bits / 8;
		rest = cidr[i].bits % 8;
		if (memcmp(a, cidr[i].addr, full) != 0)
			continue;
		if (rest == 0 || ((a[full] ^ cidr[i].addr[full]) &
		    (0xff << (8 - rest))) == 0)
			return 1;
	}
	return 0;
}

/*
 * "10.0.0.0/8", "::1", "2001:db8::/32"; no host bits past the prefix.
 * Into proxy_protocol_from, or status_allow (d->off 1).
 */
static int
set_cidr(struct conf_ctx *ctx, struct conf *conf,
    const struct conf_directive *d, const char *v)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	struct conf_cidr	*c;
	char			 host[64];
	const char		*slash, *errstr;
	int			 v4, max, bits, i, *n;

	n = d->off ? &conf->nstatus_allow : &conf->nproxy_from;
	if (*n == CONF_MAX_CIDR)
		return conf_error(ctx, "%s: too many (max %d)", d->name,
		    CONF_MAX_CIDR);
	c = d->off ? &conf->status_allow[*n] : &conf->proxy_from[*n];
	if ((slash = strchr(v, '/')) == NULL)
		slash = v + strlen(v);
	if ((size_t)(slash - v) >= sizeof(host))
		goto bad;
	memcpy(host, v, slash - v);
	host[slash - v] = '\0';
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		conf_addr16((struct sockaddr *)&sin, c->addr);
		v4 = 1;
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		conf_addr16((struct sockaddr *)&sin6, c->addr);
		v4 = 0;
	} else
		goto bad;
	max = v4 ? 32 : 128;
	bits = max;
	if (*slash == '/') {
		bits = strtonum(slash + 1, 0, max, &errstr);
		if (errstr != NULL || !isdigit((unsigned char)slash[1]))
			goto bad;
	}
	c->bits = bits + (v4 ? 96 : 0);
	for (i = c->bits; i < 128; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			return conf_error(ctx, "%s: \"%s\" has host bits set "
			    "past the prefix", d->name, v);
	(*n)++;
	return 0;
 bad:
	return conf_error(ctx, "%s: invalid address block \"%s\" (expected "
	    "ADDR or ADDR/BITS)", d->name, v);
}

#define OFF(f)	offsetof(struct conf, f)
#define MS(s)	((long long)(s) * 1000)
static const struct conf_directive directives[] = {
	{ "listen", set_listen, 0, 0, 0, 1 },
	{ "listen_tls", set_listen, 1, 0, 0, 1 },
	{ "workers", set_workers, 0, 1, CONF_MAX_WORKERS, 0 },
	{ "worker_connections", set_size, OFF(worker_connections), 1,
	    CONF_MAX_CONNECTIONS, 0 },
	{ "user", set_name, OFF(user), 0, 0, 0 },
	{ "group", set_name, OFF(group), 0, 0, 0 },
	{ "pidfile", set_path, OFF(pidfile), 0, 0, 0 },
	{ "tls_certificate", set_path, OFF(tls_certificate), 0, 0, 0 },
	{ "tls_certificate_key", set_path, OFF(tls_certificate_key), 0, 0, 0 },
	{ "error_log", set_error_log, OFF(error_log), 0, 0, 0 },
	{ "access_log", set_log, OFF(access_log), 0, 0, 0 },
	{ "header_timeout", set_duration, OFF(header_timeout), 1, MS(3600), 0 },
	{ "handshake_timeout", set_duration, OFF(handshake_timeout), 1,
	    MS(3600), 0 },
	{ "keepalive_timeout", set_duration, OFF(keepalive_timeout), 0,
	    MS(3600), 0 },
	{ "send_timeout", set_duration, OFF(send_timeout), 1, MS(3600), 0 },
	{ "shutdown_timeout", set_duration, OFF(shutdown_timeout), 0,
	    MS(3600), 0 },
	{ "drain_timeout", set_duration, OFF(drain_timeout), 0, MS(3600), 0 },
	{ "proxy_protocol_from", set_cidr, 0, 0, 0, 1 },
	{ "status_listen", set_listen, 2, 0, 0, 1 },
	{ "status_allow", set_cidr, 1, 0, 0, 1 },
	{ "keepalive_requests", set_size, OFF(keepalive_requests), 1,
	    1000000, 0 },
	{ "max_uri_size", set_size, OFF(max_uri_size), 256, 1024 * 1024, 0 },
	{ "max_header_size", set_size, OFF(max_header_size), 256,
	    1024 * 1024, 0 },
	{ "max_body_size", set_size, OFF(max_body_size), 0,
	    1024LL * 1024 * 1024, 0 },
	{ "sandbox", set_sandbox, 0, 0, 0, 0 },
	{ "tls_key_process", set_tls_key_process, 0, 0, 0, 0 },
};
#define NDIRECTIVES	(sizeof(directives) / sizeof(directives[0]))

static void
conf_defaults(struct conf *conf)
{
	long	n;

	memset(conf, 0, sizeof(*conf));
	n = sysconf(_SC_NPROCESSORS_ONLN);
	conf->workers = n < 1 ? 1 : n > CONF_MAX_WORKERS ? CONF_MAX_WORKERS : n;
	strlcpy(conf->user, "nobody", sizeof(conf->user));
	strlcpy(conf->group, "nogroup", sizeof(conf->group));
	strlcpy(conf->pidfile, "/run/astleyd.pid", sizeof(conf->pidfile));
	strlcpy(conf->access_log, "off", sizeof(conf->access_log));
	conf->error_log_level = LOGL_NOTICE;
	conf->worker_connections = 4096;
	conf->header_timeout = 10000;
	conf->handshake_timeout = 10000;
	conf->keepalive_timeout = 5000;
	conf->send_timeout = 10000;
	conf->shutdown_timeout = 10000;
	conf->keepalive_requests = 1000;
	conf->max_uri_size = 8 * 1024;
	conf->max_header_size = 16 * 1024;
	conf->max_body_size = 64 * 1024;
	conf->sandbox = CONF_SANDBOX_ON;
	conf->tls_key_process = 1;
}

/* The line a directive was set on, 0 when the file left it out. */
static int
conf_seen(const struct conf_ctx *ctx, const char *name)
{
	size_t	i;

	for (i = 0; i < NDIRECTIVES; i++)
		if (strcmp(directives[i].name, name) == 0)
			return ctx->seen[i];
	return 0;
}

/* Fill in what the file left out and resolve names to ids. */
static int
conf_finish(struct conf_ctx *ctx, struct conf *conf)
{
	struct passwd	*pw;
	struct group	*gr;
	int		 have_plain = 0, have_tls = 0, i;

	ctx->line = 0;	/* errors below are about the file as a whole */
	struct conf_directive	 d_plain = { "listen", NULL, 0, 0, 0, 1 };
	struct conf_directive	 d_tls = { "listen_tls", NULL, 1, 0, 0, 1 };

	for (i = 0; i < conf->nlisten; i++) {
		if (conf->listen[i].status)
			continue;
		if (conf->listen[i].tls)
			have_tls = 1;
		else
			have_plain = 1;
	}
	if (!have_plain && set_listen(ctx, conf, &d_plain, "*:1337") == -1)
		return -1;
	if (!have_tls && set_listen(ctx, conf, &d_tls, "*:1972") == -1)
		return -1;
	for (i = 0; i < conf->nlisten; i++)
		if (conf->listen[i].proxy && conf->nproxy_from == 0)
			return conf_error(ctx, "%s %s proxy_protocol: "
			    "proxy_protocol_from is required, naming the "
			    "balancers that may send the header",
			    conf->listen[i].tls ? "listen_tls" : "listen",
			    conf->listen[i].name);
	/* The status listener answers loopback only, unless told. */
	if (conf->nstatus_allow == 0) {
		struct conf_directive	 d_allow = { "status_allow", NULL, 1,
					    0, 0, 1 };

		if (set_cidr(ctx, conf, &d_allow, "127.0.0.0/8") == -1 ||
		    set_cidr(ctx, conf, &d_allow, "::1") == -1)
			return -1;
	}
	if (conf->tls_certificate[0] == '\0')
		return conf_error(ctx, "tls_certificate is required");
	if (conf->tls_certificate_key[0] == '\0')
		return conf_error(ctx, "tls_certificate_key is required");

	ctx->line = conf_seen(ctx, "user");
	if ((pw = getpwnam(conf->user)) == NULL)
		return conf_error(ctx, "user \"%s\" does not exist", conf->user);
	if (pw->pw_uid == 0)
		return conf_error(ctx, "user must not be root");
	ctx->line = conf_seen(ctx, "group");
	if ((gr = getgrnam(conf->group)) == NULL)
		return conf_error(ctx, "group \"%s\" does not exist",
		    conf->group);
	if (gr->gr_gid == 0)
		return conf_error(ctx, "group must not be root");
	conf->uid = pw->pw_uid;
	conf->gid = gr->gr_gid;
	return 0;
}

static int
conf_line(struct conf_ctx *ctx, struct conf *conf, char *line)
{
	const struct conf_directive	*d;
	char				*word[4];
	int				 n = 0;
	size_t				 i;

	while (n < 4) {
		line += strspn(line, " \t\r");
		if (*line == '\0')
			break;
		word[n++] = line;
		line += strcspn(line, " \t\r");
		if (*line != '\0')
			*line++ = '\0';
	}
	if (n == 0)
		return 0;
	for (i = 0; i < NDIRECTIVES; i++)
		if (strcmp(word[0], directives[i].name) == 0)
			break;
	if (i == NDIRECTIVES)
		return conf_error(ctx, "unknown directive \"%s\"", word[0]);
	d = &directives[i];
	if (n == 1)
		return conf_error(ctx, "%s: missing value", d->name);
	/* A listener takes one option after its address, error_log a level. */
	if (n == 4 || (n == 3 && d->set != set_listen &&
	    d->set != set_error_log))
		return conf_error(ctx, "%s: takes one value", d->name);
	if (n == 3 && d->set == set_listen && d->off == 2)
		return conf_error(ctx, "%s: takes one value", d->name);
	if (n == 3 && d->set == set_listen &&
	    strcmp(word[2], "proxy_protocol") != 0)
		return conf_error(ctx, "%s: unknown option \"%s\" (the one "
		    "option is proxy_protocol)", d->name, word[2]);
	if (!d->repeat && ctx->seen[i] != 0)
		return conf_error(ctx, "%s: duplicate directive (first at "
		    "line %d)", d->name, ctx->seen[i]);
	ctx->seen[i] = ctx->line;
	ctx->opt = n == 3 ? word[2] : NULL;
	if (d->set(ctx, conf, d, word[1]) == -1)
		return -1;
	if (n == 3 && d->set == set_listen)
		conf->listen[conf->nlisten - 1].proxy = 1;
	return 0;
}

static int
conf_parse_ctx(const char *name, const char *buf, size_t len,
    struct conf *conf, char *err, size_t errlen, int lenient)
{
	struct conf_ctx	 ctx;
	char		 line[4096];
	const char	*p = buf, *end = buf + len, *nl, *slash;
	size_t		 llen;

	memset(&ctx, 0, sizeof(ctx));
	ctx.lenient = lenient;
	ctx.name = name;
	ctx.err = err;
	ctx.errlen = errlen;
	if ((slash = strrchr(name, '/')) == NULL)
		strlcpy(ctx.dir, ".", sizeof(ctx.dir));
	else if (slash == name)
		strlcpy(ctx.dir, "/", sizeof(ctx.dir));
	else if ((size_t)(slash - name) >= sizeof(ctx.dir)) {
		snprintf(err, errlen, "%s: path too long", name);
		return -1;
	} else {
		memcpy(ctx.dir, name, slash - name);
		ctx.dir[slash - name] = '\0';
	}
	conf_defaults(conf);
	strlcpy(conf->path, name, sizeof(conf->path));

	while (p < end) {
		ctx.line++;
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		llen = nl - p;
		p = nl + 1;
		if (llen >= sizeof(line)) {
			if (lenient)
				continue;
			return conf_error(&ctx, "line too long");
		}
		memcpy(line, p - 1 - llen, llen);
		line[llen] = '\0';
		if (memchr(line, '\0', llen) != NULL) {
			if (lenient)
				continue;
			return conf_error(&ctx, "NUL byte in line");
		}
		line[strcspn(line, "#")] = '\0';
		if (conf_line(&ctx, conf, line) == -1 && !lenient)
			return -1;
	}
	return lenient ? 0 : conf_finish(&ctx, conf);
}

int
conf_parse(const char *name, const char *buf, size_t len, struct conf *conf,
    char *err, size_t errlen)
{
	return conf_parse_ctx(name, buf, len, conf, err, errlen, 0);
}

static int
conf_load_ctx(const char *path, struct conf *conf, char *err, size_t errlen,
    int lenient)
{
	struct stat	 st;
	char		*buf = NULL;
	ssize_t		 n;
	size_t		 off = 0;
	int		 fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONF_MAX_FILE) {
		snprintf(err, errlen, "%s: not a regular file under 1 MiB",
		    path);
		goto fail;
	}
	if ((buf = malloc(st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path,
			    n == 0 ? "short read" : strerror(errno));
			goto fail;
		}
		off += n;
	}
	rv = conf_parse_ctx(path, buf, off, conf, err, errlen, lenient);
 fail:
	free(buf);
	close(fd);
	return rv;
}

int
conf_load(const char *path, struct conf *conf, char *err, size_t errlen)
{
	return conf_load_ctx(path, conf, err, errlen, 0);
}

/*
 * Only the pidfile, from a file that may be broken: `astleyd -s` must
 * reach the running master to hear what is wrong with the new config.
 */
int
conf_load_lenient(const char *path, struct conf *conf, char *err,
    size_t errlen)
{
	return conf_load_ctx(path, conf, err, errlen, 1);
}

int
conf_load_pidfile(const char *path, char *out, size_t outlen, char *err,
    size_t errlen)
{
	static struct conf	conf;

	if (conf_load_lenient(path, &conf, err, errlen) == -1)
		return -1;
	if (strlcpy(out, conf.pidfile, outlen) >= outlen) {
		snprintf(err, errlen, "%s: pidfile path too long", path);
		return -1;
	}
	return 0;
}

/* An address block as written in the file: IPv4 for IPv4-mapped blocks. */
static void
conf_print_cidr(FILE *f, const char *name, const struct conf_cidr *c)
{
	static const unsigned char	mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
					    0, 0, 0xff, 0xff };
	char				host[INET6_ADDRSTRLEN];

	if (c->bits >= 96 && memcmp(c->addr, mapped, sizeof(mapped)) == 0) {
		inet_ntop(AF_INET, c->addr + 12, host, sizeof(host));
		fprintf(f, "%-19s %s/%d\n", name, host, c->bits - 96);
	} else {
		inet_ntop(AF_INET6, c->addr, host, sizeof(host));
		fprintf(f, "%-19s %s/%d\n", name, host, c->bits);
	}
}

/*
 * The effective configuration for astleyd -T: every directive of the
 * table, in its order, with the value in force, defaults and resolved
 * paths included, in a form conf_parse reads back.  What has no value
 * (error_log left to its default, no proxy_protocol_from) is a comment.
 */
static const char *const	conf_level_names[] = {
	[LOGL_EMERG] = "emerg", [LOGL_ERROR] = "error", [LOGL_WARN] = "warn",
	[LOGL_NOTICE] = "notice", [LOGL_INFO] = "info", [LOGL_DEBUG] = "debug"
};

void
conf_print(FILE *f, const struct conf *conf)
{
	const struct conf_directive	*d;
	const char			*s;
	size_t				 i;
	int				 j, n, ms;

	fprintf(f, "# effective configuration of %s\n", conf->path);
	for (i = 0; i < NDIRECTIVES; i++) {
		d = &directives[i];
		s = (const char *)conf + d->off;
		if (d->set == set_listen) {
			/* d->off: 0 listen, 1 listen_tls, 2 status_listen. */
			for (n = 0, j = 0; j < conf->nlisten; j++)
				if ((conf->listen[j].status ? 2 :
				    conf->listen[j].tls) == (int)d->off) {
					fprintf(f, "%-19s %s%s\n", d->name,
					    conf->listen[j].name,
					    conf->listen[j].proxy ?
					    " proxy_protocol" : "");
					n++;
				}
			if (n == 0)
				fprintf(f, "#%-18s none\n", d->name);
		} else if (d->set == set_cidr) {
			/* d->off: 0 proxy_protocol_from, 1 status_allow. */
			n = d->off ? conf->nstatus_allow : conf->nproxy_from;
			for (j = 0; j < n; j++)
				conf_print_cidr(f, d->name, d->off ?
				    &conf->status_allow[j] :
				    &conf->proxy_from[j]);
			if (n == 0)
				fprintf(f, "#%-18s none\n", d->name);
		} else if (d->set == set_workers)
			fprintf(f, "%-19s %d\n", d->name, conf->workers);
		else if (d->set == set_size)
			fprintf(f, "%-19s %lld\n", d->name,
			    *(const long long *)(const void *)s);
		else if (d->set == set_duration) {
			ms = *(const int *)(const void *)s;
			if (ms % 1000 == 0)
				fprintf(f, "%-19s %ds\n", d->name, ms / 1000);
			else
				fprintf(f, "%-19s %dms\n", d->name, ms);
		} else if (d->set == set_sandbox)
			fprintf(f, "%-19s %s\n", d->name,
			    conf->sandbox == CONF_SANDBOX_ON ? "on" :
			    conf->sandbox == CONF_SANDBOX_LOG ? "log" : "off");
		else if (d->set == set_tls_key_process)
			fprintf(f, "%-19s %s\n", d->name,
			    conf->tls_key_process ? "on" : "off");
		else if (d->set == set_error_log && s[0] == '\0')
			fprintf(f, "#%-18s default: stderr with -d, syslog "
			    "as a daemon%s%s\n", d->name, conf->error_log_level !=
			    LOGL_NOTICE ? "; level " : "",
			    conf->error_log_level != LOGL_NOTICE ?
			    conf_level_names[conf->error_log_level] : "");
		else if (d->set == set_error_log)
			fprintf(f, "%-19s %s %s\n", d->name, s,
			    conf_level_names[conf->error_log_level]);
		else if (d->set == set_log && s[0] == '\0')
			fprintf(f, "#%-18s default: stderr with -d, syslog "
			    "as a daemon\n", d->name);
		else	/* set_path, set_name, set_log: a string */
			fprintf(f, "%-19s %s\n", d->name, s);
	}
}

int
conf_listen_equal(const struct conf_listen *a, const struct conf_listen *b)
{
	/* proxy is not part of the socket: a reload may change it. */
	return a->tls == b->tls && a->any == b->any && a->sslen == b->sslen &&
	    memcmp(&a->ss, &b->ss, a->sslen) == 0;
}
