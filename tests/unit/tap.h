/*
 * A tiny TAP producer for the unit tests, header-only: each test file
 * includes it once.  Output is "ok N - desc" / "not ok N - desc", with
 * "# " diagnostics after a failure, and "1..N" from done_testing().
 * Diagnostics go to stdout so the harness can attach them to the
 * failure they follow.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define TAP_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#define TAP_UNUSED		__attribute__((unused))

static int	tap_count;
static int	tap_failed;

/* A description never breaks a TAP line: controls print as '?'. */
static TAP_UNUSED TAP_PRINTF(2, 0) void
tap_vline(int pass, const char *fmt, va_list ap)
{
	char	desc[512];
	size_t	i;

	vsnprintf(desc, sizeof(desc), fmt, ap);
	for (i = 0; desc[i] != '\0'; i++)
		if ((unsigned char)desc[i] < 0x20 || desc[i] == 0x7f)
			desc[i] = '?';
	tap_count++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - %s\n", pass ? "" : "not ", tap_count, desc);
}

static TAP_UNUSED TAP_PRINTF(1, 2) void
diag(const char *fmt, ...)
{
	va_list	ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static TAP_UNUSED TAP_PRINTF(2, 3) int
ok(int pass, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	tap_vline(pass, fmt, ap);
	va_end(ap);
	return pass;
}

static TAP_UNUSED TAP_PRINTF(3, 4) int
is_int(long long got, long long want, const char *fmt, ...)
{
	va_list	ap;
	int	pass = got == want;

	va_start(ap, fmt);
	tap_vline(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("     got: %lld", got);
		diag("expected: %lld", want);
	}
	return pass;
}

/* Prints bytes C-escaped, at most the first 200 of them. */
static TAP_UNUSED void
tap_escaped(const char *label, const char *p, size_t len)
{
	size_t	i, n = len > 200 ? 200 : len;

	printf("# %s\"", label);
	for (i = 0; i < n; i++) {
		unsigned char	c = p[i];

		if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			fputc(c, stdout);
	}
	printf("\"%s (%zu bytes)\n", n < len ? "..." : "", len);
}

static TAP_UNUSED TAP_PRINTF(5, 6) int
is_mem(const void *got, size_t glen, const void *want, size_t wlen,
    const char *fmt, ...)
{
	va_list		 ap;
	const char	*g = got, *w = want;
	size_t		 i;
	int		 pass;

	pass = g != NULL && w != NULL && glen == wlen &&
	    memcmp(g, w, glen) == 0;
	va_start(ap, fmt);
	tap_vline(pass, fmt, ap);
	va_end(ap);
	if (pass)
		return 1;
	if (g == NULL || w == NULL) {
		diag("     got: %s", g == NULL ? "NULL" : "(bytes)");
		diag("expected: %s", w == NULL ? "NULL" : "(bytes)");
		return 0;
	}
	for (i = 0; i < glen && i < wlen && g[i] == w[i]; i++)
		;
	diag("first difference at offset %zu", i);
	tap_escaped("     got: ", g + i, glen - i);
	tap_escaped("expected: ", w + i, wlen - i);
	return 0;
}

static TAP_UNUSED TAP_PRINTF(3, 4) int
is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list	ap;
	int	pass;

	pass = got != NULL && want != NULL && strcmp(got, want) == 0;
	va_start(ap, fmt);
	tap_vline(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		if (got == NULL)
			diag("     got: NULL");
		else
			tap_escaped("     got: ", got, strlen(got));
		if (want == NULL)
			diag("expected: NULL");
		else
			tap_escaped("expected: ", want, strlen(want));
	}
	return pass;
}

/* Ends the run: prints the plan; the result is main's exit status. */
static TAP_UNUSED int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		diag("failed %d of %d tests", tap_failed, tap_count);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
