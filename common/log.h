/*
 * One logging API for the daemon: stderr in the foreground, syslog as a
 * daemon.  Never call these from a signal handler.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

void	log_init(int foreground);
void	log_detach(void);
/* Error and access log targets: "", "stderr", "syslog", "off" or a path. */
int	log_open(const char *, const char *, char *, size_t);
/* The same in two steps: open both, then put them in use (or close). */
struct log_files {
	int	err_mode, err_fd;
	int	acc_mode, acc_fd;
};
int	log_prepare(const char *, const char *, struct log_files *, char *,
	    size_t);
void	log_commit(const struct log_files *);
void	log_discard(const struct log_files *);
void	log_close(void);
int	log_access_on(void);
void	log_access(const char *, ...) __attribute__((format(printf, 1, 2)));
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
