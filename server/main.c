/*
 * Start-up, all of it privileged and done once in the master: options,
 * config, TLS context, pidfile, listening sockets, detaching.  Then the
 * master loop takes over.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"

static struct server	server;

static void __attribute__((noreturn))
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: astleyd [-dhtv] [-f file]\n"
	    "  -d       stay in the foreground, log to stderr\n"
	    "  -f file  configuration file (default %s)\n"
	    "  -t       test the configuration and exit\n"
	    "  -v       print the version and exit\n"
	    "  -h       print this help and exit\n", ASTLEYD_CONF);
	exit(code);
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

/*
 * Opens the listeners conf asks for into srv; a socket already open in
 * old for the same address is taken over instead, so a reload never
 * closes and re-binds it.  On failure nothing of old is touched.
 */
int
listeners_open(struct server *srv, const struct conf *conf,
    const struct server *old)
{
	char	err[512];
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
		if (l->fd == -1 && listener_open(l, err, sizeof(err)) == -1) {
			log_warnx("%s", err);
			srv->nlisteners--;
			goto fail;
		}
	}
	return 0;
 fail:
	for (i = 0; i < srv->nlisteners; i++) {
		for (j = 0; old != NULL && j < old->nlisteners; j++)
			if (old->listeners[j].fd == srv->listeners[i].fd)
				break;
		if (old == NULL || j == old->nlisteners)
			close(srv->listeners[i].fd);
	}
	srv->nlisteners = 0;
	return -1;
}

void
listeners_close(struct listener *l, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (l[i].fd != -1)
			close(l[i].fd);
}

/*
 * Detaches, keeping a lifeline pipe: the launching process exits 0 only
 * once the master says it is serving, or 1 if it dies first.
 */
static int
daemonize(void)
{
	char	c = 0;
	ssize_t	n;
	int	lifeline[2];
	pid_t	pid;

	if (pipe2(lifeline, O_CLOEXEC) == -1)
		fatal("pipe2");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(lifeline[1]);
		do
			n = read(lifeline[0], &c, 1);
		while (n == -1 && errno == EINTR);
		/* Not exit(): the master owns the pidfile and sockets now. */
		_exit(n == 1 && c == 'R' ? 0 : 1);
	}
	close(lifeline[0]);
	if (setsid() == -1)
		fatal("setsid");
	umask(022);
	if (chdir("/") == -1)
		fatal("chdir /");
	return lifeline[1];
}

int
main(int argc, char *argv[], char *envp[])
{
	struct server	*srv = &server;
	const char	*conf_arg = ASTLEYD_CONF;
	char		 path[PATH_MAX], err[1024];
	pid_t		 otherpid;
	int		 ch, foreground = 0, test = 0;

	setproctitle_init(argc, argv, envp);
	while ((ch = getopt(argc, argv, "df:htv")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'f':
			conf_arg = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'v':
			printf("astleyd %s\n", ASTLEYD_VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind != argc)
		usage(1);

	/* Absolute, so relative paths in it survive chdir("/"). */
	if (realpath(conf_arg, path) == NULL) {
		fprintf(stderr, "astleyd: %s: %s\n", conf_arg, strerror(errno));
		goto conf_failed;
	}
	if (conf_load(path, &srv->conf, err, sizeof(err)) == -1 ||
	    (srv->ssl_ctx = tls_ctx_new(&srv->conf, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "astleyd: %s\n", err);
		goto conf_failed;
	}
	if (test) {
		fprintf(stderr, "astleyd: configuration file %s test is "
		    "successful\n", path);
		SSL_CTX_free(srv->ssl_ctx);
		return 0;
	}

	log_init(1);
	srv->foreground = foreground;
	srv->lifeline = -1;
	srv->pidfh = pidfile_open(srv->conf.pidfile, 0644, &otherpid);
	if (srv->pidfh == NULL) {
		if (errno == EEXIST)
			fprintf(stderr, "astleyd: already running (pid %ld, "
			    "pidfile %s)\n", (long)otherpid, srv->conf.pidfile);
		else
			fprintf(stderr, "astleyd: pidfile %s: %s\n",
			    srv->conf.pidfile, strerror(errno));
		return 1;
	}
	if (listeners_open(srv, &srv->conf, NULL) == -1) {
		pidfile_remove(srv->pidfh);
		return 1;
	}
	if (!foreground)
		srv->lifeline = daemonize();
	if (pidfile_write(srv->pidfh) == -1) {
		log_warn("pidfile %s", srv->conf.pidfile);
		pidfile_remove(srv->pidfh);
		return 1;
	}
	setproctitle("master process");
	master_run(srv);

 conf_failed:
	if (test)
		fprintf(stderr, "astleyd: configuration file %s test failed\n",
		    conf_arg);
	return 1;
}
