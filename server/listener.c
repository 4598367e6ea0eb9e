/*
 * Listening sockets: opened by the master before it forks, inherited by
 * every worker, and carried across reloads when their address stays.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "astleyd.h"

#define LISTEN_FDS_START	3	/* SD_LISTEN_FDS_START */
#define LISTEN_FDS_MAX		64

/* Listening sockets handed over by systemd (or an upgrading master). */
static struct {
	int	fd;		/* -1: taken or closed */
	char	name[64];	/* from LISTEN_FDNAMES, for logs */
} inherited[LISTEN_FDS_MAX];
static int	ninherited;

/*
 * The systemd protocol (sd_listen_fds(3)): when LISTEN_PID is this
 * process, descriptors 3 to 3 + LISTEN_FDS - 1 are listening sockets,
 * named by the colon-separated LISTEN_FDNAMES.  Called first thing in
 * main, before anything inherited is closed; the variables are removed,
 * so no child takes them for its own.  Returns the first descriptor
 * that is not one of them (main closes everything from there).
 */
int
listeners_from_env(void)
{
	const char	*pid, *fds, *names, *errstr = NULL;
	long long	 n;
	int		 i, fd, type, acc;
	socklen_t	 len;
	size_t		 k;

	pid = getenv("LISTEN_PID");
	fds = getenv("LISTEN_FDS");
	names = getenv("LISTEN_FDNAMES");
	n = 0;
	if (pid != NULL && fds != NULL &&
	    strtonum(pid, 1, INT32_MAX, &errstr) == (long long)getpid()) {
		n = strtonum(fds, 0, LISTEN_FDS_MAX, &errstr);
		/* Early: no log yet, but stderr is the launcher's. */
		if (errstr != NULL)
			fprintf(stderr, "astleyd: LISTEN_FDS=%s is %s (0-%d): "
			    "the descriptors are closed\n", fds, errstr,
			    LISTEN_FDS_MAX);
	}
	if (errstr != NULL)
		n = 0;
	for (i = 0; i < n; i++) {
		fd = LISTEN_FDS_START + i;
		inherited[i].fd = -1;
		k = 0;
		while (names != NULL && *names != '\0' && *names != ':') {
			if (k + 1 < sizeof(inherited[i].name))
				inherited[i].name[k++] = *names;
			names++;
		}
		inherited[i].name[k] = '\0';
		if (names != NULL && *names == ':')
			names++;
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
		    type != SOCK_STREAM ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) ==
		    -1 || !acc) {
			close(fd);	/* not a listening stream socket */
			continue;
		}
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
			close(fd);
			continue;
		}
		inherited[i].fd = fd;
	}
	ninherited = n;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return LISTEN_FDS_START + n;
}

/* 1 when fd is bound to the address a listen line asks for. */
static int
listener_same(int fd, const struct conf_listen *cl)
{
	struct sockaddr_storage		 ss;
	const struct sockaddr_in6	*want6 = (const void *)&cl->ss;
	const struct sockaddr_in	*want4 = (const void *)&cl->ss;
	const struct sockaddr_in6	*have6 = (const void *)&ss;
	const struct sockaddr_in	*have4 = (const void *)&ss;
	socklen_t			 len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET6 && cl->ss.ss_family == AF_INET6)
		return memcmp(&have6->sin6_addr, &want6->sin6_addr, 16) == 0 &&
		    have6->sin6_port == want6->sin6_port;
	if (ss.ss_family == AF_INET && cl->ss.ss_family == AF_INET)
		return have4->sin_addr.s_addr == want4->sin_addr.s_addr &&
		    have4->sin_port == want4->sin_port;
	/* "*" on a host without IPv6: 0.0.0.0 does. */
	if (ss.ss_family == AF_INET && cl->any)
		return have4->sin_addr.s_addr == htonl(INADDR_ANY) &&
		    have4->sin_port == want6->sin6_port;
	return 0;
}

/* 1 when fd is a [::] socket that takes no IPv4 clients. */
static int
listener_v6only(int fd, const struct conf_listen *cl)
{
	const struct sockaddr_in6	*sin6 = (const void *)&cl->ss;
	socklen_t			 len = sizeof(int);
	int				 v6only = 0;

	if (cl->ss.ss_family != AF_INET6 ||
	    !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
		return 0;
	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == -1)
		return 0;
	return v6only;
}

/* An inherited socket for this listen line, or -1. */
static int
listener_take(const struct listener *l)
{
	int	i, fd;

	for (i = 0; i < ninherited; i++) {
		if ((fd = inherited[i].fd) == -1 || !listener_same(fd, &l->cl))
			continue;
		inherited[i].fd = -1;
		log_notice("%s %s: the inherited socket%s%s", l->cl.tls ?
		    "listen_tls" : l->cl.status ? "status_listen" : "listen",
		    l->cl.name, inherited[i].name[0] ? " " : "",
		    inherited[i].name);
		/* [::] as we bind it is dual-stack; a unit may say otherwise. */
		if (listener_v6only(fd, &l->cl))
			log_warnx("%s: the inherited socket is IPv6 only "
			    "(BindIPv6Only=ipv6-only?): IPv4 clients are not "
			    "served", l->cl.name);
		return fd;
	}
	return -1;
}

/* Closes what no listen line took, saying so. */
static void
listeners_inherited_done(void)
{
	char	addr[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int	i;

	for (i = 0; i < ninherited; i++) {
		if (inherited[i].fd == -1)
			continue;
		len = sizeof(ss);
		if (getsockname(inherited[i].fd, (struct sockaddr *)&ss,
		    &len) == -1)
			ss.ss_family = AF_UNSPEC;
		accesslog_addr((struct sockaddr *)&ss, addr, sizeof(addr));
		log_warnx("inherited socket %d%s%s (%s port %d) matches no "
		    "listen line: closed", inherited[i].fd,
		    inherited[i].name[0] ? " " : "", inherited[i].name, addr,
		    ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)
		    &ss)->sin_port) : ss.ss_family == AF_INET6 ?
		    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : 0);
		close(inherited[i].fd);
		inherited[i].fd = -1;
	}
	ninherited = 0;
}

static int
listener_open(struct listener *l, char *err, size_t errlen)
{
	struct sockaddr_in	 sin;
	const struct sockaddr	*sa = (const struct sockaddr *)&l->cl.ss;
	socklen_t		 salen = l->cl.sslen;
	int			 fd, one = 1, v6only;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1 && l->cl.any && errno == EAFNOSUPPORT) {
		/* "*" on a host without IPv6: IPv4 only. */
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		sin.sin_port = ((const struct sockaddr_in6 *)sa)->sin6_port;
		sa = (const struct sockaddr *)&sin;
		salen = sizeof(sin);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
	}
	if (fd == -1)
		goto fail;
	/* Restart at once, without waiting out TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (sa->sa_family == AF_INET6) {
		/* [::] and * are dual-stack; a specific address is not. */
		v6only = !IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    sizeof(v6only)) == -1)
			goto fail;
	}
	if (bind(fd, sa, salen) == -1 || listen(fd, SOMAXCONN) == -1)
		goto fail;
	l->fd = fd;
	return 0;
 fail:
	snprintf(err, errlen, "%s %s: %s", l->cl.tls ? "listen_tls" : "listen",
	    l->cl.name, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

static int	listener_inherit(struct listener *, char *, size_t);

/*
 * Opens the listeners conf asks for into srv; a socket already open in
 * old for the same address is taken over instead, so a reload never
 * closes and re-binds it.  On failure nothing of old is touched.
 */
int
listeners_open(struct server *srv, const struct conf *conf,
    const struct server *old, char *err, size_t errlen)
{
	int	i, j;

	srv->nlisteners = 0;
	for (i = 0; i < conf->nlisten; i++) {
		struct listener	*l = &srv->listeners[i];

		l->cl = conf->listen[i];
		l->fd = -1;
		for (j = 0; old != NULL && j < old->nlisteners; j++)
			if (conf_listen_equal(&old->listeners[j].cl, &l->cl))
				l->fd = old->listeners[j].fd;
		if (l->fd == -1)
			l->fd = listener_take(l);
		srv->nlisteners++;
		if (l->fd == -1 && listener_open(l, err, errlen) == -1) {
			srv->nlisteners--;
			goto fail;
		}
		if (listener_inherit(l, err, errlen) == -1)
			goto fail;
	}
	listeners_inherited_done();
	return 0;
 fail:
	listeners_release(srv, old);
	return -1;
}

/* Closes srv's listeners, except those that keep also holds. */
/*
 * TCP_NODELAY is inherited by every accepted socket, so no worker pays a
 * system call per connection for it.  Nothing that depends on the config
 * is set here: a listener is shared with the workers of an older
 * generation, and a reload that fails must leave them as they were.
 */
static int
listener_inherit(struct listener *l, char *err, size_t errlen)
{
	int	one = 1;

	if (setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == -1) {
		snprintf(err, errlen, "%s %s: setsockopt: %s", l->cl.tls ?
		    "listen_tls" : "listen", l->cl.name, strerror(errno));
		return -1;
	}
	return 0;
}

void
listeners_release(struct server *srv, const struct server *keep)
{
	int	i, j;

	for (i = 0; i < srv->nlisteners; i++) {
		for (j = 0; keep != NULL && j < keep->nlisteners; j++)
			if (keep->listeners[j].fd == srv->listeners[i].fd)
				break;
		if (keep == NULL || j == keep->nlisteners)
			close(srv->listeners[i].fd);
	}
	srv->nlisteners = 0;
}

void
listeners_close(struct listener *l, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (l[i].fd != -1)
			close(l[i].fd);
}
