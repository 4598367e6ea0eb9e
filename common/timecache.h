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
/* Common Log Format time, local: "28/Nov/2026:09:00:00 +0100" */
const char	*timecache_log(void);
time_t		 timecache_now(void);
void		 timecache_format(time_t, char [TIMECACHE_HTTP_LEN + 1]);
/*
 * Log times in the local time zone with its offset (tzset() first: the
 * zone is read once).  Common Log Format and ISO 8601 (RFC 3339).
 */
#define TIMECACHE_CLF_LEN	26	/* "28/Nov/2026:09:00:00 +0100" */
#define TIMECACHE_ISO_LEN	25	/* "2026-11-28T09:00:00+01:00" */
void		 timecache_clf(time_t, char [TIMECACHE_CLF_LEN + 1]);
void		 timecache_iso(time_t, char [TIMECACHE_ISO_LEN + 1]);
/* CLOCK_MONOTONIC, for deadlines and durations everywhere. */
long long	 timecache_mono_ms(void);
long long	 timecache_mono_us(void);
/* HTTP-date (RFC 9110 5.6.7), all three forms: 0 and *t, or -1. */
int		 timecache_parse(const char *, size_t, time_t *);

#endif
