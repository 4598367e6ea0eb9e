/*
 * Unit tests for common/timecache.c: the IMF-fixdate formatter (RFC 9110
 * 5.6.7) and the once-a-second cache the Date header is taken from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timecache.h"
#include "tap.h"

static const struct {
	time_t		 t;
	const char	*want;
} known[] = {
	{ 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },	/* RFC 9110 */
	{ 68169600, "Tue, 29 Feb 1972 00:00:00 GMT" },	/* leap day */
	{ 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },	/* 400 years */
	{ 951868799, "Tue, 29 Feb 2000 23:59:59 GMT" },
	{ 951868800, "Wed, 01 Mar 2000 00:00:00 GMT" },
	{ 1709164800, "Thu, 29 Feb 2024 00:00:00 GMT" },
	{ 554342400, "Mon, 27 Jul 1987 00:00:00 GMT" },	/* the page's */
	{ 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT" },
	{ -1, "Wed, 31 Dec 1969 23:59:59 GMT" },
};

static void
test_format(void)
{
	char	out[TIMECACHE_HTTP_LEN + 1];
	size_t	i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		memset(out, 'X', sizeof(out));
		timecache_format(known[i].t, out);
		is_str(out, known[i].want, "timecache_format(%lld)",
		    (long long)known[i].t);
	}
	if (sizeof(time_t) > 4) {
		/* one second past the 32-bit rollover */
		timecache_format((time_t)2147483647 + 1, out);
		is_str(out, "Tue, 19 Jan 2038 03:14:08 GMT",
		    "timecache_format(2^31): no 32-bit wrap");
		timecache_format((time_t)253402300799LL, out);
		is_str(out, "Fri, 31 Dec 9999 23:59:59 GMT",
		    "timecache_format(253402300799): year 9999");
	}
	timecache_format(0, out);
	is_int(strlen(out), TIMECACHE_HTTP_LEN,
	    "formatted date is TIMECACHE_HTTP_LEN (29) bytes");
}

static void
test_update(void)
{
	char	want[TIMECACHE_HTTP_LEN + 1];
	time_t	before, after, first;
	int	i, r;

	before = time(NULL);
	r = timecache_update();
	after = time(NULL);
	is_int(r, 1, "first timecache_update() reports a change");
	/* The coarse clock may trail time() by a tick. */
	ok(timecache_now() >= before - 1 && timecache_now() <= after,
	    "timecache_now() %lld within [%lld, %lld] of time(NULL)",
	    (long long)timecache_now(), (long long)before - 1,
	    (long long)after);
	timecache_format(timecache_now(), want);
	is_str(timecache_http(), want,
	    "timecache_http() is timecache_now() formatted");
	is_int(strlen(timecache_http()), TIMECACHE_HTTP_LEN,
	    "timecache_http() is 29 bytes");

	/* Within one second a second update changes nothing. */
	for (i = 0; i < 5; i++) {
		first = timecache_now();
		if ((r = timecache_update()) == 0)
			break;
	}
	is_int(r, 0, "timecache_update() within the same second returns 0");
	is_int(timecache_now(), first, "timecache_now() unchanged then");

	/* Past the next second boundary it changes, and the text follows. */
	first = timecache_now();
	for (i = 0; i < 300 && timecache_update() == 0; i++) {
		struct timespec	ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	after = time(NULL);
	ok(timecache_now() > first && timecache_now() <= after,
	    "timecache_update() advances to the new second (%lld -> %lld)",
	    (long long)first, (long long)timecache_now());
	timecache_format(timecache_now(), want);
	is_str(timecache_http(), want,
	    "timecache_http() follows the new second");
}

/* HTTP-date, RFC 9110 5.6.7: IMF-fixdate and the two obsolete forms. */
static void
test_parse(void)
{
	static const struct {
		const char	*s;
		int		 rv;
		time_t		 t;
	} dates[] = {
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777 },
		{ "Sun Nov  6 08:49:37 1994", 0, 784111777 },
		{ "Sun Nov 16 08:49:37 1994", 0, 784111777 + 10 * 86400 },
		{ "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0 },
		{ "Mon, 27 Jul 1987 00:00:00 GMT", 0, 554342400 },
		{ "Tue, 29 Feb 2000 00:00:00 GMT", 0, 951782400 },
		{ "Thu, 29 Feb 2024 00:00:00 GMT", 0, 1709164800 },
		{ "Tue, 29 Feb 2000 23:59:59 GMT", 0, 951868799 },
		{ "Tue, 19 Jan 2038 03:14:08 GMT", 0, (time_t)2147483648LL },
		/* two-digit years more than 50 years ahead are in the past */
		{ "Monday, 27-Jul-87 00:00:00 GMT", 0, 554342400 },
		{ "", -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37", -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 UTC", -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT ", -1, 0 },
		{ " Sun, 06 Nov 1994 08:49:37 GMT", -1, 0 },
		{ "Sun, 6 Nov 1994 08:49:37 GMT", -1, 0 },
		{ "Sun, 06 Nov 94 08:49:37 GMT", -1, 0 },
		{ "Sun, 06 Nov 1994 8:49:37 GMT", -1, 0 },
		{ "Sun, 06 Nov 1994 08:49 GMT", -1, 0 },
		{ "Sun, 06 Foo 1994 08:49:37 GMT", -1, 0 },
		{ "Sun,06 Nov 1994 08:49:37 GMT", -1, 0 },
		{ "Xyz, 06 Nov 1994 08:49:37 GMT", -1, 0 },
		{ "Sun, 32 Jan 1994 08:49:37 GMT", -1, 0 },
		{ "Sun, 00 Jan 1994 08:49:37 GMT", -1, 0 },
		{ "Sun, 31 Apr 1994 08:49:37 GMT", -1, 0 },
		/* 29 February of common years */
		{ "Sun, 29 Feb 1987 00:00:00 GMT", -1, 0 },
		{ "Sun, 29 Feb 1900 00:00:00 GMT", -1, 0 },
		{ "Sun, 30 Feb 2000 00:00:00 GMT", -1, 0 },
		{ "Sun, 06 Nov 1994 24:00:00 GMT", -1, 0 },
		{ "Sun, 06 Nov 1994 08:60:00 GMT", -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:61 GMT", -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT, x", -1, 0 },
		{ "Sunday, 06-Nov-1994 08:49:37 GMT", -1, 0 },
		{ "Sun Nov 6 08:49:37 1994", -1, 0 },
		{ "Sun Nov  6 08:49:37 94", -1, 0 },
		{ "1994-11-06T08:49:37Z", -1, 0 },
		{ "784111777", -1, 0 },
	};
	char	*buf;
	size_t	 i, len;
	time_t	 t;
	int	 rv;

	for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		/* Exactly len bytes, no NUL: the parser must respect len. */
		len = strlen(dates[i].s);
		if ((buf = malloc(len ? len : 1)) == NULL)
			abort();
		memcpy(buf, dates[i].s, len);
		t = -12345;
		rv = timecache_parse(buf, len, &t);
		if (dates[i].rv == 0) {
			if (!ok(rv == 0 && t == dates[i].t,
			    "timecache_parse(\"%s\") = %lld", dates[i].s,
			    (long long)dates[i].t))
				diag("returned %d, time %lld", rv,
				    (long long)t);
		} else
			is_int(rv, -1, "timecache_parse(\"%s\") refused",
			    dates[i].s);
		free(buf);
	}
	rv = timecache_parse("Sun, 06 Nov 1994 08:49:37 GMTxyz", 29, &t);
	ok(rv == 0 && t == 784111777,
	    "timecache_parse stops at len, ignoring what follows");
	rv = timecache_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &t);
	is_int(rv, -1, "timecache_parse of a date cut short by len");
}

/* timecache_log: the Common Log Format twin of timecache_http. */
static void
test_log(void)
{
	const char	*h;
	char		 want[64];

	/* In UTC (main sets it), the log time is the Date header's. */
	h = timecache_http();

	snprintf(want, sizeof(want), "%.2s/%.3s/%.4s:%.8s +0000", h + 5,
	    h + 8, h + 12, h + 17);
	is_str(timecache_log(), want,
	    "timecache_log() matches timecache_http()");
	ok(strlen(timecache_log()) == 26,
	    "timecache_log() is 26 bytes, like 06/Nov/1994:08:49:37 +0000");
}

/* Local time with its offset, in and out of summer time. */
static void
test_local(void)
{
	static const struct {
		const char	*tz;
		time_t		 t;
		const char	*clf, *iso;
	} cases[] = {
		{ "UTC0", 784111777, "06/Nov/1994:08:49:37 +0000",
		    "1994-11-06T08:49:37+00:00" },
		{ "IST-05:30", 0, "01/Jan/1970:05:30:00 +0530",
		    "1970-01-01T05:30:00+05:30" },
		/* Summer time ended at 06:00 UTC that morning. */
		{ "EST5EDT,M3.2.0,M11.1.0", 784111777,
		    "06/Nov/1994:03:49:37 -0500", "1994-11-06T03:49:37-05:00" },
		{ "EST5EDT,M3.2.0,M11.1.0", 1719835200,
		    "01/Jul/2024:08:00:00 -0400", "2024-07-01T08:00:00-04:00" },
		{ "NPT-05:45", 1719835200, "01/Jul/2024:17:45:00 +0545",
		    "2024-07-01T17:45:00+05:45" },
		{ "NST03:30", 1719835200, "01/Jul/2024:08:30:00 -0330",
		    "2024-07-01T08:30:00-03:30" },
	};
	char	clf[TIMECACHE_CLF_LEN + 1], iso[TIMECACHE_ISO_LEN + 1];
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("TZ", cases[i].tz, 1);
		tzset();
		timecache_clf(cases[i].t, clf);
		is_str(clf, cases[i].clf, "timecache_clf(%lld) in %s",
		    (long long)cases[i].t, cases[i].tz);
		timecache_iso(cases[i].t, iso);
		is_str(iso, cases[i].iso, "timecache_iso(%lld) in %s",
		    (long long)cases[i].t, cases[i].tz);
	}
	/* The cached access log time follows the zone, from its next second. */
	setenv("TZ", "IST-05:30", 1);
	tzset();
	for (i = 0; i < 300 && !timecache_update(); i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	ok(strcmp(timecache_log() + 21, "+0530") == 0,
	    "timecache_log() carries the zone's offset: %s", timecache_log());
}

int
main(void)
{
	/* The cached times below are compared with UTC ones. */
	setenv("TZ", "UTC0", 1);
	tzset();
	test_format();
	test_update();
	test_parse();
	test_log();
	test_local();
	return done_testing();
}
