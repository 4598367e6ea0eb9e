/*
 * A worker: drop privileges, then wait on every listener and serve one
 * connection at a time.  EPOLLEXCLUSIVE wakes one idle worker per new
 * connection instead of all of them.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"

#define WORKER_WAKE	UINT32_MAX	/* epoll data of the wake pipe */

volatile sig_atomic_t	worker_state = WORKER_RUN;
volatile sig_atomic_t	worker_conn_fd = -1;	/* the client, if any */
static int		worker_wake = -1;	/* eventfd: wakes epoll */

/*
 * Stop requests are never blocked, and no wait can miss one: the handler
 * sets worker_state, then makes every wait that must end see it.  epoll
 * sees the wake eventfd; a fast stop (TERM, INT) also shuts the client's
 * read side, so conn.c's blocking idle read returns EOF whenever the
 * signal came.  A graceful stop (QUIT, HUP) ends no wait on a client: the
 * next request is answered, with "Connection: close".  shutdown(2) and
 * write(2) are async-signal-safe.
 */
static void
worker_sighdlr(int sig)
{
	static const uint64_t	one = 1;
	int			saved = errno;

	switch (sig) {
	case SIGQUIT:
	case SIGHUP:
		if (worker_state == WORKER_RUN)
			worker_state = WORKER_QUIT;
		break;
	default:
		worker_state = WORKER_STOP;
		if (worker_conn_fd != -1)
			shutdown(worker_conn_fd, SHUT_RD);
	}
	if (write(worker_wake, &one, sizeof(one)) == -1)
		errno = saved;	/* saturated: a wake-up is pending anyway */
	errno = saved;
}

/*
 * setgroups, setresgid, setresuid, then prove root cannot come back: from
 * here on the process may parse hostile bytes.
 */
static void
worker_drop_privileges(const struct conf *conf)
{
	if (geteuid() != 0)
		return;		/* started unprivileged: nothing to drop */
	if (setgroups(1, &conf->gid) == -1 ||
	    setresgid(conf->gid, conf->gid, conf->gid) == -1 ||
	    setresuid(conf->uid, conf->uid, conf->uid) == -1) {
		log_warn("cannot drop privileges to %s:%s", conf->user,
		    conf->group);
		exit(WORKER_EXIT_FATAL);
	}
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1) {
		log_warnx("privileges could be regained after dropping them");
		exit(WORKER_EXIT_FATAL);
	}
#if defined(__SANITIZE_ADDRESS__) || defined(ASTLEYD_SANITIZE)
	/*
	 * LeakSanitizer checks at exit through ptrace of its own threads,
	 * which a process that changed uid may not do.  Sanitizer builds
	 * only: a release worker stays non-dumpable.
	 */
	prctl(PR_SET_DUMPABLE, 1);
#endif
}

static void
worker_signals(void)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP };
	size_t			 i;

	if ((worker_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		log_warn("eventfd");
		exit(WORKER_EXIT_FATAL);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_sighdlr;
	sigfillset(&sa.sa_mask);
	/* Writes of a response in progress go on after a fast stop. */
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	sa.sa_flags = 0;
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* The master blocks what it handles; a worker blocks nothing. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void
worker_main(struct server *srv)
{
	struct epoll_event	 ev;
	struct timespec		 ts;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	pid_t			 master = getppid(), self;
	int			 epfd, fd, i, n;

	setproctitle("worker process");
	worker_signals();
	/* What only the master may hold. */
	if (srv->pidfh != NULL)
		pidfile_close(srv->pidfh);
	srv->pidfh = NULL;
	if (srv->lifeline != -1)
		close(srv->lifeline);
	srv->lifeline = -1;
	if (srv->ctl_fd != -1)
		close(srv->ctl_fd);
	srv->ctl_fd = -1;
	close(srv->ready[0]);
	if (!srv->foreground)
		log_detach();

	worker_drop_privileges(&srv->conf);
	/* Exit with the master, even if it is killed outright. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		exit(WORKER_EXIT_OK);

	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		log_warn("epoll_create1");
		exit(WORKER_EXIT_FATAL);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u32 = WORKER_WAKE;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, worker_wake, &ev) == -1) {
		log_warn("epoll_ctl");
		exit(WORKER_EXIT_FATAL);
	}
	for (i = 0; i < srv->nlisteners; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.u32 = i;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, srv->listeners[i].fd,
		    &ev) == -1) {
			log_warn("epoll_ctl %s", srv->listeners[i].cl.name);
			exit(WORKER_EXIT_FATAL);
		}
	}
	if (http_init() == -1 || conn_init(&srv->conf) == -1) {
		log_warn("worker init");
		exit(WORKER_EXIT_FATAL);
	}
	/* Tell the master this worker accepts (reload and start wait on it). */
	self = getpid();
	if (write(srv->ready[1], &self, sizeof(self)) != sizeof(self))
		log_warn("ready pipe");
	close(srv->ready[1]);

	while (worker_state == WORKER_RUN) {
		n = epoll_wait(epfd, &ev, 1, -1);
		if (n == -1) {
			if (errno != EINTR)
				log_warn("epoll_pwait");
			continue;
		}
		/*
		 * A stop that came with a connection still takes it: with
		 * EPOLLEXCLUSIVE this worker's wake-up was the one for it.
		 */
		if (n == 0 || ev.data.u32 == WORKER_WAKE)
			continue;
		i = ev.data.u32;
		sslen = sizeof(ss);
		/*
		 * A cleartext client socket stays blocking, for conn.c's
		 * blocking idle read; OpenSSL gets a non-blocking one.
		 */
		fd = accept4(srv->listeners[i].fd, (struct sockaddr *)&ss,
		    &sslen, SOCK_CLOEXEC | (srv->listeners[i].cl.tls ?
		    SOCK_NONBLOCK : 0));
		if (fd == -1) {
			/* Another worker took it, or the client gave up. */
			if (errno == EAGAIN || errno == ECONNABORTED ||
			    errno == EINTR)
				continue;
			log_warn("accept on %s", srv->listeners[i].cl.name);
			/* Out of descriptors or memory: let it pass. */
			ts.tv_sec = 0;
			ts.tv_nsec = 100 * 1000000;
			ppoll(NULL, 0, &ts, NULL);
			continue;
		}
		conn_serve(srv, fd, srv->listeners[i].cl.tls,
		    (struct sockaddr *)&ss);
	}

	close(epfd);
	close(worker_wake);
	conn_free();
	http_free();
	listeners_close(srv->listeners, srv->nlisteners);
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_wipe();
	log_close();
	exit(WORKER_EXIT_OK);
}
