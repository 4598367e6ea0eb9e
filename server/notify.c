/*
 * systemd's sd_notify protocol, spoken directly: one datagram of
 * "KEY=value" lines to $NOTIFY_SOCKET.  No libsystemd needed, and without
 * the variable (not under systemd) nothing is sent.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "astleyd.h"

void
notify_send(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	char			 msg[512];	/* what systemd reads */
	socklen_t		 len;
	va_list			 ap;
	int			 fd, n;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		return;
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	else
		len++;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/*
	 * Too long for one datagram systemd takes: cut the tail, which is
	 * always STATUS=, rather than drop a READY=1 with it (the unit would
	 * stay "reloading").
	 */
	if ((size_t)n >= sizeof(msg)) {
		n = sizeof(msg) - 1;
		memcpy(msg + n - 3, "...", 3);
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sun, len) !=
	    n)
		log_warn("sd_notify %s", path);
	close(fd);
}
