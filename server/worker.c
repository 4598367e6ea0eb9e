/*
 * A worker: drop privileges, then one epoll loop over the listeners and
 * every connection the worker holds.  It never waits on one client: a
 * connection that cannot go on is parked (conn.c), and the loop serves
 * whichever is ready, accepts in batches and expires deadlines.
 * EPOLLEXCLUSIVE wakes one worker per new connection instead of all.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"
#include "status.h"

#define WORKER_EVENTS	64	/* epoll events per wake-up */
#define WORKER_ACCEPTS	64	/* accepts per ready listener per turn */
#define WORKER_PAUSE_MS	100	/* after accept fails for lack of fds */
#define WORKER_NOFILE	64	/* descriptors besides the connections */

static volatile sig_atomic_t	worker_state = WORKER_RUN;
static volatile sig_atomic_t	worker_drain;	/* SIGUSR2: say 503 on /healthz */
static int			worker_wake = -1;	/* eventfd: wakes epoll */
static int			worker_epfd = -1;
static int			worker_watching;	/* listeners in epoll */
static long long		worker_paused;		/* accept again then */

/*
 * Stop requests are never blocked, and no wait can miss one: the handler
 * sets worker_state, then writes the wake eventfd that epoll watches.
 * write(2) is async-signal-safe.
 */
static void
worker_sighdlr(int sig)
{
	static const uint64_t	one = 1;
	int			saved = errno;

	switch (sig) {
	case SIGUSR2:
		worker_drain = 1;
		break;
	case SIGQUIT:
	case SIGHUP:
		if (worker_state == WORKER_RUN)
			worker_state = WORKER_QUIT;
		break;
	default:
		worker_state = WORKER_STOP;
	}
	if (write(worker_wake, &one, sizeof(one)) == -1)
		errno = saved;	/* saturated: a wake-up is pending anyway */
	errno = saved;
}

/*
 * setgroups, setresgid, setresuid, then prove root cannot come back: from
 * here on the process may parse hostile bytes.
 */
void
worker_drop_privileges(const struct conf *conf)
{
	if (geteuid() != 0)
		return;		/* started unprivileged: nothing to drop */
	if (setgroups(1, &conf->gid) == -1 ||
	    setresgid(conf->gid, conf->gid, conf->gid) == -1 ||
	    setresuid(conf->uid, conf->uid, conf->uid) == -1) {
		log_err("cannot drop privileges to %s:%s", conf->user,
		    conf->group);
		exit(WORKER_EXIT_FATAL);
	}
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1) {
		log_errx("privileges could be regained after dropping them");
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
	int			 sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP,
				    SIGUSR2 };
	size_t			 i;

	if ((worker_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		log_err("eventfd");
		exit(WORKER_EXIT_FATAL);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_sighdlr;
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	sa.sa_flags = 0;
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	/*
	 * Log rotation is the master's (`pkill -USR1 astleyd` reaches the
	 * workers too): a worker must not die of it mid-response.
	 */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/* The master blocks what it handles; a worker blocks nothing. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Descriptors a worker needs: its connections and its own few. */
long long
worker_nofile(const struct conf *conf)
{
	return conf->worker_connections + conf->nlisten + WORKER_NOFILE;
}

/*
 * worker_connections, or fewer if the descriptor limit the master could
 * set is lower (the master warned about it): a worker at its cap evicts
 * or stops accepting, which beats failing accept4 with EMFILE.
 */
static int
worker_connections(const struct conf *conf)
{
	struct rlimit	rl;
	long long	n = conf->worker_connections;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long long)rl.rlim_cur < worker_nofile(conf))
		n = (long long)rl.rlim_cur - conf->nlisten - WORKER_NOFILE;
	return n < 1 ? 1 : (int)n;
}

/*
 * Listeners in or out of the epoll set: out while the worker has no room
 * for another connection, or is stopping.  EPOLLEXCLUSIVE cannot be
 * modified, only deleted and added again.
 */
static void
worker_watch(struct server *srv, int on)
{
	struct epoll_event	ev;
	int			i;

	if (worker_watching == on)
		return;
	for (i = 0; i < srv->nlisteners; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.ptr = &srv->listeners[i];
		if (epoll_ctl(worker_epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
		    srv->listeners[i].fd, &ev) == -1) {
			log_err("epoll_ctl %s", srv->listeners[i].cl.name);
			exit(WORKER_EXIT_FATAL);
		}
	}
	worker_watching = on;
}

/* Accepts a batch from a ready listener, as long as there is room. */
static void
worker_accept(struct server *srv, struct listener *l)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, n;

	for (n = 0; n < WORKER_ACCEPTS; n++) {
		if (!conn_room(1)) {
			worker_watch(srv, 0);
			return;
		}
		sslen = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1) {
			/* Drained, taken by another worker, or given up. */
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ECONNABORTED)
				continue;
			/* Out of descriptors or memory: let it pass. */
			log_warn("accept on %s", l->cl.name);
			worker_watch(srv, 0);
			worker_paused = timecache_mono_ms() + WORKER_PAUSE_MS;
			return;
		}
		conn_open(fd, &l->cl, (struct sockaddr *)&ss, sslen);
	}
}

/* After a wake-up: what a stop request asks for. */
static void
worker_control(struct server *srv)
{
	uint64_t	n;

	if (read(worker_wake, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("eventfd");
	if (worker_drain || srv->draining) {
		conn_drain();
		status_state(STATUS_DRAINING);
	}
	if (worker_state == WORKER_RUN)
		return;
	status_state(STATUS_FINISHING);
	worker_watch(srv, 0);
	if (worker_state == WORKER_QUIT)
		conn_quit();
	else
		conn_stop();
}

static void
worker_init(struct server *srv)
{
	struct epoll_event	 ev;
	pid_t			 master = getppid(), self;

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
	/* Only now: a process titled a worker never runs as root. */
	proctitle_set("worker process");
	/* Exit with the master, even if it is killed outright. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		exit(WORKER_EXIT_OK);

	if ((worker_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		log_err("epoll_create1");
		exit(WORKER_EXIT_FATAL);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &worker_wake;
	if (epoll_ctl(worker_epfd, EPOLL_CTL_ADD, worker_wake, &ev) == -1) {
		log_err("epoll_ctl");
		exit(WORKER_EXIT_FATAL);
	}
	if (http_init() == -1 || conn_init(&srv->conf, srv->ssl_ctx,
	    worker_epfd, worker_connections(&srv->conf)) == -1) {
		log_err("worker init");
		exit(WORKER_EXIT_FATAL);
	}
	status_state(srv->draining ? STATUS_DRAINING : STATUS_SERVING);
	if (srv->draining)
		conn_drain();	/* forked during a drain */
	worker_watch(srv, 1);
	/* Last: everything the worker will use is an open descriptor now. */
	if (sandbox_enter(srv->conf.sandbox) == -1)
		exit(WORKER_EXIT_FATAL);
	/* Tell the master this worker accepts (reload and start wait on it). */
	self = getpid();
	if (write(srv->ready[1], &self, sizeof(self)) != sizeof(self))
		log_warn("ready pipe");
	close(srv->ready[1]);
}

/*
 * Wait for whatever is ready, serve it, run what yielded, expire
 * deadlines; until a stop request and no connection left.
 */
static void
worker_loop(struct server *srv)
{
	struct epoll_event	 evs[WORKER_EVENTS];
	struct listener		*l;
	long long		 pause;
	int			 i, n, timeout;

	while (worker_state == WORKER_RUN || conn_count() > 0) {
		timeout = conn_timeout();
		if (worker_paused != 0) {
			pause = worker_paused - timecache_mono_ms();
			if (pause <= 0) {
				worker_paused = 0;
				worker_watch(srv, worker_state == WORKER_RUN);
			} else if (timeout == -1 || pause < timeout)
				timeout = pause;
		}
		n = epoll_wait(worker_epfd, evs, WORKER_EVENTS, timeout);
		if (n == -1 && errno != EINTR) {
			log_err("epoll_wait");
			exit(WORKER_EXIT_FATAL);
		}
		for (i = 0; i < n; i++) {
			l = evs[i].data.ptr;
			if (evs[i].data.ptr == &worker_wake)
				worker_control(srv);
			else if (l >= srv->listeners &&
			    l < srv->listeners + srv->nlisteners) {
				if (worker_watching)
					worker_accept(srv, l);
			} else
				conn_event(evs[i].data.ptr, evs[i].events);
		}
		conn_run();
		conn_expire();
		/*
		 * A worker with no room leaves the listeners before another
		 * connection wakes it rather than one with room, and takes
		 * them back once a connection closes or becomes idle.
		 */
		worker_watch(srv, worker_state == WORKER_RUN &&
		    worker_paused == 0 && conn_room(worker_watching));
	}
}

static void __attribute__((noreturn))
worker_exit(struct server *srv)
{
	conn_free();
	close(worker_epfd);
	close(worker_wake);
	http_free();
	listeners_close(srv->listeners, srv->nlisteners);
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_wipe();
	log_close();
	exit(WORKER_EXIT_OK);
}

void
worker_main(struct server *srv)
{
	worker_init(srv);
	worker_loop(srv);
	worker_exit(srv);
}
