/*
 * The current time as an IMF-fixdate, formatted at most once a second
 * (nginx's ngx_cached_http_time), so no request pays for strftime.
 */
#ifndef TIMECACHE_H
#define TIMECACHE_H

#include <time.h>

#define TIMECACHE_HTTP_LEN	29	/* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Returns 1 when the second changed since the last call, else 0. */
int		 timecache_update(void);
const char	*timecache_http(void);
/* Common Log Format time: "28/Nov/2026:09:00:00 +0000" */
const char	*timecache_log(void);
time_t		 timecache_now(void);
void		 timecache_format(time_t, char [TIMECACHE_HTTP_LEN + 1]);
/* CLOCK_MONOTONIC, for deadlines and durations everywhere. */
long long	 timecache_mono_ms(void);
long long	 timecache_mono_us(void);
/* HTTP-date (RFC 9110 5.6.7), all three forms: 0 and *t, or -1. */
int		 timecache_parse(const char *, size_t, time_t *);

#endif
