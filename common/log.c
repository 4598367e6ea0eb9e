/*
 * Logging, after OpenSMTPD's log.c: one line per message, to stderr with
 * the pid while in the foreground, to syslog(LOG_DAEMON) once detached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static int	log_foreground = 1;
static int	log_verbose;

void
log_init(int foreground)
{
	log_foreground = foreground;
	if (!foreground)
		openlog("astleyd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
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
	int	 saved = errno;
	size_t	 n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	if (log_foreground) {
		char	line[1100];
		int	len;

		/* One write per line, so lines from workers never interleave. */
		len = snprintf(line, sizeof(line), "astleyd[%ld]: %s\n",
		    (long)getpid(), msg);
		if (len > (int)sizeof(line) - 1)
			len = sizeof(line) - 1;
		/* A failed write has nowhere left to be reported. */
		if (write(STDERR_FILENO, line, len) != len)
			errno = saved;
	} else
		syslog(pri, "%s", msg);
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
