/*
 * The control socket: `astleyd -s reload|stop|quit|reopen` asks the
 * running master through a UNIX socket next to the pidfile and waits for
 * the outcome, so a failed reload fails where the operator typed it (a
 * signal can only say it was sent).  Mode 0600 and a getpeereid check:
 * only root and the master's own user may ask.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"

#define CONTROL_READ_MS	1000	/* a client must send its command at once */

static const char *const control_names[CONTROL_MAX] = {
	[CONTROL_RELOAD] = "reload",
	[CONTROL_STOP] = "stop",
	[CONTROL_QUIT] = "quit",
	[CONTROL_REOPEN] = "reopen",
	[CONTROL_STATUS] = "status",
	[CONTROL_STATUS_JSON] = "status-json",
	[CONTROL_UPGRADE] = "upgrade",
};

int
control_command(const char *name)
{
	int	i;

	for (i = 0; i < CONTROL_MAX; i++)
		if (strcmp(name, control_names[i]) == 0)
			return i;
	return -1;
}

/* /run/astleyd.pid -> /run/astleyd.sock */
int
control_path(const char *pidfile, char *out, size_t outlen)
{
	size_t	n = strlen(pidfile);

	if (n > 4 && strcmp(pidfile + n - 4, ".pid") == 0)
		n -= 4;
	if (snprintf(out, outlen, "%.*s.sock", (int)n, pidfile) >=
	    (int)outlen || strlen(out) >= sizeof(((struct sockaddr_un *)0)->
	    sun_path))
		return -1;
	return 0;
}

static int
control_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path))
		return -1;
	return 0;
}

/*
 * Called with the pidfile locked, so a socket file left there belongs to
 * a dead master and may be replaced.
 */
int
control_open(struct server *srv)
{
	struct sockaddr_un	sun;
	mode_t			old;
	int			fd;

	if (control_path(srv->conf.pidfile, srv->ctl_path,
	    sizeof(srv->ctl_path)) == -1 ||
	    control_addr(srv->ctl_path, &sun) == -1) {
		log_warnx("control socket path for %s too long",
		    srv->conf.pidfile);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		log_warn("control socket");
		return -1;
	}
	unlink(srv->ctl_path);
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("control socket %s", srv->ctl_path);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(srv->ctl_path, 0600) == -1 || listen(fd, 8) == -1) {
		log_warn("control socket %s", srv->ctl_path);
		close(fd);
		unlink(srv->ctl_path);
		return -1;
	}
	srv->ctl_fd = fd;
	return 0;
}

void
control_close(struct server *srv)
{
	if (srv->ctl_fd == -1)
		return;
	close(srv->ctl_fd);
	unlink(srv->ctl_path);
	srv->ctl_fd = -1;
}

void
control_reply(int fd, const char *fmt, ...)
{
	char	buf[1200];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* A short control reply fits the socket buffer: no waiting. */
	if (send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		log_warn("control reply");
}

/*
 * The scoreboard as text or JSON (status.c), after "ok ".  It is built
 * whole, then sent without waiting: even a full scoreboard fits the
 * socket's buffer, and the master must not block on a client.
 */
void
control_send_status(int fd, size_t (*format)(char *, size_t))
{
	char	*buf = NULL, *p;
	size_t	 need, len = 0;
	int	 tries;

	/* Workers count on meanwhile: room to spare, and again if short. */
	for (need = format(NULL, 0) + 4096, tries = 0; tries < 4;
	    need = len + 4096, tries++) {
		if ((p = realloc(buf, 3 + need)) == NULL) {
			free(buf);
			control_reply(fd, "error status: out of memory");
			return;
		}
		buf = p;
		if ((len = format(buf + 3, need)) < need)
			break;
	}
	if (len >= need) {
		free(buf);
		control_reply(fd, "error status: the scoreboard keeps growing");
		return;
	}
	memcpy(buf, "ok ", 3);
	if (send(fd, buf, 3 + len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)(3 + len))
		log_warn("control status reply");
	free(buf);
}

/*
 * Accepts one client and reads its command.  Returns the command with
 * *fdp set to the client, or -1 (the client is already closed).
 */
int
control_accept(struct server *srv, int *fdp)
{
	struct pollfd	 pfd;
	char		 buf[32] = "";
	long long	 deadline, left;
	uid_t		 uid;
	gid_t		 gid;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, cmd, refused;

	if ((fd = accept4(srv->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return -1;
	refused = getpeereid(fd, &uid, &gid) == -1 ||
	    (uid != 0 && uid != geteuid());
	/* One deadline for the whole command: the master waits on it. */
	deadline = timecache_mono_ms() + CONTROL_READ_MS;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (len < sizeof(buf) - 1 && memchr(buf, '\n', len) == NULL) {
		left = deadline - timecache_mono_ms();
		if (left <= 0 || poll(&pfd, 1, left) != 1 ||
		    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	/*
	 * Refused once its command is read: a close with the command
	 * unread would reset the connection, and the reason with it.
	 */
	if (refused) {
		log_warnx("control: refused a client with uid %ld",
		    (long)uid);
		control_reply(fd, "error permission denied: only root and "
		    "the master's user may ask");
		close(fd);
		return -1;
	}
	if ((cmd = control_command(buf)) == -1) {
		control_reply(fd, "error unknown command");
		close(fd);
		return -1;
	}
	*fdp = fd;
	return cmd;
}

/*
 * Between its last close and its end the master still exits (flushing,
 * sanitizer checks): wait until the process is gone or a zombie, so that
 * "stopped" means it.
 */
static void
control_wait_gone(pid_t pid, long long deadline)
{
	struct timespec	 ts = { 0, 10 * 1000000 };
	char		 path[64], line[256], *state;
	ssize_t		 n;
	int		 fd;

	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	while (timecache_mono_ms() < deadline) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			return;		/* gone */
		n = read(fd, line, sizeof(line) - 1);
		close(fd);
		if (n <= 0)
			return;
		line[n] = '\0';
		/* "pid (comm) S ...": the state follows the last ')'. */
		if ((state = strrchr(line, ')')) != NULL &&
		    (state[1] == '\0' || state[2] == 'Z' || state[2] == 'X'))
			return;
		nanosleep(&ts, NULL);
	}
}

/*
 * The client side of status: everything the master sends, until it
 * closes, to stdout without the "ok " (or to stderr, an error).
 */
static int
control_dump(int fd, long long deadline)
{
	struct pollfd	 pfd;
	char		 buf[4096];
	ssize_t		 n;
	size_t		 seen = 0, skip;
	long long	 left;
	int		 ok = -1;

	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		left = deadline - timecache_mono_ms();
		if (left <= 0 || poll(&pfd, 1, left) != 1) {
			fprintf(stderr, "astleyd: status: no answer\n");
			return 1;
		}
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			break;
		skip = 0;
		if (seen == 0)
			ok = n >= 3 && memcmp(buf, "ok ", 3) == 0;
		if (seen == 0)
			skip = ok ? 3 : n >= 6 && memcmp(buf, "error ", 6) == 0 ?
			    6 : 0;
		seen += n;
		fwrite(buf + skip, 1, n - skip, ok ? stdout : stderr);
	}
	fflush(stdout);
	return ok == 1 && n == 0 ? 0 : 1;
}

/*
 * The client side, for -s: sends the command and prints the master's
 * reply lines.  Exit status 0 when the first word is "ok".
 */
int
control_client(const char *pidfile, const char *name, int timeout_ms)
{
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	char			 path[PATH_MAX], buf[2048], *nl;
	size_t			 len = 0;
	ssize_t			 n = -1;
	int			 fd, ok = -1, cmd = control_command(name);
	long long		 deadline, left;
	struct ucred		 cred;
	socklen_t		 credlen = sizeof(cred);
	pid_t			 master = -1;

	if (control_path(pidfile, path, sizeof(path)) == -1 ||
	    control_addr(path, &sun) == -1) {
		fprintf(stderr, "astleyd: control socket path for %s too "
		    "long\n", pidfile);
		return 1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		/* A socket we may not use is no sign of a master gone. */
		if (errno == EACCES || errno == EPERM)
			fprintf(stderr, "astleyd: permission denied: control "
			    "socket %s: %s (only root and the master's user "
			    "may ask)\n", path, strerror(errno));
		else
			fprintf(stderr, "astleyd: not running? control socket "
			    "%s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return 1;
	}
	/* Who answers: stop waits for that process to be gone. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0)
		master = cred.pid;
	dprintf(fd, "%s\n", name);
	deadline = timecache_mono_ms() + timeout_ms;
	if (cmd == CONTROL_STATUS || cmd == CONTROL_STATUS_JSON) {
		ok = control_dump(fd, deadline);
		close(fd);
		return ok;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		left = deadline - timecache_mono_ms();
		if (left <= 0 || poll(&pfd, 1, left) != 1) {
			fprintf(stderr, "astleyd: %s: no answer within %d s\n",
			    name, timeout_ms / 1000);
			break;
		}
		if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0) {
			/* The master closes it as the last thing it does. */
			if (ok == 0 && (cmd == CONTROL_STOP ||
			    cmd == CONTROL_QUIT)) {
				control_wait_gone(master, deadline);
				printf("%s: stopped\n", name);
			}
			break;
		}
		len += n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (ok == -1)
				ok = strncmp(buf, "ok ", 3) == 0 ? 0 : 1;
			fprintf(ok == 0 ? stdout : stderr, "%s\n",
			    ok == 0 ? buf + 3 : strncmp(buf, "error ", 6) == 0 ?
			    buf + 6 : buf);
			len -= nl + 1 - buf;
			memmove(buf, nl + 1, len + 1);
		}
		/* Only stop and quit wait for the master to be gone. */
		if (ok == 1 || (ok == 0 && cmd != CONTROL_STOP &&
		    cmd != CONTROL_QUIT))
			break;
	}
	close(fd);
	return ok == 0 && (n == 0 || (cmd != CONTROL_STOP &&
	    cmd != CONTROL_QUIT)) ? 0 : 1;
}

/*
 * As libbsd's pidfile_write, with the newline it leaves out, which
 * readers of pidfiles (shells, start-stop-daemon, monitoring) expect.
 */
int
pidfile_write_pid(struct pidfh *pfh)
{
	char	buf[32];
	int	fd, n;

	if ((fd = pidfile_fileno(pfh)) == -1)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, n, 0) != n)
		return -1;
	return 0;
}

/*
 * The running master's pid, for "already running": libbsd's
 * pidfile_open reads it back only without a newline and says EINVAL
 * for ours.
 */
int
pidfile_read_pid(const char *path, pid_t *pid)
{
	char		 buf[32];
	const char	*errstr;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	*pid = strtonum(buf, 1, INT_MAX, &errstr);
	return errstr == NULL ? 0 : -1;
}
