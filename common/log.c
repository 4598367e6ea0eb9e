/*
 * Logging, after OpenSMTPD's log.c: one line per message, to stderr in
 * the foreground, to syslog(LOG_DAEMON) once detached, or to a file.  The
 * access log takes one write per line, O_APPEND, so lines from several
 * workers never interleave.  Log files are opened by the master (as root)
 * and inherited by workers; a reopen swaps in new descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum log_mode { LOGM_DEFAULT, LOGM_STDERR, LOGM_SYSLOG, LOGM_FILE, LOGM_OFF };

static int	log_foreground = 1;
static int	log_verbose;
static int	log_syslog_open;
static int	err_mode = LOGM_DEFAULT, err_fd = -1;
static int	acc_mode = LOGM_OFF, acc_fd = -1;

static void
log_syslog(void)
{
	if (!log_syslog_open)
		openlog("astleyd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog_open = 1;
}

void
log_init(int foreground)
{
	log_foreground = foreground;
	if (!foreground)
		log_syslog();
}

/*
 * Detached: stdio goes to /dev/null, so nobody keeps the launcher's
 * terminal or pipe open, and the default error log becomes syslog.
 */
void
log_detach(void)
{
	int	fd;

	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_init(0);
}

/* "", "stderr", "syslog", "off" or a path, as the config allows. */
static int
log_target(const char *what, const char *v, int *mode, int *fd, char *err,
    size_t errlen)
{
	*fd = -1;
	if (v[0] == '\0')
		*mode = LOGM_DEFAULT;
	else if (strcmp(v, "stderr") == 0)
		*mode = LOGM_STDERR;
	else if (strcmp(v, "syslog") == 0)
		*mode = LOGM_SYSLOG;
	else if (strcmp(v, "off") == 0)
		*mode = LOGM_OFF;
	else {
		*mode = LOGM_FILE;
		*fd = open(v, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (*fd == -1) {
			snprintf(err, errlen, "%s %s: %s", what, v,
			    strerror(errno));
			return -1;
		}
	}
	if (*mode == LOGM_SYSLOG)
		log_syslog();
	return 0;
}

/*
 * Opens the targets without using them yet, so that a reload can fail
 * at a later step and leave the running logs alone.
 */
int
log_prepare(const char *error_log, const char *access_log,
    struct log_files *lf, char *err, size_t errlen)
{
	if (log_target("error_log", error_log, &lf->err_mode, &lf->err_fd,
	    err, errlen) == -1)
		return -1;
	if (log_target("access_log", access_log, &lf->acc_mode, &lf->acc_fd,
	    err, errlen) == -1) {
		if (lf->err_fd != -1)
			close(lf->err_fd);
		return -1;
	}
	return 0;
}

void
log_commit(const struct log_files *lf)
{
	if (err_fd != -1)
		close(err_fd);
	if (acc_fd != -1)
		close(acc_fd);
	err_mode = lf->err_mode;
	err_fd = lf->err_fd;
	acc_mode = lf->acc_mode;
	acc_fd = lf->acc_fd;
}

void
log_discard(const struct log_files *lf)
{
	if (lf->err_fd != -1)
		close(lf->err_fd);
	if (lf->acc_fd != -1)
		close(lf->acc_fd);
}

int
log_open(const char *error_log, const char *access_log, char *err,
    size_t errlen)
{
	struct log_files	lf;

	if (log_prepare(error_log, access_log, &lf, err, errlen) == -1)
		return -1;
	log_commit(&lf);
	return 0;
}

void
log_close(void)
{
	if (err_fd != -1)
		close(err_fd);
	if (acc_fd != -1)
		close(acc_fd);
	err_fd = acc_fd = -1;
	err_mode = LOGM_DEFAULT;
	acc_mode = LOGM_OFF;
}

int
log_access_on(void)
{
	return acc_mode != LOGM_OFF;
}

void
log_access(const char *fmt, ...)
{
	char	line[8192];
	va_list	ap;
	int	n;

	if (acc_mode == LOGM_OFF)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (acc_mode == LOGM_SYSLOG) {
		syslog(LOG_INFO, "%.*s", n, line);
		return;
	}
	line[n++] = '\n';
	if (write(acc_mode == LOGM_FILE ? acc_fd : STDERR_FILENO, line, n) !=
	    n)
		return;		/* a full disk must not stop serving */
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

static void	log_vwrite(int, const char *, va_list, int)
		    __attribute__((format(printf, 2, 0)));

static void
log_vwrite(int pri, const char *fmt, va_list ap, int with_errno)
{
	char	 msg[1024];
	int	 saved = errno, mode;
	size_t	 n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	mode = err_mode;
	if (mode == LOGM_DEFAULT || (mode == LOGM_STDERR && !log_foreground))
		mode = log_foreground ? LOGM_STDERR : LOGM_SYSLOG;
	if (mode == LOGM_STDERR || mode == LOGM_FILE) {
		char		line[1200], stamp[32];
		struct tm	tm;
		time_t		now;
		int		len;

		stamp[0] = '\0';
		if (mode == LOGM_FILE) {
			now = time(NULL);
			gmtime_r(&now, &tm);
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ ",
			    &tm);
		}
		/* One write per line, so lines from workers never interleave. */
		len = snprintf(line, sizeof(line), "%sastleyd[%ld]: %s\n",
		    stamp, (long)getpid(), msg);
		if (len > (int)sizeof(line) - 1)
			len = sizeof(line) - 1;
		/* A failed write has nowhere left to be reported. */
		if (write(mode == LOGM_FILE ? err_fd : STDERR_FILENO, line,
		    len) != len)
			errno = saved;
	} else if (mode == LOGM_SYSLOG) {
		log_syslog();
		syslog(pri, "%s", msg);
	}
	errno = saved;
}

#define LOG_FN(name, pri, with_errno)			\
void							\
name(const char *fmt, ...)				\
{							\
	va_list	ap;					\
							\
	va_start(ap, fmt);				\
	log_vwrite(pri, fmt, ap, with_errno);		\
	va_end(ap);					\
}

LOG_FN(log_warn, LOG_ERR, 1)
LOG_FN(log_warnx, LOG_ERR, 0)
LOG_FN(log_info, LOG_INFO, 0)

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, 0);
	va_end(ap);
	exit(1);
}
