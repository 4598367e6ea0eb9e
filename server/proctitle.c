/*
 * Process titles as nginx's read: "astleyd: master process" followed by
 * the master's command line as it was started, "astleyd: worker process",
 * "astleyd: key process".  libbsd's setproctitle does the work.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "astleyd.h"

static char	*pt_arg0;	/* where the title goes: argv[0] */
static size_t	 pt_arg0len;	/* argv[0]'s length at start */
static char	 pt_cmdline[1024];

/* Before anything reads argv: the title overwrites argv[0]. */
void
proctitle_init(int argc, char *argv[], char *envp[])
{
	int	i;

	pt_cmdline[0] = '\0';
	for (i = 0; i < argc; i++) {
		if (i > 0)
			strlcat(pt_cmdline, " ", sizeof(pt_cmdline));
		strlcat(pt_cmdline, argv[i], sizeof(pt_cmdline));
	}
	if (argc > 0 && argv[0] != NULL) {
		pt_arg0 = argv[0];
		pt_arg0len = strlen(argv[0]);
	}
	setproctitle_init(argc, argv, envp);
}

/* The command line the process was started with. */
const char *
proctitle_cmdline(void)
{
	return pt_cmdline;
}

void
proctitle_set(const char *fmt, ...)
{
	char	buf[256];
	size_t	len;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	setproctitle("-astleyd: %s", buf);
	if (pt_arg0 == NULL)
		return;
	/*
	 * libbsd marks where argv[0] used to end: a '.' there when the
	 * title is shorter, a ' ' when it ends just there.  ps and
	 * /proc/PID/cmdline show the mark at the end of the title; the
	 * kernel needs none, so it goes.
	 */
	len = strlen(pt_arg0);
	if (len < pt_arg0len && pt_arg0[pt_arg0len] == '.')
		pt_arg0[pt_arg0len] = '\0';
	else if (len == pt_arg0len + 1 && pt_arg0[pt_arg0len] == ' ' &&
	    strlen(buf) + strlen("astleyd: ") == pt_arg0len)
		pt_arg0[pt_arg0len] = '\0';
}
