/*
 * Listening sockets: opened by the master before it forks, inherited by
 * every worker, and carried across reloads when their address stays.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "astleyd.h"

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
		srv->nlisteners++;
		if (l->fd == -1 && listener_open(l, err, errlen) == -1) {
			srv->nlisteners--;
			goto fail;
		}
		if (listener_inherit(l, err, errlen) == -1)
			goto fail;
	}
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
