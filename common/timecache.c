#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timecache.h"

static const char	tc_days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
			    "Fri", "Sat" };
static const char	tc_months[12][4] = { "Jan", "Feb", "Mar", "Apr",
			    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
			    "Dec" };
static const char	tc_longdays[7][10] = { "Sunday", "Monday", "Tuesday",
			    "Wednesday", "Thursday", "Friday", "Saturday" };

static time_t	tc_now = -1;
static char	tc_http[TIMECACHE_HTTP_LEN + 1];
static char	tc_log[TIMECACHE_CLF_LEN + 1];

void
timecache_format(time_t t, char out[TIMECACHE_HTTP_LEN + 1])
{
	struct tm	tm;

	/* Formatted by hand: strftime's %a and %b follow the locale. */
	gmtime_r(&t, &tm);
	snprintf(out, TIMECACHE_HTTP_LEN + 1,
	    "%s, %02d %s %04d %02d:%02d:%02d GMT", tc_days[tm.tm_wday % 7],
	    tm.tm_mday, tc_months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The local time of t and its offset east of UTC, in minutes. */
static void
tc_local(time_t t, struct tm *tm, char *sign, long *off)
{
	localtime_r(&t, tm);
	*off = tm->tm_gmtoff / 60;
	*sign = *off < 0 ? '-' : '+';
	if (*off < 0)
		*off = -*off;
}

void
timecache_clf(time_t t, char out[TIMECACHE_CLF_LEN + 1])
{
	struct tm	tm;
	long		off;
	char		sign, buf[80];

	tc_local(t, &tm, &sign, &off);
	snprintf(buf, sizeof(buf), "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld",
	    tm.tm_mday, tc_months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60 % 100, off % 60);
	strlcpy(out, buf, TIMECACHE_CLF_LEN + 1);
}

void
timecache_iso(time_t t, char out[TIMECACHE_ISO_LEN + 1])
{
	struct tm	tm;
	long		off;
	char		sign, buf[80];

	tc_local(t, &tm, &sign, &off);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon % 12 + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60 % 100, off % 60);
	strlcpy(out, buf, TIMECACHE_ISO_LEN + 1);
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
	timecache_clf(tc_now, tc_log);
	return 1;
}

long long
timecache_mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long
timecache_mono_ms(void)
{
	return timecache_mono_us() / 1000;
}

const char *
timecache_http(void)
{
	return tc_http;
}

const char *
timecache_log(void)
{
	return tc_log;
}

time_t
timecache_now(void)
{
	return tc_now;
}

/* Parsing helpers: each consumes from *p or fails without moving on. */
static int
tc_lit(const char **p, const char *end, const char *lit)
{
	size_t	n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return -1;
	*p += n;
	return 0;
}

static int
tc_num(const char **p, const char *end, int digits, int *out)
{
	int	i, v = 0;

	if (end - *p < digits)
		return -1;
	for (i = 0; i < digits; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += digits;
	*out = v;
	return 0;
}

static int
tc_month(const char **p, const char *end, int *mon)
{
	for (*mon = 0; *mon < 12; (*mon)++)
		if (tc_lit(p, end, tc_months[*mon]) == 0)
			return 0;
	return -1;
}

static int
tc_time(const char **p, const char *end, struct tm *tm)
{
	if (tc_num(p, end, 2, &tm->tm_hour) == -1 || tc_lit(p, end, ":") ||
	    tc_num(p, end, 2, &tm->tm_min) == -1 || tc_lit(p, end, ":") ||
	    tc_num(p, end, 2, &tm->tm_sec) == -1)
		return -1;
	return 0;
}

int
timecache_parse(const char *s, size_t len, time_t *t)
{
	static const int	 mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31,
				    30, 31, 30, 31 };
	const char		*p = s, *end = s + len;
	struct tm		 tm;
	int			 i, year;

	memset(&tm, 0, sizeof(tm));
	for (i = 0; i < 7; i++)
		if (tc_lit(&p, end, tc_longdays[i]) == 0 ||
		    tc_lit(&p, end, tc_days[i]) == 0)
			break;
	if (i == 7)
		return -1;
	if (tc_lit(&p, end, ", ") == 0) {
		if (p - s == 5) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (tc_num(&p, end, 2, &tm.tm_mday) == -1 ||
			    tc_lit(&p, end, " ") || tc_month(&p, end,
			    &tm.tm_mon) || tc_lit(&p, end, " ") ||
			    tc_num(&p, end, 4, &year) == -1)
				return -1;
		} else {
			/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
			if (tc_num(&p, end, 2, &tm.tm_mday) == -1 ||
			    tc_lit(&p, end, "-") || tc_month(&p, end,
			    &tm.tm_mon) || tc_lit(&p, end, "-") ||
			    tc_num(&p, end, 2, &year) == -1)
				return -1;
			/* RFC 9110 5.6.7: at most 50 years ahead. */
			year += 2000;
			if (year > 1970 + (int)(time(NULL) / 31556952) + 50)
				year -= 100;
		}
		if (tc_lit(&p, end, " ") || tc_time(&p, end, &tm) ||
		    tc_lit(&p, end, " GMT"))
			return -1;
	} else {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		if (p - s != 3 || tc_lit(&p, end, " ") ||
		    tc_month(&p, end, &tm.tm_mon) || tc_lit(&p, end, " "))
			return -1;
		if (p < end && *p == ' ') {
			p++;
			if (tc_num(&p, end, 1, &tm.tm_mday) == -1)
				return -1;
		} else if (tc_num(&p, end, 2, &tm.tm_mday) == -1)
			return -1;
		if (tc_lit(&p, end, " ") || tc_time(&p, end, &tm) ||
		    tc_lit(&p, end, " ") || tc_num(&p, end, 4, &year) == -1)
			return -1;
	}
	if (p != end || tm.tm_mday < 1 || tm.tm_mday > mdays[tm.tm_mon] ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 ||
	    year < 1900)
		return -1;
	tm.tm_year = year - 1900;
	/* timegm would turn Feb 29 of a common year into Mar 1. */
	i = tm.tm_mday;
	*t = timegm(&tm);
	gmtime_r(t, &tm);
	return tm.tm_mday == i ? 0 : -1;
}
