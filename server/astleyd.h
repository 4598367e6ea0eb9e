/*
 * astleyd: the daemon's structs and prototypes, grouped by file.
 */
#ifndef ASTLEYD_H
#define ASTLEYD_H

#include <sys/types.h>
#include <sys/socket.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "conf.h"
#include "http_parse.h"
#include "log.h"
#include "timecache.h"

/* Worker exit codes the master tells apart (Apache's APEXIT_CHILDFATAL). */
#define WORKER_EXIT_OK		0
#define WORKER_EXIT_FATAL	3	/* cannot run at all: back off */

struct listener {
	struct conf_listen	 cl;
	int			 fd;
};

/* The key process of a generation, as the master sees it. */
struct keyproc {
	pid_t			 pid;	/* 0: none */
	int			 fd;	/* hands it the workers' sockets */
};

/* What the master owns and every worker inherits at fork. */
struct server {
	struct conf		 conf;
	struct listener		 listeners[CONF_MAX_LISTEN];
	int			 nlisteners;
	SSL_CTX			*ssl_ctx;
	struct pidfh		*pidfh;
	int			 foreground;
	int			 lifeline;	/* to the launcher, or -1 */
	int			 generation;
	int			 ctl_fd;	/* control socket, or -1 */
	char			 ctl_path[PATH_MAX];
	int			 ready[2];	/* workers -> master: pids */
	int			 draining;	/* a graceful stop is waiting */
	struct keyproc		 keyproc;	/* pid 0 with tls_key_process off */
};

/* listener.c */
int	listeners_from_env(void);
int	listeners_open(struct server *, const struct conf *,
	    const struct server *, char *, size_t);
void	listeners_release(struct server *, const struct server *);
void	listeners_close(struct listener *, int);

/* master.c */
void	master_run(struct server *) __attribute__((noreturn));
int	master_nofile(const struct conf *, char *, size_t);
void	master_child_close(void);
void	master_sigset(sigset_t *);

/* worker.c */
#define WORKER_RUN	0
#define WORKER_QUIT	1	/* graceful: finish requests in progress */
#define WORKER_STOP	2	/* fast: finish the responses being written */
void	worker_main(struct server *) __attribute__((noreturn));
long long	worker_nofile(const struct conf *);
void	worker_drop_privileges(const struct conf *);

/* keyproc.c */
int	 keyproc_start(struct server *, struct server *,
	    const struct log_files *, char *, size_t);
int	 keyproc_attach(struct keyproc *);
void	 keyproc_retire(struct keyproc *);
int	 keyproc_reaped(pid_t, int);
void	 keyproc_worker(int);
EVP_PKEY *keyproc_pubkey(EVP_PKEY *);

/* I/O results besides a byte count, for cleartext and TLS alike. */
#define IO_EOF		0
#define IO_WANT_READ	(-1)
#define IO_WANT_WRITE	(-2)
#define IO_ERROR	(-3)
#define IO_PLAIN_HTTP	(-4)	/* a TLS handshake met a plain HTTP request */

/* conn.c */
struct conn;
int	conn_init(const struct conf *, SSL_CTX *, int, int);
void	conn_free(void);
int	conn_room(int);
void	conn_open(int, const struct conf_listen *, const struct sockaddr *,
	    socklen_t);
void	conn_event(void *, uint32_t);
void	conn_run(void);
void	conn_expire(void);
int	conn_timeout(void);
int	conn_count(void);
int	conn_buffers(void);
void	conn_quit(void);
void	conn_drain(void);
void	conn_stop(void);

/* accesslog.c */
struct accesslog_req {
	char	request[2048];
	char	referer[1024];
	char	user_agent[1024];
};
void	accesslog_take(struct accesslog_req *, const struct http_request *,
	    const char *, size_t);
void	accesslog_write(const struct accesslog_req *, const struct sockaddr *,
	    int, long long);
void	accesslog_addr(const struct sockaddr *, char *, size_t);
void	accesslog_escape(char *, size_t, const char *, size_t);

/* control.c */
#define CONTROL_TIMEOUT_MS	(3600 * 1000 + 15000)	/* shutdown_timeout max */
enum control_cmd {
	CONTROL_RELOAD,
	CONTROL_STOP,
	CONTROL_QUIT,
	CONTROL_REOPEN,
	CONTROL_STATUS,
	CONTROL_STATUS_JSON,
	CONTROL_UPGRADE,
	CONTROL_MAX
};
int	control_command(const char *);
int	control_path(const char *, char *, size_t);
int	control_open(struct server *);
void	control_close(struct server *);
int	control_accept(struct server *, int *);
void	control_reply(int, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	control_client(const char *, const char *, int);
void	control_send_status(int, size_t (*)(char *, size_t));
struct pidfh;
int	pidfile_write_pid(struct pidfh *);
int	pidfile_read_pid(const char *, pid_t *);

/* upgrade.c */
struct pollfd;
void	upgrade_init(void);
int	upgrade_from_env(int);
int	upgrade_pending(void);
int	upgrade_tickets(void);
void	upgrade_stderr(void);
void	upgrade_ready(struct server *);
int	upgrade_start(struct server *, int, char *, size_t);
void	upgrade_child_close(void);
int	upgrade_pollfds(struct pollfd *);
long long	upgrade_deadline(void);
int	upgrade_event(struct server *);
void	upgrade_handover(void);
int	upgrade_reaped(pid_t, int);
void	upgrade_expire(long long);
void	upgrade_abort(void);
int	upgrade_running(void);

/* sandbox.c */
int	sandbox_check(int, char *, size_t);
int	sandbox_enter(int);
int	sandbox_enter_keyproc(int);

/* proctitle.c */
void	 proctitle_init(int, char *[], char *[]);
const char *proctitle_cmdline(void);
void	 proctitle_set(const char *, ...)
	    __attribute__((format(printf, 1, 2)));

/* notify.c */
void	notify_send(const char *, ...) __attribute__((format(printf, 1, 2)));

/* tls.c */
SSL_CTX	*tls_ctx_new(const struct conf *, char *, size_t);
void	 tls_log_errors(const char *);
EVP_PKEY *tls_key_load(const struct conf *, char *, size_t);
void	 tls_ticket_rotate(void);
void	 tls_versions(const char **, const char **);
void	 tls_ticket_wipe(void);
size_t	 tls_ticket_export(unsigned char *, size_t);
int	 tls_ticket_import(const unsigned char *, size_t);
#define TLS_TICKET_EXPORT_MAX	256
SSL	*tls_conn_new(SSL_CTX *, int);
void	 tls_conn_info(SSL *, int *, int *);
int	 tls_handshake(SSL *, char *, size_t);
long	 tls_read(SSL *, void *, size_t);
long	 tls_write(SSL *, const void *, size_t);
int	 tls_pending(SSL *);
void	 tls_shutdown(SSL *);
void	 tls_conn_free(SSL *);

/* http.c */
enum http_resp {
	HTTP_RESP_GET,
	HTTP_RESP_HEAD,
	HTTP_RESP_304,
	HTTP_RESP_OPTIONS,	/* 204 with Allow */
	HTTP_RESP_405,
	HTTP_RESP_400,
	HTTP_RESP_408,
	HTTP_RESP_413,
	HTTP_RESP_414,
	HTTP_RESP_431,
	HTTP_RESP_505,
	HTTP_RESP_421,		/* a scheme this port does not serve */
	HTTP_RESP_400_PLAIN,	/* cleartext HTTP on the TLS port */
	HTTP_RESP_HEALTHY,	/* GET /healthz while serving */
	HTTP_RESP_DRAINING,	/* GET /healthz once a graceful stop began */
	HTTP_RESP_403,		/* the status listener, outside status_allow */
	HTTP_RESP_404,		/* the status listener, an unknown path */
	HTTP_RESP_METRICS,	/* built per request: Prometheus text */
	HTTP_RESP_STUB,		/* built per request: nginx's stub_status */
	HTTP_RESP_503,		/* a status page that could not be built */
	HTTP_RESP_MAX
};
enum http_conn {
	HTTP_CONN_NONE,		/* HTTP/1.1 keep-alive: nothing to say */
	HTTP_CONN_KEEPALIVE,	/* HTTP/1.0 keep-alive */
	HTTP_CONN_CLOSE,
	HTTP_CONN_MAX
};
int		 http_init(void);
void		 http_free(void);
const char	*http_response(int, int, size_t *);
size_t		 http_response_max(void);
int		 http_resp_for_status(int);
int		 http_resp_status(int, size_t *);
int		 http_resp_for_request(const struct http_request *);
int		 http_resp_route(const struct http_request *, const char *, int,
		    int);
int		 http_resp_status_route(const struct http_request *,
		    const char *, int, int);
int		 http_dynamic_body(int);
char		*http_dynamic_response(int, int, int, size_t *);

#endif
