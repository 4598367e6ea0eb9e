#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timecache.h"

static time_t	tc_now = -1;
static char	tc_http[TIMECACHE_HTTP_LEN + 1];

void
timecache_format(time_t t, char out[TIMECACHE_HTTP_LEN + 1])
{
	static const char	 days[7][4] = { "Sun", "Mon", "Tue", "Wed",
				    "Thu", "Fri", "Sat" };
	static const char	 months[12][4] = { "Jan", "Feb", "Mar", "Apr",
				    "May", "Jun", "Jul", "Aug", "Sep", "Oct",
				    "Nov", "Dec" };
	struct tm		 tm;

	/* Formatted by hand: strftime's %a and %b follow the locale. */
	gmtime_r(&t, &tm);
	snprintf(out, TIMECACHE_HTTP_LEN + 1,
	    "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int
timecache_update(void)
{
	struct timespec	ts;

	/* The coarse clock is a vDSO read: no system call per request. */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec == tc_now)
		return 0;
	tc_now = ts.tv_sec;
	timecache_format(tc_now, tc_http);
	return 1;
}

const char *
timecache_http(void)
{
	return tc_http;
}

time_t
timecache_now(void)
{
	return tc_now;
}
