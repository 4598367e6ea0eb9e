/*
 * The configuration: a file of "directive value" lines, parsed into one
 * struct conf.  Parsing never touches running state, so a reload can
 * parse into a fresh struct and throw it away on error.
 */
#ifndef CONF_H
#define CONF_H

#include <sys/socket.h>
#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#define CONF_MAX_LISTEN	16
#define CONF_MAX_WORKERS 256
#define CONF_MAX_CONNECTIONS (1024 * 1024)	/* per worker */

struct conf_listen {
	char			 name[64];	/* as written, for logs */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 tls;
	int			 any;	/* "*": [::] dual-stack, else 0.0.0.0 */
	int			 proxy;	/* a PROXY protocol header comes first */
	int			 status; /* status_listen: /metrics, /status */
};

/* An address block, IPv4 as IPv4-mapped IPv6. */
struct conf_cidr {
	unsigned char		 addr[16];
	int			 bits;	/* of the 128 */
};
#define CONF_MAX_CIDR	32

struct conf {
	char			 path[PATH_MAX];
	struct conf_listen	 listen[CONF_MAX_LISTEN];
	int			 nlisten;
	int			 workers;
	long long		 worker_connections;
	char			 user[64];
	char			 group[64];
	uid_t			 uid;
	gid_t			 gid;
	char			 pidfile[PATH_MAX];
	char			 tls_certificate[PATH_MAX];
	char			 tls_certificate_key[PATH_MAX];
	char			 error_log[PATH_MAX];	/* "" = default */
	int			 error_log_level;	/* LOGL_* */
	char			 access_log[PATH_MAX];
	int			 header_timeout;	/* all in ms */
	int			 handshake_timeout;
	int			 keepalive_timeout;
	int			 send_timeout;
	int			 shutdown_timeout;
	int			 drain_timeout;
	struct conf_cidr	 proxy_from[CONF_MAX_CIDR];
	int			 nproxy_from;
	struct conf_cidr	 status_allow[CONF_MAX_CIDR];
	int			 nstatus_allow;
	long long		 keepalive_requests;
	long long		 max_uri_size;
	long long		 max_header_size;
	long long		 max_body_size;
	int			 sandbox;	/* CONF_SANDBOX_* */
	int			 tls_key_process; /* the key in its own process */
};

/* The sandbox directive: what a worker enters before its first accept. */
#define CONF_SANDBOX_OFF	0
#define CONF_SANDBOX_LOG	1	/* the filter logs calls outside it */
#define CONF_SANDBOX_ON		2

/* 0 on success; -1 with "file:line: message" (or "file: message") in err. */
int	conf_load(const char *, struct conf *, char *, size_t);
int	conf_load_pidfile(const char *, char *, size_t, char *, size_t);
/*
 * What a file that may be broken says, its bad lines skipped: enough to
 * find the pidfile or the error log of a configuration that fails.
 */
int	conf_load_lenient(const char *, struct conf *, char *, size_t);
/* Parse from memory; name is used in messages.  For tests and conf_load. */
int	conf_parse(const char *, const char *, size_t, struct conf *,
	    char *, size_t);
/* Every directive with its value in force, as astleyd -T prints it. */
void	conf_print(FILE *, const struct conf *);
int	conf_listen_equal(const struct conf_listen *,
	    const struct conf_listen *);
/* 1 when the address is in one of the blocks. */
int	conf_cidr_match(const struct conf_cidr *, int, const struct sockaddr *);

#endif
