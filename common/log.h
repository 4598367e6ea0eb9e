/*
 * One logging API for the daemon: stderr in the foreground, syslog as a
 * daemon, or a file.  Never call these from a signal handler.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

/* Levels, most severe first, as nginx names them. */
#define LOGL_EMERG	0	/* start-up failed, or a broken invariant */
#define LOGL_ERROR	1
#define LOGL_WARN	2
#define LOGL_NOTICE	3	/* the default: started, reloaded, stopping */
#define LOGL_INFO	4	/* what clients did wrong, rate-limited */
#define LOGL_DEBUG	5

void	log_init(int foreground);
void	log_detach(void);
/* "error", "warn", "notice", "info" or "debug": the level, or -1. */
int	log_level_parse(const char *);
/* 1 when a message at the level would be written somewhere. */
int	log_enabled(int);
/* Error and access log targets: "", "stderr", "syslog", "off" or a path. */
int	log_open(const char *, int, const char *, char *, size_t);
/* The same in two steps: open both, then put them in use (or close). */
struct log_files {
	int	err_mode, err_fd, err_level;
	int	acc_mode, acc_fd;
};
int	log_prepare(const char *, int, const char *, struct log_files *,
	    char *, size_t);
void	log_commit(const struct log_files *);
void	log_discard(const struct log_files *);
void	log_close(void);
int	log_access_on(void);
void	log_access(const char *, ...) __attribute__((format(printf, 1, 2)));
/* A failed start: to the error log and, while it is not there, stderr. */
void	log_emerg(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * At most burst lines a second; the lines held back are counted, to be
 * reported as one line ("N similar messages suppressed").
 */
struct log_ratelimit {
	int		 burst;
	long long	 start;		/* of the current second, ms */
	int		 lines;		/* logged since start */
	int		 suppressed;	/* held back, not reported yet */
};
/* 1: log this one, after reporting *report (> 0) held back; 0: hold. */
int	log_ratelimit(struct log_ratelimit *, long long, int *);
/* Once the second that held lines back is over: their count, else 0. */
int	log_ratelimit_flush(struct log_ratelimit *, long long);
/* Milliseconds until a flush has something to report, or -1. */
long long log_ratelimit_next(const struct log_ratelimit *, long long);

#endif
