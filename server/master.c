/*
 * The master: no client I/O, only a table of worker slots, signals and
 * reloads.  Signal handlers set flags; the loop below blocks every signal
 * it handles and unblocks them only inside ppoll, so none is lost between
 * a check and the sleep (nginx's ngx_master_process_cycle).
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libutil.h>

#include "astleyd.h"

#define MASTER_MAX_SLOTS	(CONF_MAX_WORKERS * 4)
#define RESPAWN_MIN_MS		100
#define RESPAWN_MAX_MS		10000
#define WORKER_SICK_MS		1000	/* dying sooner counts as a failure */

struct slot {
	pid_t		 pid;		/* 0: free */
	int		 generation;
	long long	 started;
};

static volatile sig_atomic_t	sig_chld, sig_hup, sig_term, sig_quit;

static struct slot	slots[MASTER_MAX_SLOTS];
static long long	respawn_at;	/* no spawning before this */
static int		respawn_delay;	/* grows while workers keep failing */
static int		stopping;	/* 0, WORKER_QUIT or WORKER_STOP */
static long long	kill_at;	/* stop: SIGKILL what is left then */

static long long
master_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
	default:
		sig_term = 1;
	}
}

static void
master_signals(sigset_t *waitmask)
{
	struct sigaction	 sa;
	sigset_t		 block;
	int			 sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT,
				    SIGQUIT };
	size_t			 i;

	sigemptyset(&block);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_sighdlr;
	sa.sa_mask = block;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);	/* log reopen: nothing to reopen */
	sigemptyset(waitmask);
}

static int
master_count(int generation)
{
	int	i, n = 0;

	for (i = 0; i < MASTER_MAX_SLOTS; i++)
		if (slots[i].pid != 0 &&
		    (generation < 0 || slots[i].generation == generation))
			n++;
	return n;
}

static void
master_signal_workers(int sig, int except_generation)
{
	int	i;

	for (i = 0; i < MASTER_MAX_SLOTS; i++)
		if (slots[i].pid != 0 &&
		    slots[i].generation != except_generation)
			kill(slots[i].pid, sig);
}

static int
master_spawn(struct server *srv)
{
	struct slot	*s = NULL;
	pid_t		 pid;
	int		 i;

	for (i = 0; i < MASTER_MAX_SLOTS && s == NULL; i++)
		if (slots[i].pid == 0)
			s = &slots[i];
	if (s == NULL) {
		log_warnx("no free worker slot");
		return -1;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		return -1;
	case 0:
		worker_main(srv);
		/* NOTREACHED */
	}
	s->pid = pid;
	s->generation = srv->generation;
	s->started = master_now();
	return 0;
}

/* Keeps the current generation at its size, backing off on failures. */
static void
master_maintain(struct server *srv)
{
	int	n;

	if (stopping || master_now() < respawn_at)
		return;
	for (n = master_count(srv->generation); n < srv->conf.workers; n++)
		if (master_spawn(srv) == -1) {
			respawn_delay = RESPAWN_MIN_MS;
			respawn_at = master_now() + respawn_delay;
			return;
		}
}

static void
master_reap(struct server *srv)
{
	long long	 now = master_now();
	struct slot	*s;
	pid_t		 pid;
	int		 st, i, failed;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (s = NULL, i = 0; i < MASTER_MAX_SLOTS; i++)
			if (slots[i].pid == pid)
				s = &slots[i];
		if (s == NULL)
			continue;
		s->pid = 0;
		if (s->generation != srv->generation || stopping) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				log_warnx("old worker %ld exited with %s %d",
				    (long)pid, WIFSIGNALED(st) ? "signal" :
				    "status", WIFSIGNALED(st) ? WTERMSIG(st) :
				    WEXITSTATUS(st));
			continue;
		}
		failed = now - s->started < WORKER_SICK_MS ||
		    (WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_FATAL);
		if (WIFSIGNALED(st))
			log_warnx("worker %ld killed by signal %d%s", (long)pid,
			    WTERMSIG(st), WCOREDUMP(st) ? " (core dumped)" : "");
		else
			log_warnx("worker %ld exited with status %d",
			    (long)pid, WEXITSTATUS(st));
		/*
		 * A worker that dies young is replaced after a delay that
		 * doubles each time, so a broken set-up cannot fork-storm;
		 * one that served a while is replaced at once.
		 */
		if (failed) {
			respawn_delay = respawn_delay == 0 ? RESPAWN_MIN_MS :
			    respawn_delay * 2 > RESPAWN_MAX_MS ?
			    RESPAWN_MAX_MS : respawn_delay * 2;
			respawn_at = now + respawn_delay;
			log_warnx("respawning in %d ms", respawn_delay);
		} else
			respawn_delay = 0;
	}
}

/*
 * Reload by generation: parse and prepare everything first; on any error
 * keep the running generation untouched.
 */
static void
master_reload(struct server *srv)
{
	static struct server	 next;
	char			 err[1024];
	int			 i, j;

	memset(&next, 0, sizeof(next));
	if (conf_load(srv->conf.path, &next.conf, err, sizeof(err)) == -1 ||
	    (next.ssl_ctx = tls_ctx_new(&next.conf, err, sizeof(err))) ==
	    NULL) {
		log_warnx("reload failed, keeping the old configuration: %s",
		    err);
		return;
	}
	if (listeners_open(&next, &next.conf, srv) == -1) {
		log_warnx("reload failed, keeping the old configuration");
		SSL_CTX_free(next.ssl_ctx);
		return;
	}
	if (strcmp(next.conf.pidfile, srv->conf.pidfile) != 0)
		log_warnx("pidfile changes need a restart; keeping %s",
		    srv->conf.pidfile);
	strlcpy(next.conf.pidfile, srv->conf.pidfile,
	    sizeof(next.conf.pidfile));

	/* Close what the new configuration no longer listens on. */
	for (i = 0; i < srv->nlisteners; i++) {
		for (j = 0; j < next.nlisteners; j++)
			if (next.listeners[j].fd == srv->listeners[i].fd)
				break;
		if (j == next.nlisteners)
			close(srv->listeners[i].fd);
	}
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_rotate();
	srv->conf = next.conf;
	memcpy(srv->listeners, next.listeners, sizeof(srv->listeners));
	srv->nlisteners = next.nlisteners;
	srv->ssl_ctx = next.ssl_ctx;
	srv->generation++;
	respawn_at = 0;
	respawn_delay = 0;
	master_maintain(srv);
	/* Old workers finish what they are doing and exit. */
	master_signal_workers(SIGQUIT, srv->generation);
	log_info("reloaded %s: generation %d, %d workers", srv->conf.path,
	    srv->generation, srv->conf.workers);
}

static void
master_stop(struct server *srv, int how)
{
	if (stopping == WORKER_STOP || stopping == how)
		return;
	if (stopping == 0)
		kill_at = master_now() + srv->conf.shutdown_timeout;
	stopping = how;
	log_info("%s", how == WORKER_STOP ? "stopping" :
	    "stopping gracefully");
	master_signal_workers(how == WORKER_STOP ? SIGTERM : SIGQUIT, -1);
}

static void __attribute__((noreturn))
master_exit(struct server *srv)
{
	listeners_close(srv->listeners, srv->nlisteners);
	SSL_CTX_free(srv->ssl_ctx);
	tls_ticket_wipe();
	pidfile_remove(srv->pidfh);
	log_info("exiting");
	exit(0);
}

/*
 * Hands stdio to /dev/null before the first fork, so no worker keeps the
 * launcher's terminal or pipe open.
 */
static void
master_detach(struct server *srv)
{
	int	fd;

	if (srv->lifeline == -1)
		return;
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_init(0);
}

/* Tells the launcher we are serving, so it can exit 0. */
static void
master_ready(struct server *srv)
{
	if (srv->lifeline == -1)
		return;
	if (write(srv->lifeline, "R", 1) != 1)
		log_warn("lifeline");
	close(srv->lifeline);
	srv->lifeline = -1;
}

void
master_run(struct server *srv)
{
	struct timespec	 ts, *tsp;
	sigset_t	 waitmask;
	long long	 wake, now;

	master_signals(&waitmask);
	master_detach(srv);
	master_maintain(srv);
	master_ready(srv);
	log_info("started: %d workers, pid %ld", srv->conf.workers,
	    (long)getpid());

	for (;;) {
		now = master_now();
		wake = -1;
		if (stopping)
			wake = kill_at;
		else if (respawn_at > now &&
		    master_count(srv->generation) < srv->conf.workers)
			wake = respawn_at;
		tsp = NULL;
		if (wake >= 0) {
			if (wake < now)
				wake = now;
			ts.tv_sec = (wake - now) / 1000;
			ts.tv_nsec = ((wake - now) % 1000) * 1000000;
			tsp = &ts;
		}
		if (ppoll(NULL, 0, tsp, &waitmask) == -1 && errno != EINTR)
			log_warn("ppoll");

		if (sig_chld) {
			sig_chld = 0;
			master_reap(srv);
		}
		if (sig_term) {
			sig_term = 0;
			master_stop(srv, WORKER_STOP);
		}
		if (sig_quit) {
			sig_quit = 0;
			master_stop(srv, WORKER_QUIT);
		}
		if (sig_hup) {
			sig_hup = 0;
			if (!stopping)
				master_reload(srv);
		}
		if (stopping) {
			if (master_count(-1) == 0)
				master_exit(srv);
			if (master_now() >= kill_at) {
				log_warnx("shutdown_timeout: killing %d "
				    "workers", master_count(-1));
				master_signal_workers(SIGKILL, -1);
				kill_at = master_now() + 1000;
			}
		} else
			master_maintain(srv);
	}
}
