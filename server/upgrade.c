/*
 * Binary upgrade, nginx's USR2-then-QUIT as one command (-s upgrade).
 *
 * The old master forks and executes the binary it was started from (its
 * path now names the installed one) as a new master, handing it:
 *   3..3+N-1  the listening sockets, in the systemd LISTEN_FDS form;
 *   3+N       a socket to the old master: the session ticket keys come
 *             down it, "R" (serving) goes up, "G" (take over) comes back;
 *   3+N+1     the old master's own stderr, the new one's from then on;
 * while its stderr is a pipe the old master reads, so that whatever the
 * new master says before it serves (a bad config, a port it cannot
 * have) reaches the operator who asked.  Once the new master's workers
 * accept, the old master gives up the pidfile and the control socket,
 * tells it to take them, and finishes its requests; if the new master
 * dies or is not serving within UPGRADE_TIMEOUT_MS, the old one serves
 * on and says why.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"

#define UPGRADE_TIMEOUT_MS	30000	/* the new master's start */
#define UPGRADE_REPLY_MS	5000	/* an answer on the socket */
#define UPGRADE_ENV		"ASTLEYD_UPGRADE"

static char	self_path[PATH_MAX];	/* the binary, as started */

/* The new master's side. */
static int	up_sock = -1;		/* to the old master */
static int	up_stderr = -1;		/* the old master's stderr */

/* The old master's side: the upgrade in progress. */
static struct {
	pid_t		 pid;		/* the new master, or 0 */
	int		 sock;
	int		 err;		/* its stderr, until it serves */
	int		 client;	/* who asked (-s upgrade) */
	long long	 deadline;
	char		 line[512];	/* a stderr line being read */
	size_t		 linelen;
	char		 last[512];	/* the last whole one */
} up = { 0, -1, -1, -1, 0, "", 0, "" };

/* main(), first: where the binary is, while that still names it. */
void
upgrade_init(void)
{
	ssize_t	n;

	if ((n = readlink("/proc/self/exe", self_path,
	    sizeof(self_path) - 1)) <= 0)
		n = 0;
	self_path[n] = '\0';
}

/*
 * main(), before closing what was inherited: an upgrading master's two
 * descriptors follow the listeners at first.  Returns the first
 * descriptor past them.
 */
int
upgrade_from_env(int first)
{
	const char	*v = getenv(UPGRADE_ENV), *errstr;
	long long	 fd;

	if (v == NULL)
		return first;
	fd = strtonum(v, 3, INT_MAX - 2, &errstr);
	unsetenv(UPGRADE_ENV);
	if (errstr != NULL || fd != first || fcntl(fd, F_GETFD) == -1 ||
	    fcntl(fd + 1, F_GETFD) == -1)
		return first;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd + 1, F_SETFD, FD_CLOEXEC);
	up_sock = fd;
	up_stderr = fd + 1;
	return first + 2;
}

int
upgrade_pending(void)
{
	return up_sock != -1;
}

/* Waits up to ms for one message; its length, or -1. */
static ssize_t
upgrade_recv(int fd, void *buf, size_t len, int ms)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	ssize_t		n;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	do
		n = recv(fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	return n;
}

/* The new master: the old one's session ticket keys.  0 or -1. */
int
upgrade_tickets(void)
{
	unsigned char	buf[TLS_TICKET_EXPORT_MAX];
	ssize_t		n;
	int		rv;

	n = upgrade_recv(up_sock, buf, sizeof(buf), UPGRADE_REPLY_MS);
	rv = n > 0 ? tls_ticket_import(buf, n) : -1;
	explicit_bzero(buf, sizeof(buf));
	return rv;
}

/* The new master, set up: its stderr from now on is the old one's. */
void
upgrade_stderr(void)
{
	if (up_stderr == -1)
		return;
	dup2(up_stderr, STDERR_FILENO);
	close(up_stderr);
	up_stderr = -1;
}

/*
 * The new master, its workers accepting: says so, and once the old
 * master has let go, takes the pidfile and the control socket.
 */
void
upgrade_ready(struct server *srv)
{
	pid_t		 other;
	char		 c = 0;
	int		 i;

	if (up_sock == -1)
		return;
	if (send(up_sock, "R", 1, MSG_NOSIGNAL) != 1 ||
	    upgrade_recv(up_sock, &c, 1, UPGRADE_REPLY_MS) != 1 || c != 'G')
		log_warnx("upgrade: the old master did not answer; taking "
		    "over anyway");
	close(up_sock);
	up_sock = -1;
	/* Its lock goes with its close; a moment, at most. */
	for (i = 0; i < 50; i++) {
		srv->pidfh = pidfile_open(srv->conf.pidfile, 0644, &other);
		/* EINVAL: libbsd read our pid back with its newline. */
		if (srv->pidfh != NULL || (errno != EEXIST && errno != EINVAL))
			break;
		usleep(100 * 1000);
	}
	if (srv->pidfh == NULL || pidfile_write_pid(srv->pidfh) == -1)
		log_warn("upgrade: pidfile %s", srv->conf.pidfile);
	if (control_open(srv) == -1)
		log_warnx("upgrade: no control socket");
	log_notice("upgrade: serving in place of the old master");
}

/* ------------------------------------------------------ the old master */

/* In the child: moves fd to want, unless it is there already. */
static int
upgrade_place(int fd, int want)
{
	if (fd == want)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, want) == -1 ? -1 : 0;
}

static void __attribute__((noreturn))
upgrade_exec(struct server *srv, int sock, int err)
{
	char		 n[16], pid[16], fd[16], names[CONF_MAX_LISTEN * 8];
	char		*argv[5];
	const char	*name;
	sigset_t	 none;
	int		 i, high[CONF_MAX_LISTEN + 2], herr, argc = 0;

	/* Above every target first, so that no move clobbers another. */
	for (i = 0; i < srv->nlisteners; i++)
		high[i] = fcntl(srv->listeners[i].fd, F_DUPFD_CLOEXEC, 64);
	high[i++] = fcntl(sock, F_DUPFD_CLOEXEC, 64);
	high[i++] = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 64);
	herr = fcntl(err, F_DUPFD_CLOEXEC, 64);
	for (i = 0; i < srv->nlisteners + 2; i++)
		if (high[i] == -1 || upgrade_place(high[i], 3 + i) == -1)
			_exit(127);
	if (herr == -1 || dup2(herr, STDERR_FILENO) == -1)
		_exit(127);
	names[0] = '\0';
	for (i = 0; i < srv->nlisteners; i++) {
		name = srv->listeners[i].cl.status ? "status" :
		    srv->listeners[i].cl.tls ? "https" : "http";
		if (i > 0)
			strlcat(names, ":", sizeof(names));
		strlcat(names, name, sizeof(names));
	}
	snprintf(n, sizeof(n), "%d", srv->nlisteners);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(fd, sizeof(fd), "%d", 3 + srv->nlisteners);
	if (setenv("LISTEN_FDS", n, 1) == -1 ||
	    setenv("LISTEN_PID", pid, 1) == -1 ||
	    setenv("LISTEN_FDNAMES", names, 1) == -1 ||
	    setenv(UPGRADE_ENV, fd, 1) == -1)
		_exit(127);
	/* What the master blocks and ignores is not the new one's. */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	argv[argc++] = self_path;
	if (srv->foreground)
		argv[argc++] = "-d";
	argv[argc++] = "-f";
	argv[argc++] = srv->conf.path;
	argv[argc] = NULL;
	execv(self_path, argv);
	dprintf(STDERR_FILENO, "astleyd: %s: %s\n", self_path,
	    strerror(errno));
	_exit(127);
}

/*
 * -s upgrade: starts the new master.  0 with the client held until the
 * outcome, or -1 with the reason.
 */
int
upgrade_start(struct server *srv, int client, char *err, size_t errlen)
{
	unsigned char	keys[TLS_TICKET_EXPORT_MAX];
	size_t		klen;
	int		sv[2], ep[2];
	pid_t		pid;

	if (up.pid != 0) {
		snprintf(err, errlen, "an upgrade is in progress (new master "
		    "%ld)", (long)up.pid);
		return -1;
	}
	if (self_path[0] == '\0') {
		snprintf(err, errlen, "the binary's path is unknown");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (pipe2(ep, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "pipe2: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	/* The keys first: the new master reads them before it forks. */
	klen = tls_ticket_export(keys, sizeof(keys));
	if (klen == 0 || send(sv[0], keys, klen, MSG_NOSIGNAL) !=
	    (ssize_t)klen) {
		explicit_bzero(keys, sizeof(keys));
		snprintf(err, errlen, "handing over the ticket keys: %s",
		    strerror(errno));
		goto fail;
	}
	explicit_bzero(keys, sizeof(keys));
	switch (pid = fork()) {
	case -1:
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	case 0:
		close(sv[0]);
		close(ep[0]);
		master_child_close();	/* and client: the exec closes it */
		upgrade_exec(srv, sv[1], ep[1]);
	}
	close(sv[1]);
	close(ep[1]);
	up.pid = pid;
	up.sock = sv[0];
	up.err = ep[0];
	up.client = client;
	up.deadline = timecache_mono_ms() + UPGRADE_TIMEOUT_MS;
	up.linelen = 0;
	up.last[0] = '\0';
	log_notice("upgrade: started %s as pid %ld", self_path, (long)pid);
	return 0;
 fail:
	close(sv[0]);
	close(sv[1]);
	close(ep[0]);
	close(ep[1]);
	return -1;
}

/* The old master's descriptors of the upgrade in progress. */
static void
upgrade_close(void)
{
	if (up.sock != -1)
		close(up.sock);
	if (up.err != -1)
		close(up.err);
	if (up.client != -1)
		close(up.client);
	up.sock = up.err = up.client = -1;
}

/*
 * In any child a master forks: none of the upgrade's descriptors (a new
 * master's socket to the old one included: a worker must not be able to
 * speak for its master).
 */
void
upgrade_child_close(void)
{
	if (up_sock != -1)
		close(up_sock);
	upgrade_close();
}

/* The old master's poll set: what to watch while an upgrade runs. */
int
upgrade_pollfds(struct pollfd *pfd)
{
	int	n = 0;

	if (up.pid == 0)
		return 0;
	if (up.sock != -1) {
		pfd[n].fd = up.sock;
		pfd[n++].events = POLLIN;
	}
	if (up.err != -1) {
		pfd[n].fd = up.err;
		pfd[n++].events = POLLIN;
	}
	return n;
}

long long
upgrade_deadline(void)
{
	return up.pid != 0 ? up.deadline : -1;
}

static void
upgrade_end(void)
{
	upgrade_close();
	up.pid = 0;
}

static void
upgrade_failed(const char *why)
{
	log_errx("upgrade failed, the old master keeps serving: %s%s%s",
	    why, up.last[0] ? ": " : "", up.last);
	if (up.client != -1)
		control_reply(up.client, "error upgrade failed, the old master "
		    "keeps serving: %s%s%s", why, up.last[0] ? ": " : "",
		    up.last);
	upgrade_end();
}

/* A log line without its "astleyd: " or "astleyd[PID]: [level] ". */
static const char *
upgrade_unprefix(const char *line)
{
	const char	*p = line;

	if (strncmp(p, "astleyd", 7) != 0)
		return line;
	p += 7;
	if (*p == '[') {
		p += 1 + strspn(p + 1, "0123456789");
		if (*p++ != ']')
			return line;
	}
	if (strncmp(p, ": ", 2) != 0)
		return line;
	p += 2;
	/* And its level: "[emerg] ". */
	if (*p == '[' && strchr(p, ']') != NULL && strchr(p, ']')[1] == ' ')
		p = strchr(p, ']') + 2;
	return p;
}

/* The new master's stderr, a line at a time, into our log. */
static void
upgrade_read_stderr(void)
{
	char	buf[512], *p;
	ssize_t	n;

	while ((n = read(up.err, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p++) {
			if (*p != '\n' && up.linelen < sizeof(up.line) - 1) {
				up.line[up.linelen++] = *p;
				continue;
			}
			if (*p != '\n')
				continue;	/* too long: the rest is cut */
			up.line[up.linelen] = '\0';
			up.linelen = 0;
			if (up.line[0] == '\0')
				continue;
			log_notice("upgrade: new master: %s", up.line);
			strlcpy(up.last, upgrade_unprefix(up.line),
			    sizeof(up.last));
		}
	}
	if (n == 0) {
		/* A last line without its newline. */
		if (up.linelen > 0) {
			up.line[up.linelen] = '\0';
			up.linelen = 0;
			log_notice("upgrade: new master: %s", up.line);
			strlcpy(up.last, upgrade_unprefix(up.line),
			    sizeof(up.last));
		}
		close(up.err);
		up.err = -1;
	}
}

/*
 * After the poll: 1 once the new master serves and was told to take
 * over (the caller gives up the pidfile and control socket first, in
 * upgrade_handover), else 0.
 */
int
upgrade_event(struct server *srv)
{
	char	c;
	ssize_t	n;

	(void)srv;
	if (up.pid == 0)
		return 0;
	if (up.err != -1)
		upgrade_read_stderr();
	if (up.sock == -1)
		return 0;
	n = recv(up.sock, &c, 1, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 1 && c == 'R')
		return 1;
	/* Closed without a word: its exit, reaped soon, says more. */
	close(up.sock);
	up.sock = -1;
	return 0;
}

/*
 * The new master serves: the pidfile and the control socket are given
 * up by the caller; tell the new one to take them, and the client.
 */
void
upgrade_handover(void)
{
	if (up.err != -1)
		upgrade_read_stderr();
	if (send(up.sock, "G", 1, MSG_NOSIGNAL) != 1)
		log_warn("upgrade: take-over message");
	log_notice("upgrade: new master %ld serving; finishing", (long)up.pid);
	if (up.client != -1)
		control_reply(up.client, "ok upgrade: new master %ld serving, "
		    "old master %ld finishing", (long)up.pid, (long)getpid());
	upgrade_end();
}

/* A child reaped: 1 if it was the new master, which did not make it. */
int
upgrade_reaped(pid_t pid, int st)
{
	char	why[128];

	if (up.pid == 0 || pid != up.pid)
		return 0;
	if (up.err != -1)
		upgrade_read_stderr();
	if (WIFSIGNALED(st))
		snprintf(why, sizeof(why), "the new master was killed by "
		    "signal %d", WTERMSIG(st));
	else
		snprintf(why, sizeof(why), "the new master exited with status "
		    "%d", WEXITSTATUS(st));
	upgrade_failed(why);
	return 1;
}

/*
 * The old master is stopping before the new one served: the new one
 * goes too (it holds nothing yet: the pidfile and control socket pass
 * only on "G"), and whoever asked is told.
 */
void
upgrade_abort(void)
{
	if (up.pid == 0)
		return;
	kill(up.pid, SIGTERM);
	log_warnx("upgrade abandoned: the server is stopping");
	if (up.client != -1)
		control_reply(up.client, "error upgrade abandoned: the server "
		    "is stopping");
	up.pid = 0;	/* reaped as a stranger */
	upgrade_end();
}

/* Not serving in time: the new master goes, the old one stays. */
void
upgrade_expire(long long now)
{
	char	why[128];

	if (up.pid == 0 || now < up.deadline)
		return;
	kill(up.pid, SIGKILL);
	snprintf(why, sizeof(why), "the new master was not serving within "
	    "%d s", UPGRADE_TIMEOUT_MS / 1000);
	up.pid = 0;	/* reaped as a stranger */
	upgrade_failed(why);
}

int
upgrade_running(void)
{
	return up.pid != 0;
}
