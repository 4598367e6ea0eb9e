/*
 * The master: no client I/O, only a table of worker slots, signals,
 * reloads and the control socket.  Signal handlers set flags; the loop
 * below blocks every signal it handles and unblocks them only inside
 * ppoll, so none is lost between a check and the sleep (nginx's
 * ngx_master_process_cycle).
 */
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"
#include "status.h"

#define MASTER_MAX_SLOTS	STATUS_SLOTS	/* one scoreboard slot each */
#define MASTER_MAX_WAITING	8	/* control clients awaiting an outcome */
#define RESPAWN_MIN_MS		100
#define RESPAWN_MAX_MS		10000
#define WORKER_SICK_MS		1000	/* dying sooner counts as a failure */

struct slot {
	pid_t		 pid;		/* 0: free */
	int		 generation;
	int		 ready;		/* has said it accepts */
	long long	 started;
	long long	 kill_at;	/* told to finish: SIGKILL then, or 0 */
};

/* A control client told the outcome once its generation is serving. */
struct waiting {
	int		 fd;		/* -1: free */
	int		 cmd;
	int		 generation;
};

static volatile sig_atomic_t	sig_chld, sig_hup, sig_term, sig_quit,
				sig_usr1;

static struct slot	slots[MASTER_MAX_SLOTS];
static struct waiting	waiting[MASTER_MAX_WAITING];
static long long	respawn_at;	/* no spawning before this */
static int		respawn_delay;	/* grows while workers keep failing */
static int		stopping;	/* 0, WORKER_QUIT or WORKER_STOP */
static int		started;	/* the first generation was ready */
static int		start_failed;	/* a daemon's workers could not start */
static int		reloading;	/* sd_notify READY=1 still owed */
static int		ctl_client = -1; /* the control client being served */
static long long	drain_until;	/* a graceful stop starts then */
static int		keyproc_lost;	/* the key process died: renew */

static void	master_stop(struct server *, int);
static void	master_renew(struct server *);

static void
master_sighdlr(int sig)
{
	switch (sig) {
	case SIGCHLD:
		sig_chld = 1;
		break;
	case SIGHUP:
		sig_hup = 1;
		break;
	case SIGQUIT:
		sig_quit = 1;
		break;
	case SIGUSR1:
		sig_usr1 = 1;
		break;
	case SIGUSR2:
		/*
		 * The workers' drain signal means nothing to the master; it
		 * is blocked here only so that a worker just forked holds
		 * it pending until its own handler is in place.
		 */
		break;
	default:
		sig_term = 1;
	}
}

/* The signals the master acts on: blocked but inside ppoll. */
static const int	master_sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT,
			    SIGQUIT, SIGUSR1, SIGUSR2 };

void
master_sigset(sigset_t *set)
{
	size_t	i;

	sigemptyset(set);
	for (i = 0; i < sizeof(master_sigs) / sizeof(master_sigs[0]); i++)
		sigaddset(set, master_sigs[i]);
}

static void
master_signals(sigset_t *waitmask)
{
	struct sigaction	 sa;
	sigset_t		 block;
	size_t			 i;

	master_sigset(&block);
	sigprocmask(SIG_BLOCK, &block, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_sighdlr;
	sa.sa_mask = block;
	for (i = 0; i < sizeof(master_sigs) / sizeof(master_sigs[0]); i++)
		sigaction(master_sigs[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(waitmask);
}

/* Workers of a generation (-1: all), counting only ready ones if asked. */
static int
master_count(int generation, int ready)
{
	int	i, n = 0;

	for (i = 0; i < MASTER_MAX_SLOTS; i++)
		if (slots[i].pid != 0 && (!ready || slots[i].ready) &&
		    (generation < 0 || slots[i].generation == generation))
			n++;
	return n;
}

/*
 * Signals workers; one told to finish (QUIT, TERM) gets shutdown_timeout
 * to do so before master_expire kills it, on reload as on stop.  USR2
 * (drain) asks nothing to finish.
 */
static void
master_signal_workers(struct server *srv, int sig, int except_generation)
{
	struct slot	*s;
	int		 i;

	for (i = 0; i < MASTER_MAX_SLOTS; i++) {
		s = &slots[i];
		if (s->pid == 0 || s->generation == except_generation)
			continue;
		if (kill(s->pid, sig) == -1 && errno != ESRCH)
			log_warn("cannot signal worker %ld (signal %d)",
			    (long)s->pid, sig);
		if (s->kill_at == 0 && sig != SIGKILL && sig != SIGUSR2)
			s->kill_at = timecache_mono_ms() + srv->conf.shutdown_timeout;
	}
}

/* SIGKILLs workers past their deadline; the next deadline, or -1. */
static long long
master_expire(void)
{
	long long	 now = timecache_mono_ms(), next = -1;
	struct slot	*s;
	int		 i;

	for (i = 0; i < MASTER_MAX_SLOTS; i++) {
		s = &slots[i];
		if (s->pid == 0 || s->kill_at == 0)
			continue;
		if (now >= s->kill_at) {
			log_warnx("worker %ld still busy after shutdown_timeout: "
			    "killing it", (long)s->pid);
			kill(s->pid, SIGKILL);
			s->kill_at = now + 1000;	/* until it is reaped */
		}
		if (next == -1 || s->kill_at < next)
			next = s->kill_at;
	}
	return next;
}

/* In a child: nothing of the master's control traffic goes along. */
void
master_child_close(void)
{
	int	i;

	for (i = 0; i < MASTER_MAX_WAITING; i++)
		if (waiting[i].fd != -1)
			close(waiting[i].fd);
	if (ctl_client != -1)
		close(ctl_client);
	upgrade_child_close();
}

/* The slot of a child, or NULL (the key process, a stranger). */
static struct slot *
master_slot(pid_t pid)
{
	int	i;

	for (i = 0; i < MASTER_MAX_SLOTS; i++)
		if (slots[i].pid == pid)
			return &slots[i];
	return NULL;
}

static int
master_spawn(struct server *srv)
{
	struct slot	*s;
	pid_t		 pid;
	int		 kfd = -1;

	if ((s = master_slot(0)) == NULL) {
		log_warnx("no free worker slot");
		return -1;
	}
	/* The worker's own socket to the key process. */
	if (srv->keyproc.pid != 0 && (kfd = keyproc_attach(&srv->keyproc)) ==
	    -1)
		return -1;
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		if (kfd != -1)
			close(kfd);
		return -1;
	case 0:
		master_child_close();
		if (srv->keyproc.fd != -1)
			close(srv->keyproc.fd);
		keyproc_worker(kfd);
		status_attach(s - slots, srv->generation);
		worker_main(srv);
		/* NOTREACHED */
	}
	if (kfd != -1)
		close(kfd);
	s->pid = pid;
	status_spawned(s - slots, pid, srv->generation);
	s->generation = srv->generation;
	s->ready = 0;
	s->kill_at = 0;
	s->started = timecache_mono_ms();
	return 0;
}

/* Keeps the current generation at its size, backing off on failures. */
static void
master_maintain(struct server *srv)
{
	char	err[1024];
	int	n;

	if (stopping || timecache_mono_ms() < respawn_at)
		return;
	if (keyproc_lost) {
		/* Its workers cannot sign: a new generation with a new one. */
		if (keyproc_start(srv, srv, NULL, err, sizeof(err)) == -1) {
			log_warnx("%s", err);
			respawn_delay = respawn_delay == 0 ? RESPAWN_MIN_MS :
			    respawn_delay * 2 > RESPAWN_MAX_MS ?
			    RESPAWN_MAX_MS : respawn_delay * 2;
			respawn_at = timecache_mono_ms() + respawn_delay;
			return;
		}
		keyproc_lost = 0;
		master_renew(srv);
		return;
	}
	for (n = master_count(srv->generation, 0); n < srv->conf.workers; n++)
		if (master_spawn(srv) == -1) {
			respawn_delay = RESPAWN_MIN_MS;
			respawn_at = timecache_mono_ms() + respawn_delay;
			return;
		}
}

static void
master_wait_add(int fd, int cmd, int generation)
{
	int	i;

	for (i = 0; i < MASTER_MAX_WAITING; i++)
		if (waiting[i].fd == -1) {
			waiting[i].fd = fd;
			waiting[i].cmd = cmd;
			waiting[i].generation = generation;
			return;
		}
	control_reply(fd, "error too many control clients");
	close(fd);
}

/* Answers reload clients whose generation is serving, or has failed. */
static void
master_wait_check(struct server *srv, const char *failure)
{
	struct waiting	*w;
	int		 i, n;

	for (i = 0; i < MASTER_MAX_WAITING; i++) {
		w = &waiting[i];
		if (w->fd == -1 || w->cmd != CONTROL_RELOAD)
			continue;
		n = master_count(w->generation, 1);
		if (failure != NULL)
			control_reply(w->fd, "error reload: %s", failure);
		else if (w->generation != srv->generation ||
		    n >= srv->conf.workers)
			control_reply(w->fd, "ok reload ok: generation %d, %d "
			    "workers serving", w->generation, n);
		else
			continue;
		close(w->fd);
		w->fd = -1;
	}
}

/* Hands stdio to /dev/null and tells the launcher we are serving. */
static void
master_ready(struct server *srv)
{
	/* An upgrade's new master: the pidfile and control socket now. */
	upgrade_ready(srv);
	started = 1;
	notify_send("READY=1\nMAINPID=%ld\nSTATUS=serving, generation %d",
	    (long)getpid(), srv->generation);
	if (srv->lifeline != -1)
		log_detach();
	log_notice("started: %d workers, pid %ld", srv->conf.workers,
	    (long)getpid());
	if (srv->lifeline == -1)
		return;
	if (write(srv->lifeline, "R", 1) != 1)
		log_warn("lifeline");
	close(srv->lifeline);
	srv->lifeline = -1;
}

/* Workers write their pid to the ready pipe once they accept. */
static void
master_read_ready(struct server *srv)
{
	struct slot	*s;
	pid_t		 pids[64];
	ssize_t		 n;
	int		 i;

	while ((n = read(srv->ready[0], pids, sizeof(pids))) > 0)
		for (i = 0; i < n / (ssize_t)sizeof(pid_t); i++)
			if (pids[i] != 0 && (s = master_slot(pids[i])) != NULL)
				s->ready = 1;
	if (master_count(srv->generation, 1) >= srv->conf.workers &&
	    !stopping) {
		if (!started)
			master_ready(srv);
		if (reloading)
			notify_send("READY=1\nSTATUS=serving, generation %d",
			    srv->generation);
		reloading = 0;
	}
	master_wait_check(srv, NULL);
}

static void
master_reap(struct server *srv)
{
	long long	 now = timecache_mono_ms();
	struct slot	*s;
	pid_t		 pid;
	int		 st, failed;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if ((s = master_slot(pid)) == NULL) {
			if (upgrade_reaped(pid, st))
				continue;
			if (pid == srv->keyproc.pid) {
				log_errx("key process %ld %s %d", (long)pid,
				    WIFSIGNALED(st) ? "killed by signal" :
				    "exited with status", WIFSIGNALED(st) ?
				    WTERMSIG(st) : WEXITSTATUS(st));
				keyproc_retire(&srv->keyproc);
				keyproc_reaped(pid, 0);
				keyproc_lost = 1;
			} else
				keyproc_reaped(pid, st);
			continue;
		}
		s->pid = 0;
		status_reaped(s - slots);
		if (s->generation != srv->generation || stopping) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				log_warnx("old worker %ld exited with %s %d",
				    (long)pid, WIFSIGNALED(st) ? "signal" :
				    "status", WIFSIGNALED(st) ? WTERMSIG(st) :
				    WEXITSTATUS(st));
			continue;
		}
		failed = !s->ready || now - s->started < WORKER_SICK_MS ||
		    (WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_FATAL);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
			log_errx("worker %ld killed by signal %d (SIGSYS: a "
			    "system call outside the sandbox; \"sandbox log\" "
			    "names it in the kernel log)", (long)pid, SIGSYS);
		else if (WIFSIGNALED(st))
			log_errx("worker %ld killed by signal %d%s", (long)pid,
			    WTERMSIG(st), WCOREDUMP(st) ? " (core dumped)" : "");
		else
			log_warnx("worker %ld exited with status %d",
			    (long)pid, WEXITSTATUS(st));
		if (status_board != NULL)
			status_board->restarts++;
		if (!failed) {
			respawn_delay = 0;
			continue;
		}
		if (!s->ready)
			master_wait_check(srv, "a new worker failed to start; "
			    "see the error log");
		if (!started && srv->lifeline != -1) {
			/* A daemon whose workers cannot start did not start. */
			log_errx("workers failed to start");
			start_failed = 1;
			master_stop(srv, WORKER_STOP);
			continue;
		}
		/*
		 * A worker that dies young is replaced after a delay that
		 * doubles each time, so a broken set-up cannot fork-storm;
		 * one that served a while is replaced at once.
		 */
		respawn_delay = respawn_delay == 0 ? RESPAWN_MIN_MS :
		    respawn_delay * 2 > RESPAWN_MAX_MS ? RESPAWN_MAX_MS :
		    respawn_delay * 2;
		respawn_at = now + respawn_delay;
		log_warnx("respawning in %d ms", respawn_delay);
	}
}

/*
 * Raises the descriptor limit the workers inherit to what
 * worker_connections needs (as root, the hard limit too).  -1 with the
 * reason when it cannot: workers then take fewer connections each.
 */
int
master_nofile(const struct conf *conf, char *err, size_t errlen)
{
	struct rlimit	rl;
	rlim_t		need = worker_nofile(conf);

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		snprintf(err, errlen, "getrlimit: %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
			rl.rlim_max = need;	/* root only */
			rl.rlim_cur = need;
			if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
				return 0;
			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			snprintf(err, errlen, "worker_connections %lld needs "
			    "%llu descriptors, but the limit is %llu: each "
			    "worker takes at most %llu connections",
			    conf->worker_connections, (unsigned long long)need,
			    (unsigned long long)rl.rlim_max,
			    (unsigned long long)(rl.rlim_max -
			    (need - conf->worker_connections)));
			return -1;
		}
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			snprintf(err, errlen, "setrlimit: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * Reload by generation: parse and prepare everything first; on any error
 * keep the running generation untouched.  0, or -1 with the reason.
 */
static int
master_reload(struct server *srv, char *err, size_t errlen)
{
	static struct server	 next;
	struct log_files	 logs;
	char			 nofile[256];

	/* systemd wants CLOCK_MONOTONIC in microseconds. */
	notify_send("RELOADING=1\nMONOTONIC_USEC=%lld", timecache_mono_us());
	memset(&next, 0, sizeof(next));
	next.keyproc.pid = 0;
	next.keyproc.fd = -1;
	if (conf_load(srv->conf.path, &next.conf, err, errlen) == -1 ||
	    sandbox_check(next.conf.sandbox, err, errlen) == -1 ||
	    (next.ssl_ctx = tls_ctx_new(&next.conf, err, errlen)) == NULL)
		goto fail;
	if (listeners_open(&next, &next.conf, srv, err, errlen) == -1)
		goto fail_ctx;
	if (log_prepare(next.conf.error_log, next.conf.error_log_level,
	    next.conf.access_log, &logs, err, errlen) == -1)
		goto fail_listeners;
	/*
	 * The new key, in a new key process (the old one stays for its
	 * workers): last, so a reload that fails leaves no process behind.
	 */
	if (next.conf.tls_key_process && keyproc_start(srv, &next, &logs, err,
	    errlen) == -1)
		goto fail_logs;
	log_commit(&logs);
	if (master_nofile(&next.conf, nofile, sizeof(nofile)) == -1)
		log_warnx("%s", nofile);
	if (strcmp(next.conf.pidfile, srv->conf.pidfile) != 0)
		log_warnx("pidfile changes need a restart; keeping %s",
		    srv->conf.pidfile);
	strlcpy(next.conf.pidfile, srv->conf.pidfile,
	    sizeof(next.conf.pidfile));

	/* Close what the new configuration no longer listens on. */
	listeners_release(srv, &next);
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_rotate();
	srv->conf = next.conf;
	memcpy(srv->listeners, next.listeners, sizeof(srv->listeners));
	srv->nlisteners = next.nlisteners;
	srv->ssl_ctx = next.ssl_ctx;
	keyproc_retire(&srv->keyproc);
	srv->keyproc = next.keyproc;
	keyproc_lost = 0;
	master_renew(srv);
	status_reloaded(srv->generation, srv->conf.workers, NULL, 1);
	log_notice("reloaded %s: generation %d, %d workers", srv->conf.path,
	    srv->generation, srv->conf.workers);
	/* READY=1 once the new generation accepts: master_read_ready. */
	reloading = 1;
	return 0;
 fail_logs:
	log_discard(&logs);
 fail_listeners:
	listeners_release(&next, srv);
 fail_ctx:
	SSL_CTX_free(next.ssl_ctx);
 fail:
	status_reloaded(srv->generation, srv->conf.workers, err, 1);
	log_errx("reload failed, keeping the old configuration: %s", err);
	notify_send("READY=1\nSTATUS=reload failed: %s", err);
	return -1;
}

/* A new generation of workers; the old one finishes and exits. */
static void
master_renew(struct server *srv)
{
	srv->generation++;
	status_reloaded(srv->generation, srv->conf.workers, NULL, 0);
	respawn_at = 0;
	respawn_delay = 0;
	master_maintain(srv);
	master_signal_workers(srv, SIGQUIT, srv->generation);
}

/*
 * Log rotation: the master reopens the files (it may, as root), and a
 * fresh generation of workers inherits them; the old one finishes its
 * requests into the old files and exits.
 */
static void
master_reopen(struct server *srv)
{
	char	err[1024];

	if (log_open(srv->conf.error_log, srv->conf.error_log_level,
	    srv->conf.access_log, err, sizeof(err)) == -1) {
		log_errx("reopen failed, keeping the old logs: %s", err);
		return;
	}
	log_notice("reopened logs");
	master_renew(srv);
}

/*
 * A graceful stop with a drain_timeout first has the workers answer 503
 * on /healthz while they go on serving and accepting, so that a load
 * balancer takes the instance out before any connection is refused.
 * The pool is kept as while serving (a worker that dies is replaced,
 * and learns of the drain at fork); master_run stops it once
 * drain_until has passed.
 */
static void
master_stop(struct server *srv, int how)
{
	if (stopping == WORKER_STOP || stopping == how ||
	    (how == WORKER_QUIT && srv->draining))
		return;
	if (stopping == 0 && !srv->draining)
		notify_send("STOPPING=1");
	/* A new master that is not serving yet does not get the chance. */
	upgrade_abort();
	if (how == WORKER_QUIT && srv->conf.drain_timeout > 0) {
		log_notice("stopping gracefully after draining for %d ms",
		    srv->conf.drain_timeout);
		srv->draining = 1;
		drain_until = timecache_mono_ms() + srv->conf.drain_timeout;
		master_signal_workers(srv, SIGUSR2, -1);
	} else {
		log_notice("%s", how == WORKER_STOP ? "stopping" :
		    "stopping gracefully");
		drain_until = 0;
		stopping = how;
		master_signal_workers(srv, how == WORKER_STOP ? SIGTERM :
		    SIGQUIT, -1);
	}
	master_wait_check(srv, "the server is stopping");
}

static void __attribute__((noreturn))
master_exit(struct server *srv)
{
	int	i;

	listeners_close(srv->listeners, srv->nlisteners);
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_wipe();
	keyproc_retire(&srv->keyproc);	/* it exits with its last worker */
	control_close(srv);
	close(srv->ready[0]);
	close(srv->ready[1]);
	pidfile_remove(srv->pidfh);
	log_notice("exiting");
	log_close();
	/* Last: stop and quit clients learn the outcome from this close. */
	for (i = 0; i < MASTER_MAX_WAITING; i++)
		if (waiting[i].fd != -1)
			close(waiting[i].fd);
	/* A stop asked for during start-up is a clean exit. */
	exit(start_failed ? 1 : 0);
}

/*
 * The new master of an upgrade serves: it gets the pidfile and control
 * socket, and this master finishes its requests and exits, quietly for
 * systemd, which follows the new one (MAINPID).
 */
static void
master_handover(struct server *srv)
{
	pidfile_close(srv->pidfh);
	srv->pidfh = NULL;
	if (srv->ctl_fd != -1)
		close(srv->ctl_fd);	/* the path is the new master's */
	srv->ctl_fd = -1;
	upgrade_handover();
	log_notice("upgraded: stopping gracefully");
	drain_until = 0;
	srv->draining = 0;
	stopping = WORKER_QUIT;
	master_signal_workers(srv, SIGQUIT, -1);
	master_wait_check(srv, "the server was upgraded");
}

static void
master_control(struct server *srv)
{
	char	err[1024];
	int	fd, cmd;

	if ((cmd = control_accept(srv, &fd)) == -1)
		return;
	ctl_client = fd;	/* workers forked meanwhile close it */
	if ((stopping || srv->draining) && (cmd == CONTROL_RELOAD ||
	    cmd == CONTROL_REOPEN || cmd == CONTROL_UPGRADE)) {
		control_reply(fd, "error %s refused: the server is stopping",
		    cmd == CONTROL_RELOAD ? "reload" : cmd == CONTROL_REOPEN ?
		    "reopen" : "upgrade");
		goto done;
	}
	if (upgrade_running() && (cmd == CONTROL_RELOAD ||
	    cmd == CONTROL_UPGRADE)) {
		control_reply(fd, "error %s refused: an upgrade is in progress",
		    cmd == CONTROL_RELOAD ? "reload" : "upgrade");
		goto done;
	}
	switch (cmd) {
	case CONTROL_RELOAD:
		if (master_reload(srv, err, sizeof(err)) == -1)
			control_reply(fd, "error reload failed, the old "
			    "configuration keeps serving: %s", err);
		else {
			master_wait_add(fd, cmd, srv->generation);
			master_wait_check(srv, NULL);
			fd = -1;
		}
		break;
	case CONTROL_REOPEN:
		master_reopen(srv);
		control_reply(fd, "ok reopened logs, generation %d",
		    srv->generation);
		break;
	case CONTROL_STOP:
	case CONTROL_QUIT:
		/* A stop during a graceful stop makes it a fast one. */
		control_reply(fd, "ok %s in progress", cmd == CONTROL_STOP ?
		    "stop" : "graceful stop");
		master_stop(srv, cmd == CONTROL_STOP ? WORKER_STOP :
		    WORKER_QUIT);
		master_wait_add(fd, cmd, srv->generation);
		fd = -1;
		break;
	case CONTROL_UPGRADE:
		if (upgrade_start(srv, fd, err, sizeof(err)) == -1)
			control_reply(fd, "error upgrade failed, the old master "
			    "keeps serving: %s", err);
		else
			fd = -1;	/* told the outcome later */
		break;
	case CONTROL_STATUS:
	case CONTROL_STATUS_JSON:
		control_send_status(fd, cmd == CONTROL_STATUS_JSON ?
		    status_json : status_text);
		break;
	}
 done:
	ctl_client = -1;
	if (fd != -1)
		close(fd);
}

void
master_run(struct server *srv)
{
	struct pollfd	 pfd[4];
	struct timespec	 ts, *tsp;
	sigset_t	 waitmask;
	long long	 wake, now;
	char		 err[1024];
	int		 i, n;

	for (i = 0; i < MASTER_MAX_WAITING; i++)
		waiting[i].fd = -1;
	/* Before any fork: every child shares it. */
	if (status_init() == -1)
		fatalx("scoreboard: %s", strerror(errno));
	status_reloaded(srv->generation, srv->conf.workers, NULL, 0);
	master_signals(&waitmask);
	srv->keyproc.pid = 0;
	srv->keyproc.fd = -1;
	if (srv->conf.tls_key_process && keyproc_start(srv, srv, NULL, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	master_maintain(srv);

	for (;;) {
		now = timecache_mono_ms();
		if (drain_until != 0 && now >= drain_until) {
			drain_until = 0;
			stopping = WORKER_QUIT;
			log_notice("drained: stopping gracefully");
			master_signal_workers(srv, SIGQUIT, -1);
		}
		wake = master_expire();
		if (drain_until != 0 && (wake == -1 || drain_until < wake))
			wake = drain_until;
		if (upgrade_deadline() != -1 && (wake == -1 ||
		    upgrade_deadline() < wake))
			wake = upgrade_deadline();
		if (!stopping && respawn_at > now &&
		    (master_count(srv->generation, 0) < srv->conf.workers ||
		    keyproc_lost) &&
		    (wake == -1 || respawn_at < wake))
			wake = respawn_at;
		tsp = NULL;
		if (wake >= 0) {
			if (wake < now)
				wake = now;
			ts.tv_sec = (wake - now) / 1000;
			ts.tv_nsec = ((wake - now) % 1000) * 1000000;
			tsp = &ts;
		}
		pfd[0].fd = srv->ready[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = srv->ctl_fd;
		pfd[1].events = POLLIN;
		n = 2 + upgrade_pollfds(pfd + 2);
		if (ppoll(pfd, n, tsp, &waitmask) == -1) {
			if (errno != EINTR)
				log_warn("ppoll");
			pfd[0].revents = pfd[1].revents = 0;
		}

		if (sig_chld) {
			sig_chld = 0;
			master_reap(srv);
		}
		if (pfd[0].revents & POLLIN)
			master_read_ready(srv);
		if (!stopping && upgrade_event(srv))
			master_handover(srv);
		upgrade_expire(timecache_mono_ms());
		if (sig_term) {
			sig_term = 0;
			master_stop(srv, WORKER_STOP);
		}
		if (sig_quit) {
			sig_quit = 0;
			master_stop(srv, WORKER_QUIT);
		}
		/* No new generation while stopping or draining. */
		if (sig_hup) {
			sig_hup = 0;
			if (upgrade_running())
				log_warnx("SIGHUP ignored: an upgrade is in "
				    "progress");
			else if (!stopping && !srv->draining)
				master_reload(srv, err, sizeof(err));
		}
		if (sig_usr1) {
			sig_usr1 = 0;
			if (!stopping && !srv->draining)
				master_reopen(srv);
		}
		if (pfd[1].revents & POLLIN)
			master_control(srv);
		if (stopping) {
			if (master_count(-1, 0) == 0)
				master_exit(srv);
		} else
			master_maintain(srv);
	}
}
