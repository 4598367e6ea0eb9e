/*
 * Unit tests for common/log.c's pure parts: level names and the rate
 * limit that keeps a scanner from flooding the error log; and for
 * server/accesslog.c's escaping of untrusted bytes (nginx's \xHH).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astleyd.h"
#include "tap.h"

static void
test_levels(void)
{
	is_int(log_level_parse("error"), LOGL_ERROR, "error");
	is_int(log_level_parse("warn"), LOGL_WARN, "warn");
	is_int(log_level_parse("notice"), LOGL_NOTICE, "notice");
	is_int(log_level_parse("info"), LOGL_INFO, "info");
	is_int(log_level_parse("debug"), LOGL_DEBUG, "debug");
	is_int(log_level_parse("emerg"), -1, "emerg is not a choice");
	is_int(log_level_parse("warning"), -1, "warning is not warn");
	is_int(log_level_parse(""), -1, "empty");
}

static void
test_ratelimit(void)
{
	struct log_ratelimit	rl = { 3, -1000000, 0, 0 };
	int			i, n, held;

	/* A burst: 3 lines, then 5 held back. */
	for (i = n = 0; i < 8; i++) {
		n += log_ratelimit(&rl, 1000 + i, &held);
		is_int(held, 0, "nothing to report during the first second");
	}
	is_int(n, 3, "3 of 8 lines in one second");
	is_int(log_ratelimit_next(&rl, 1500), 500,
	    "the report is due when the second ends");
	is_int(log_ratelimit_flush(&rl, 1999), 0, "not before it ends");
	/* The next line, a second later, reports them first. */
	is_int(log_ratelimit(&rl, 2000, &held), 1, "a new second: logged");
	is_int(held, 5, "after reporting the 5 held back");
	is_int(log_ratelimit_next(&rl, 2000), -1, "nothing held now");

	/* A second that ends with lines held and no later error. */
	for (i = 0; i < 10; i++)
		log_ratelimit(&rl, 2100 + i, &held);
	is_int(rl.suppressed, 8, "8 held (2 more lines were allowed)");
	is_int(log_ratelimit_next(&rl, 3000), 0, "due at once");
	is_int(log_ratelimit_flush(&rl, 3000), 8, "flushed: 8");
	is_int(log_ratelimit_flush(&rl, 3001), 0, "reported once only");
	is_int(log_ratelimit(&rl, 3005, &held), 1, "a new second");
	is_int(held, 0, "with nothing left to report");

	/* A clock that went back starts a new second, losing nothing. */
	for (i = 0; i < 5; i++)
		log_ratelimit(&rl, 3010, &held);
	is_int(log_ratelimit(&rl, 10, &held), 1, "clock went back: logged");
	is_int(held, 3, "and the 3 held back reported");
}

static void
test_escape(void)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*want;
	} cases[] = {
		{ "GET / HTTP/1.1", 14, "GET / HTTP/1.1" },
		{ "a\"b\\c", 5, "a\\x22b\\x5Cc" },
		{ "\x01\t\r\n\x1f\x7f", 6, "\\x01\\x09\\x0D\\x0A\\x1F\\x7F" },
		{ "caf\xc3\xa9", 5, "caf\\xC3\\xA9" },
		{ "nul\0here", 8, "nul\\x00here" },
		{ "", 0, "" },
		{ " ~", 2, " ~" },
	};
	char	out[64];
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		accesslog_escape(out, sizeof(out), cases[i].in, cases[i].len);
		is_str(out, cases[i].want, "escape case %zu", i);
	}
	/* Cut at a whole byte's rendition when the buffer is full. */
	accesslog_escape(out, 8, "ab\"cd", 5);
	is_str(out, "ab\\x22c", "cut after a whole escape");
	accesslog_escape(out, 6, "ab\"cd", 5);
	is_str(out, "ab", "an escape that does not fit is left out");
	accesslog_escape(out, 1, "abc", 3);
	is_str(out, "", "room for the NUL only");
}

int
main(void)
{
	test_levels();
	test_ratelimit();
	test_escape();
	return done_testing();
}
