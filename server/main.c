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
#include <signal.h>
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
	    "usage: astleyd [-dhjtTvV] [-f file] [-s signal]\n"
	    "  -d       stay in the foreground, log to stderr\n"
	    "  -f file  configuration file (default %s)\n"
	    "  -s sig   ask the running master to reload, stop, quit or\n"
	    "           reopen, upgrade (start the installed binary in its\n"
	    "           place), and wait for the outcome; or print its status\n"
	    "  -j       with -s status: as JSON\n"
	    "  -t       test the configuration and exit\n"
	    "  -T       as -t, and print the effective configuration\n"
	    "  -v       print the version and exit\n"
	    "  -V       print the version and build options and exit\n"
	    "  -h       print this help and exit\n", ASTLEYD_CONF);
	exit(code);
}

#if defined(__clang__)
#define COMPILER	"clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER	"gcc " __VERSION__
#else
#define COMPILER	"unknown"
#endif

/* -V: what a bug report needs to know about this binary. */
static void
version(void)
{
	const char	*built, *running;

	tls_versions(&built, &running);
	printf("astleyd %s\n", ASTLEYD_VERSION);
	printf("compiler: %s\n", COMPILER);
	printf("built with %s\n", built);
	printf("running with %s\n", running);
	printf("configuration file: %s\n", ASTLEYD_CONF);
	/* Empty for the binary built in the tree, which make install never
	 * copies. */
	printf("prefix: %s\n", ASTLEYD_PREFIX[0] != '\0' ? ASTLEYD_PREFIX :
	    "none (built in the tree)");
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

	if (pipe2(lifeline, O_CLOEXEC) == -1) {
		log_err("pipe2");
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_err("fork");
		return -1;
	}
	if (pid > 0) {
		close(lifeline[1]);
		do
			n = read(lifeline[0], &c, 1);
		while (n == -1 && errno == EINTR);
		/* Not exit(): the master owns the pidfile and sockets now. */
		_exit(n == 1 && c == 'R' ? 0 : 1);
	}
	close(lifeline[0]);
	umask(022);
	if (setsid() == -1 || chdir("/") == -1) {
		log_err("detaching");
		close(lifeline[1]);
		return -1;
	}
	return lifeline[1];
}

/*
 * A start that failed: said on stderr and, once the configuration names
 * an error log elsewhere, there too (nginx's [emerg]): under an init
 * script stderr is lost.  A configuration that did not load is read
 * again, skipping bad lines, for its error_log.
 */
static void
main_emerg(const char *path, int logs_open, const char *msg)
{
	static struct conf	conf;
	char			err[1024];

	if (!logs_open && path[0] != '\0' &&
	    conf_load_lenient(path, &conf, err, sizeof(err)) == 0)
		(void)log_open(conf.error_log, conf.error_log_level, "off",
		    err, sizeof(err));
	log_emerg("%s", msg);
}

int
main(int argc, char *argv[], char *envp[])
{
	struct server	*srv = &server;
	const char	*conf_arg = ASTLEYD_CONF;
	const char	*signame = NULL;
	char		 path[PATH_MAX] = "", err[1024], sandbox[256];
	sigset_t	 block;
	pid_t		 otherpid;
	int		 ch, foreground = 0, test = 0, json = 0, logs_open = 0;
	int		 dump = 0;

	/*
	 * Nothing inherited from whoever started us reaches a worker: a
	 * descriptor left open (`exec 7</etc/shadow`) would outlive both
	 * the privilege drop and the sandbox.  Only listening sockets
	 * passed the systemd way (LISTEN_FDS) stay, for the listeners.
	 */
	upgrade_init();
	closefrom(upgrade_from_env(listeners_from_env()));
	proctitle_init(argc, argv, envp);
	while ((ch = getopt(argc, argv, "df:hjs:tTvV")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'f':
			conf_arg = optarg;
			break;
		case 's':
			signame = optarg;
			if (control_command(signame) == -1) {
				fprintf(stderr, "astleyd: invalid -s command "
				    "\"%s\" (reload, stop, quit, reopen, "
				    "upgrade or status)\n", signame);
				usage(1);
			}
			break;
		case 'j':
			json = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'T':
			test = dump = 1;
			break;
		case 'v':
			printf("astleyd %s\n", ASTLEYD_VERSION);
			return 0;
		case 'V':
			version();
			return 0;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind != argc || (json && (signame == NULL ||
	    strcmp(signame, "status") != 0)))
		usage(1);
	if (json)
		signame = "status-json";
	if (!test && signame == NULL)
		log_init(1);

	/* Absolute, so relative paths in it survive chdir("/"). */
	if (realpath(conf_arg, path) == NULL) {
		path[0] = '\0';
		snprintf(err, sizeof(err), "%s: %s", conf_arg, strerror(errno));
		goto conf_failed;
	}
	if (signame != NULL) {
		if (conf_load_pidfile(path, srv->conf.pidfile,
		    sizeof(srv->conf.pidfile), err, sizeof(err)) == -1) {
			fprintf(stderr, "astleyd: %s\n", err);
			return 1;
		}
		/* Stop waits out shutdown_timeout plus the final kill. */
		return control_client(srv->conf.pidfile, signame,
		    CONTROL_TIMEOUT_MS);
	}
	if (conf_load(path, &srv->conf, err, sizeof(err)) == -1) {
		/*
		 * No effective configuration, but -T still names the pidfile
		 * that -s reads from the file, so that the init script can
		 * reach the running master, e.g. to have a reload refused.
		 */
		if (dump && conf_load_pidfile(path, srv->conf.pidfile,
		    sizeof(srv->conf.pidfile), sandbox, sizeof(sandbox)) == 0)
			printf("# %s does not parse; astleyd -s would use\n"
			    "%-19s %s\n", path, "pidfile", srv->conf.pidfile);
		goto conf_failed;
	}
	/*
	 * Printed as soon as the file parses, before the checks that read
	 * the certificate, key and logs: the init script takes the pidfile
	 * from here, also when stopping a server whose key has gone.
	 */
	if (dump) {
		conf_print(stdout, &srv->conf);
		fflush(stdout);
	}
	/* From here on a failed start is in the error log too. */
	if (!test) {
		if (log_open(srv->conf.error_log, srv->conf.error_log_level,
		    srv->conf.access_log, err, sizeof(err)) == -1)
			goto conf_failed;
		logs_open = 1;
	}
	if ((srv->ssl_ctx = tls_ctx_new(&srv->conf, err, sizeof(err))) == NULL)
		goto conf_failed;
	if (sandbox_check(srv->conf.sandbox, sandbox, sizeof(sandbox)) == -1) {
		strlcpy(err, sandbox, sizeof(err));
		goto ctx_failed;
	}
	/* Not fatal: a worker then takes fewer connections. */
	if (master_nofile(&srv->conf, err, sizeof(err)) == -1) {
		if (test)
			fprintf(stderr, "astleyd: warning: %s\n", err);
		else
			log_warnx("%s", err);
	}
	if (test) {
		/* The key process's check, here in a process that exits. */
		if (srv->conf.tls_key_process) {
			EVP_PKEY	*key;

			if ((key = tls_key_load(&srv->conf, err,
			    sizeof(err))) == NULL)
				goto ctx_failed;
			EVP_PKEY_free(key);
		}
		/* Log targets too, as start-up would open them. */
		if (log_open(srv->conf.error_log, srv->conf.error_log_level,
		    srv->conf.access_log, err, sizeof(err)) == -1)
			goto ctx_failed;
		log_close();
		fprintf(stderr, "astleyd: sandbox: %s\n", sandbox);
		fprintf(stderr, "astleyd: configuration file %s test is "
		    "successful\n", path);
		SSL_CTX_free(srv->ssl_ctx);
		return 0;
	}

	srv->foreground = foreground;
	srv->lifeline = -1;
	srv->ctl_fd = -1;
	/*
	 * From the pidfile on, a signal must not kill us before the master
	 * loop can act on it and clean up: master_run unblocks them.
	 */
	master_sigset(&block);
	sigprocmask(SIG_BLOCK, &block, NULL);
	/* An upgrade's new master takes it once it serves. */
	srv->pidfh = upgrade_pending() ? NULL :
	    pidfile_open(srv->conf.pidfile, 0644, &otherpid);
	if (srv->pidfh == NULL && !upgrade_pending()) {
		if (errno == EEXIST || (errno == EINVAL &&
		    pidfile_read_pid(srv->conf.pidfile, &otherpid) == 0))
			snprintf(err, sizeof(err), "already running (pid %ld, "
			    "pidfile %.900s)", (long)otherpid, srv->conf.pidfile);
		else
			snprintf(err, sizeof(err), "pidfile %.900s: %s",
			    srv->conf.pidfile, strerror(errno));
		goto ctx_failed;
	}
	if (listeners_open(srv, &srv->conf, NULL, err, sizeof(err)) == -1) {
		pidfile_remove(srv->pidfh);
		goto ctx_failed;
	}
	if (!upgrade_pending() && control_open(srv) == -1) {
		pidfile_remove(srv->pidfh);
		return 1;
	}
	/* An upgrade keeps the old master's keys: sessions resume. */
	if (!upgrade_pending() || upgrade_tickets() == -1)
		tls_ticket_rotate();
	if (pipe2(srv->ready, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_err("pipe2");
		goto startup_failed;
	}
	if (upgrade_pending()) {
		/* Detached already, as the old master was. */
		upgrade_stderr();
		if (!foreground)
			log_detach();
	} else if (!foreground && (srv->lifeline = daemonize()) == -1)
		goto startup_failed;
	if (srv->pidfh != NULL && pidfile_write_pid(srv->pidfh) == -1) {
		log_err("pidfile %s", srv->conf.pidfile);
		goto startup_failed;
	}
	proctitle_set("master process %s", proctitle_cmdline());
	master_run(srv);

 startup_failed:
	control_close(srv);
	pidfile_remove(srv->pidfh);
	return 1;

 ctx_failed:
	SSL_CTX_free(srv->ssl_ctx);
 conf_failed:
	if (!test)
		main_emerg(path, logs_open, err);
	else {
		fprintf(stderr, "astleyd: %s\n", err);
		fprintf(stderr, "astleyd: configuration file %s test failed\n",
		    path[0] != '\0' ? path : conf_arg);
	}
	return 1;
}
