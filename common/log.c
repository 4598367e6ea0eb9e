/*
 * Logging, after OpenSMTPD's log.c: one line per message, to stderr in
 * the foreground, to syslog(LOG_DAEMON) once detached, or to a file.
 * Every line names its level (nginx's "[error]", "[notice]"), and only
 * levels up to error_log's are written.  When stderr is the journal
 * (systemd's JOURNAL_STREAM names it), a line starts with its sd-daemon
 * priority ("<3>") instead of "astleyd[PID]:", which journald adds.  The
 * access log takes one write per line, O_APPEND, so lines from several
 * workers never interleave.  Log files are opened by the master (as root)
 * and inherited by workers; a reopen swaps in new descriptors.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "timecache.h"

enum log_mode { LOGM_DEFAULT, LOGM_STDERR, LOGM_SYSLOG, LOGM_FILE, LOGM_OFF };

/*
 * The syslog and sd-daemon priority of each level.  emerg goes out as
 * crit: journald and rsyslog broadcast emerg to every terminal, which a
 * port already in use does not deserve.
 */
static const struct {
	const char	*name;
	int		 pri;
} log_levels[] = {
	[LOGL_EMERG] = { "emerg", LOG_CRIT },
	[LOGL_ERROR] = { "error", LOG_ERR },
	[LOGL_WARN] = { "warn", LOG_WARNING },
	[LOGL_NOTICE] = { "notice", LOG_NOTICE },
	[LOGL_INFO] = { "info", LOG_INFO },
	[LOGL_DEBUG] = { "debug", LOG_DEBUG },
};
#define LOG_NLEVELS	(int)(sizeof(log_levels) / sizeof(log_levels[0]))

static int	log_foreground = 1;
static int	log_journal;		/* stderr is a journald stream */
static int	log_syslog_open;
static int	err_mode = LOGM_DEFAULT, err_fd = -1, err_level = LOGL_NOTICE;
static int	acc_mode = LOGM_OFF, acc_fd = -1;

static void
log_syslog(void)
{
	if (!log_syslog_open)
		openlog("astleyd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog_open = 1;
}

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected. */
static int
log_stderr_is_journal(void)
{
	struct stat		 st;
	const char		*v = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	int			 n = 0;

	if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &n) != 2 ||
	    v[n] != '\0' || fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(int foreground)
{
	log_foreground = foreground;
	log_journal = log_stderr_is_journal();
	/* Read the time zone now: a sandboxed worker cannot open it. */
	tzset();
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

int
log_level_parse(const char *s)
{
	int	i;

	/* emerg is not a choice: a failed start is always logged. */
	for (i = LOGL_ERROR; i < LOG_NLEVELS; i++)
		if (strcmp(s, log_levels[i].name) == 0)
			return i;
	return -1;
}

/* Where the error log goes now, its default resolved. */
static int
log_err_mode(void)
{
	if (err_mode == LOGM_DEFAULT || (err_mode == LOGM_STDERR &&
	    !log_foreground))
		return log_foreground ? LOGM_STDERR : LOGM_SYSLOG;
	return err_mode;
}

int
log_enabled(int level)
{
	return level <= err_level && log_err_mode() != LOGM_OFF;
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
log_prepare(const char *error_log, int level, const char *access_log,
    struct log_files *lf, char *err, size_t errlen)
{
	lf->err_level = level;
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
	err_level = lf->err_level;
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
log_open(const char *error_log, int level, const char *access_log,
    char *err, size_t errlen)
{
	struct log_files	lf;

	if (log_prepare(error_log, level, access_log, &lf, err, errlen) == -1)
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
	err_level = LOGL_NOTICE;
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
	int	n, pre = 0;

	if (acc_mode == LOGM_OFF)
		return;
	/* On the journal, at info, whatever its default priority. */
	if (acc_mode == LOGM_STDERR && log_journal) {
		memcpy(line, "<6>", 3);
		pre = 3;
	}
	va_start(ap, fmt);
	n = vsnprintf(line + pre, sizeof(line) - 1 - pre, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n += pre;
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

/* One line to a descriptor, in one write so workers never interleave. */
static void
log_line(int fd, int level, const char *stamp, const char *msg)
{
	char	line[1200];
	int	len;

	if (fd == STDERR_FILENO && log_journal)
		len = snprintf(line, sizeof(line), "<%d>[%s] %s\n",
		    log_levels[level].pri, log_levels[level].name, msg);
	else
		len = snprintf(line, sizeof(line), "%sastleyd[%ld]: [%s] %s\n",
		    stamp, (long)getpid(), log_levels[level].name, msg);
	if (len < 0)
		return;
	if (len > (int)sizeof(line) - 1) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	/* A failed write has nowhere left to be reported. */
	if (write(fd, line, len) != len)
		return;
}

static void	log_vwrite(int, int, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

static void
log_vwrite(int level, int with_errno, const char *fmt, va_list ap)
{
	char	 msg[1024], stamp[40];
	int	 saved = errno, mode;
	size_t	 n;

	if (level > err_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	mode = log_err_mode();
	if (mode == LOGM_FILE) {
		timecache_iso(time(NULL), stamp);
		strlcat(stamp, " ", sizeof(stamp));
		log_line(err_fd, level, stamp, msg);
	} else if (mode == LOGM_STDERR)
		log_line(STDERR_FILENO, level, "", msg);
	else if (mode == LOGM_SYSLOG) {
		log_syslog();
		syslog(log_levels[level].pri, "[%s] %s",
		    log_levels[level].name, msg);
	}
	/*
	 * A start that fails is told to whoever started us too, when the
	 * error log is somewhere else (nginx's [emerg] on the terminal).
	 */
	if (level == LOGL_EMERG && log_foreground && mode != LOGM_STDERR)
		log_line(STDERR_FILENO, level, "", msg);
	errno = saved;
}

#define LOG_FN(name, level, with_errno)			\
void							\
name(const char *fmt, ...)				\
{							\
	va_list	ap;					\
							\
	va_start(ap, fmt);				\
	log_vwrite(level, with_errno, fmt, ap);		\
	va_end(ap);					\
}

LOG_FN(log_emerg, LOGL_EMERG, 0)
LOG_FN(log_err, LOGL_ERROR, 1)
LOG_FN(log_errx, LOGL_ERROR, 0)
LOG_FN(log_warn, LOGL_WARN, 1)
LOG_FN(log_warnx, LOGL_WARN, 0)
LOG_FN(log_notice, LOGL_NOTICE, 0)
LOG_FN(log_info, LOGL_INFO, 0)
LOG_FN(log_debug, LOGL_DEBUG, 0)

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOGL_EMERG, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

int
log_ratelimit(struct log_ratelimit *rl, long long now, int *report)
{
	*report = 0;
	if (now - rl->start >= 1000 || now < rl->start) {
		*report = rl->suppressed;
		rl->suppressed = 0;
		rl->start = now;
		rl->lines = 0;
	}
	if (rl->lines >= rl->burst) {
		rl->suppressed++;
		return 0;
	}
	rl->lines++;
	return 1;
}

int
log_ratelimit_flush(struct log_ratelimit *rl, long long now)
{
	int	n;

	if (rl->suppressed == 0 || (now - rl->start < 1000 &&
	    now >= rl->start))
		return 0;
	n = rl->suppressed;
	rl->suppressed = 0;
	return n;
}

long long
log_ratelimit_next(const struct log_ratelimit *rl, long long now)
{
	if (rl->suppressed == 0)
		return -1;
	return now - rl->start >= 1000 ? 0 : rl->start + 1000 - now;
}
