/*
 * One logging API for the daemon: stderr in the foreground, syslog as a
 * daemon.  Never call these from a signal handler.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

void	log_init(int foreground);
void	log_setverbose(int);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
