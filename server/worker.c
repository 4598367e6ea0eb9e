/*
 * A worker: drop privileges, then wait on every listener and serve one
 * connection at a time.  EPOLLEXCLUSIVE wakes one idle worker per new
 * connection instead of all of them.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"

volatile sig_atomic_t	worker_state = WORKER_RUN;
sigset_t		worker_waitmask;	/* unblocked while waiting */

static void
worker_sighdlr(int sig)
{
	switch (sig) {
	case SIGQUIT:
	case SIGHUP:
		if (worker_state == WORKER_RUN)
			worker_state = WORKER_QUIT;
		break;
	default:
		worker_state = WORKER_STOP;
	}
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
	sigset_t		 block;
	int			 sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP };
	size_t			 i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&block);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	/* Handlers only set worker_state; waits unblock them atomically. */
	sa.sa_handler = worker_sighdlr;
	sa.sa_mask = block;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(&worker_waitmask);
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
		n = epoll_pwait(epfd, &ev, 1, -1, &worker_waitmask);
		if (n == -1) {
			if (errno != EINTR)
				log_warn("epoll_pwait");
			continue;
		}
		if (n == 0)
			continue;
		i = ev.data.u32;
		sslen = sizeof(ss);
		fd = accept4(srv->listeners[i].fd, (struct sockaddr *)&ss,
		    &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			/* Another worker took it, or the client gave up. */
			if (errno == EAGAIN || errno == ECONNABORTED ||
			    errno == EINTR)
				continue;
			log_warn("accept on %s", srv->listeners[i].cl.name);
			/* Out of descriptors or memory: let it pass. */
			ts.tv_sec = 0;
			ts.tv_nsec = 100 * 1000000;
			ppoll(NULL, 0, &ts, &worker_waitmask);
			continue;
		}
		conn_serve(srv, fd, srv->listeners[i].cl.tls,
		    (struct sockaddr *)&ss);
	}

	close(epfd);
	conn_free();
	http_free();
	listeners_close(srv->listeners, srv->nlisteners);
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_wipe();
	log_close();
	exit(WORKER_EXIT_OK);
}
