/*
 * The scoreboard: one shared anonymous mapping the master makes before
 * it forks anything.  Each worker slot has its own cache-line-aligned
 * counters, written only by its worker with plain relaxed stores (one
 * writer, no locks, no lock prefix); the master folds a slot into the
 * retired totals when it reaps the worker, under a sequence count that
 * readers retry on, so a total never goes backwards while the master
 * lives (the Linux seqcount; Apache's scoreboard for the idea).
 */
#ifndef STATUS_H
#define STATUS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "timer.h"

/* Every worker, and the old generations still finishing. */
#define STATUS_SLOTS	(CONF_MAX_WORKERS * 4)

/* The response codes the server can send, in counter order. */
#define STATUS_CODES	{ 200, 204, 304, 400, 403, 404, 405, 408, 413, \
			  414, 421, 431, 503, 505 }
#define STATUS_NCODES	14

/* Request service time buckets, in microseconds; +Inf after them. */
#define STATUS_BUCKETS_US	{ 100, 250, 500, 1000, 2500, 5000, 10000, \
				  25000, 50000, 100000, 250000, 500000, \
				  1000000, 2500000, 5000000, 10000000 }
#define STATUS_NBUCKETS	16

/* A connection's state, as nginx's stub_status counts them. */
enum status_gauge {
	STATUS_READING,		/* handshake, request head or body */
	STATUS_WRITING,		/* response, lingering close */
	STATUS_WAITING,		/* no request yet: new or idle keep-alive */
	STATUS_NGAUGES,
	STATUS_NONE = -1
};

enum status_tls {
	STATUS_TLS12,
	STATUS_TLS13,
	STATUS_NTLS
};

enum status_worker {
	STATUS_STARTING,
	STATUS_SERVING,
	STATUS_DRAINING,	/* /healthz says 503, still accepting */
	STATUS_FINISHING	/* stopping: the last connections */
};

/* Only ever grow. */
struct status_counters {
	uint64_t	accepted;	/* connections */
	uint64_t	handled;	/* taken (not dropped when full) */
	uint64_t	evicted;	/* closed to make room */
	uint64_t	requests;	/* read, well-formed or not */
	uint64_t	closed_405;	/* the 4th 405 on a connection */
	uint64_t	bytes_sent;
	uint64_t	responses[STATUS_NCODES];
	uint64_t	timeouts[TIMER_KINDS];
	uint64_t	tls_full[STATUS_NTLS];
	uint64_t	tls_resumed[STATUS_NTLS];
	uint64_t	tls_failed;
	uint64_t	duration[STATUS_NBUCKETS + 1];	/* not cumulative */
	uint64_t	duration_us;			/* their sum */
};

struct status_slot {
	pid_t			pid;		/* 0: free */
	int			generation;
	int			state;		/* enum status_worker */
	long long		started;	/* time(3) */
	int64_t			gauges[STATUS_NGAUGES];
	struct status_counters	c;
} __attribute__((aligned(64)));

/* What the workers of one generation did, those reaped. */
struct status_gen {
	int			generation;	/* -1: unused */
	uint64_t		accepted;
	uint64_t		requests;
};
#define STATUS_GENS	16	/* the latest ones */

struct status_board {
	uint32_t		seq;		/* odd while the master folds */
	int			used;		/* slots ever used */
	pid_t			master;
	long long		started;	/* time(3) */
	int			generation;
	int			workers;	/* configured */
	uint64_t		reloads_ok;
	uint64_t		reloads_failed;
	uint64_t		restarts;	/* workers that died, replaced */
	char			last_error[512];
	struct status_counters	retired;	/* workers reaped */
	struct status_gen	gens[STATUS_GENS];
	struct status_slot	slot[STATUS_SLOTS];
};

/* The board, and this worker's slot (a dummy outside a worker). */
extern struct status_board	*status_board;
extern struct status_slot	*status_me;

/* One writer per slot: a plain read and a relaxed store. */
static inline void
status_add(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

static inline void
status_gauge_add(int64_t *p, int64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

#define STATUS_INC(f)	status_add(&status_me->c.f, 1)

/* Worker side. */
void	status_attach(int, int);
void	status_state(int);
void	status_request(void);
void	status_response(int);
void	status_served(long long);
void	status_gauge(int8_t *, int);

/* Master side. */
int	status_init(void);
void	status_spawned(int, pid_t, int);
void	status_reaped(int);
void	status_reloaded(int, int, const char *, int);

/* Readers: totals of the live and the retired workers. */
void	status_totals(struct status_counters *, int64_t [STATUS_NGAUGES]);
size_t	status_metrics(char *, size_t);
size_t	status_stub(char *, size_t);
size_t	status_text(char *, size_t);
size_t	status_json(char *, size_t);
int	status_code_index(int);

#endif
