/*
 * The scoreboard (status.h) and the ways to read it: Prometheus text
 * exposition (/metrics), nginx's stub_status layout (/status), and a
 * table and JSON for `astleyd -s status`.  Workers write their own slot;
 * the master writes its own fields and folds reaped slots into the
 * retired totals; anyone may read.
 */
#include <sys/mman.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "astleyd.h"
#include "status.h"

static struct status_slot	status_dummy;	/* outside a worker */
struct status_board		*status_board;
struct status_slot		*status_me = &status_dummy;

static const int		status_codes[STATUS_NCODES] = STATUS_CODES;
static const long long		status_buckets[STATUS_NBUCKETS] =
				    STATUS_BUCKETS_US;
static const char *const	status_tls_names[STATUS_NTLS] = {
	"TLSv1.2", "TLSv1.3"
};
static const char *const	status_gauge_names[STATUS_NGAUGES] = {
	"reading", "writing", "waiting"
};
static const char *const	status_timeout_names[TIMER_KINDS] = {
	[TIMER_HELLO] = "hello",
	[TIMER_HANDSHAKE] = "handshake",
	[TIMER_FIRST] = "first_request",
	[TIMER_HEAD] = "header",
	[TIMER_BODY] = "body",
	[TIMER_IDLE] = "keepalive",
	[TIMER_SEND] = "send",
	[TIMER_LINGER] = "linger",
};
static const char *const	status_state_names[] = {
	[STATUS_STARTING] = "starting",
	[STATUS_SERVING] = "serving",
	[STATUS_DRAINING] = "draining",
	[STATUS_FINISHING] = "finishing",
};

/*
 * Readers retry while the master folds a slot, a few microseconds; a
 * bounded number of times, since the board is writable by every worker
 * (a master that died mid-fold, or a worker taken over, must not make a
 * reader spin for ever: it then reports what it read).
 */
#define STATUS_TRIES	100000

static uint32_t
status_seq(struct status_board *b)
{
	uint32_t	seq;
	int		i;

	for (i = 0; i < STATUS_TRIES; i++)
		if (((seq = __atomic_load_n(&b->seq, __ATOMIC_ACQUIRE)) & 1) ==
		    0)
			return seq;
	return seq;
}

/*
 * Slots ever used: readers go no further, so a scrape reads a few
 * slots, not the whole board (half a megabyte through the cache).
 * Clamped: any worker can write it.
 */
static int
status_used(const struct status_board *b)
{
	int	n = __atomic_load_n(&b->used, __ATOMIC_RELAXED);

	return n < 0 ? 0 : n > STATUS_SLOTS ? STATUS_SLOTS : n;
}

/* ------------------------------------------------------------ writers */

int
status_init(void)
{
	void	*p;
	int	 i;

	p = mmap(NULL, sizeof(*status_board), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	status_board = p;
	for (i = 0; i < STATUS_GENS; i++)
		status_board->gens[i].generation = -1;
	status_board->master = getpid();
	status_board->started = time(NULL);
	return 0;
}

/* In a new worker: its slot, from the master's slot index. */
void
status_attach(int i, int generation)
{
	if (status_board == NULL)
		return;
	status_me = &status_board->slot[i];
	status_me->generation = generation;
	status_me->pid = getpid();
}

void
status_state(int state)
{
	__atomic_store_n(&status_me->state, state, __ATOMIC_RELAXED);
}

int
status_code_index(int code)
{
	int	i;

	for (i = 0; i < STATUS_NCODES; i++)
		if (status_codes[i] == code)
			return i;
	return -1;
}

/* A request read, or bytes that failed to be one. */
void
status_request(void)
{
	STATUS_INC(requests);
}

/* A response queued. */
void
status_response(int code)
{
	int	i;

	if ((i = status_code_index(code)) != -1)
		status_add(&status_me->c.responses[i], 1);
}

/* A response written: the time from its request's first byte, in us. */
void
status_served(long long us)
{
	struct status_counters	*c = &status_me->c;
	int			 i;

	if (us < 0)
		us = 0;
	for (i = 0; i < STATUS_NBUCKETS && us > status_buckets[i]; i++)
		;
	status_add(&c->duration[i], 1);
	status_add(&c->duration_us, us);
}

/* Moves a connection from the state *g to g (STATUS_NONE: gone). */
void
status_gauge(int8_t *cur, int g)
{
	if (*cur == g)
		return;
	if (*cur != STATUS_NONE)
		status_gauge_add(&status_me->gauges[*cur], -1);
	if (g != STATUS_NONE)
		status_gauge_add(&status_me->gauges[g], 1);
	*cur = g;
}

/* Master, after the fork. */
void
status_spawned(int i, pid_t pid, int generation)
{
	struct status_slot	*s;

	if (status_board == NULL)
		return;
	s = &status_board->slot[i];
	s->pid = pid;
	s->generation = generation;
	s->started = time(NULL);
	if (i >= status_board->used)
		__atomic_store_n(&status_board->used, i + 1, __ATOMIC_RELAXED);
}

static void
status_fold(struct status_counters *to, const struct status_counters *from)
{
	const uint64_t	*f = (const uint64_t *)from;
	uint64_t	*t = (uint64_t *)to;
	size_t		 i;

	for (i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
		t[i] += __atomic_load_n(&f[i], __ATOMIC_RELAXED);
}

/* The generation's entry, made in place of the oldest if need be. */
static struct status_gen *
status_gen(struct status_board *b, int generation, int make)
{
	struct status_gen	*g, *oldest = NULL;
	int			 i;

	for (i = 0; i < STATUS_GENS; i++) {
		g = &b->gens[i];
		if (g->generation == generation)
			return g;
		if (oldest == NULL || g->generation < oldest->generation)
			oldest = g;
	}
	if (!make)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	oldest->generation = generation;
	return oldest;
}

static void
status_gen_add(struct status_board *b, const struct status_slot *s)
{
	struct status_gen	*g = status_gen(b, s->generation, 1);

	g->accepted += __atomic_load_n(&s->c.accepted, __ATOMIC_RELAXED);
	g->requests += __atomic_load_n(&s->c.requests, __ATOMIC_RELAXED);
}

/*
 * Per generation with a live worker: its workers, and its totals (live
 * and reaped).  Returns how many, at most max, newest first.
 */
static int
status_generations(struct status_board *b, struct status_gen *out, int *nw,
    int max)
{
	struct status_gen	*g;
	struct status_slot	*s;
	int			 i, j, n = 0;
	uint32_t		 seq;
	int			 tries = 0;

	do {
		n = 0;
		seq = status_seq(b);
		for (i = 0; i < status_used(b); i++) {
			s = &b->slot[i];
			if (s->pid == 0)
				continue;
			for (j = 0; j < n && out[j].generation !=
			    s->generation; j++)
				;
			if (j == n) {
				if (n == max)
					continue;
				memset(&out[n], 0, sizeof(out[n]));
				out[n].generation = s->generation;
				nw[n] = 0;
				if ((g = status_gen(b, s->generation, 0)) != NULL)
					out[n] = *g;
				n++;
			}
			nw[j]++;
			out[j].accepted += s->c.accepted;
			out[j].requests += s->c.requests;
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while (__atomic_load_n(&b->seq, __ATOMIC_RELAXED) != seq &&
	    ++tries < STATUS_TRIES);
	/* Newest first. */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && out[j].generation >
		    out[j - 1].generation; j--) {
			struct status_gen	t = out[j];
			int			w = nw[j];

			out[j] = out[j - 1];
			nw[j] = nw[j - 1];
			out[j - 1] = t;
			nw[j - 1] = w;
		}
	return n;
}

/*
 * Master, once the worker of slot i is reaped: its counts move to the
 * retired totals, between two steps of the sequence count.
 */
void
status_reaped(int i)
{
	struct status_board	*b = status_board;

	if (b == NULL)
		return;
	__atomic_add_fetch(&b->seq, 1, __ATOMIC_SEQ_CST);
	status_fold(&b->retired, &b->slot[i].c);
	status_gen_add(b, &b->slot[i]);
	memset(&b->slot[i], 0, sizeof(b->slot[i]));
	__atomic_add_fetch(&b->seq, 1, __ATOMIC_SEQ_CST);
}

/*
 * Master: the generation serving now; with counted set, the outcome of
 * a reload (err NULL when it went well).
 */
void
status_reloaded(int generation, int workers, const char *err, int counted)
{
	struct status_board	*b = status_board;

	if (b == NULL)
		return;
	b->generation = generation;
	b->workers = workers;
	if (!counted)
		return;
	if (err == NULL) {
		b->reloads_ok++;
		return;
	}
	b->reloads_failed++;
	strlcpy(b->last_error, err, sizeof(b->last_error));
}

/* ------------------------------------------------------------ readers */

void
status_totals(struct status_counters *tot, int64_t g[STATUS_NGAUGES])
{
	struct status_board	*b = status_board;
	uint32_t		 seq;
	int			 i, j, tries = 0;

	do {
		memset(tot, 0, sizeof(*tot));
		memset(g, 0, sizeof(int64_t) * STATUS_NGAUGES);
		if (b == NULL)
			return;
		seq = status_seq(b);
		status_fold(tot, &b->retired);
		for (i = 0; i < status_used(b); i++) {
			if (__atomic_load_n(&b->slot[i].pid,
			    __ATOMIC_RELAXED) == 0)
				continue;
			status_fold(tot, &b->slot[i].c);
			for (j = 0; j < STATUS_NGAUGES; j++)
				g[j] += __atomic_load_n(&b->slot[i].gauges[j],
				    __ATOMIC_RELAXED);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while (__atomic_load_n(&b->seq, __ATOMIC_RELAXED) != seq &&
	    ++tries < STATUS_TRIES);
	/* A worker killed mid-update may leave a gauge off by one. */
	for (j = 0; j < STATUS_NGAUGES; j++)
		if (g[j] < 0)
			g[j] = 0;
}

/* An appender that counts what did not fit, as snprintf does. */
struct out {
	char	*p;
	size_t	 cap;
	size_t	 len;
};

static void __attribute__((format(printf, 2, 3)))
out(struct out *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->cap ? o->p + o->len : NULL,
	    o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += n;
}

static void
out_family(struct out *o, const char *name, const char *type,
    const char *help)
{
	out(o, "# HELP astleyd_%s %s\n# TYPE astleyd_%s %s\n", name, help,
	    name, type);
}

/*
 * Prometheus text exposition format 0.0.4.  Returns the length it
 * needs; what fits in cap is written (NUL-terminated when it all fits).
 */
size_t
status_metrics(char *buf, size_t cap)
{
	struct status_board	*b = status_board;
	struct status_counters	 t;
	struct out		 o = { buf, cap, 0 };
	int64_t			 g[STATUS_NGAUGES];
	unsigned long long	 cum;
	int			 i;

	status_totals(&t, g);
	out_family(&o, "start_time_seconds", "gauge",
	    "When the master started, seconds since the epoch.");
	out(&o, "astleyd_start_time_seconds %lld\n", b ? b->started : 0);
	out_family(&o, "generation", "gauge",
	    "The configuration generation the workers serve.");
	out(&o, "astleyd_generation %d\n", b ? b->generation : 0);
	out_family(&o, "workers", "gauge", "Workers configured.");
	out(&o, "astleyd_workers %d\n", b ? b->workers : 0);
	out_family(&o, "reloads_total", "counter",
	    "Reloads asked for, by outcome.");
	out(&o, "astleyd_reloads_total{result=\"ok\"} %llu\n"
	    "astleyd_reloads_total{result=\"failed\"} %llu\n",
	    b ? (unsigned long long)b->reloads_ok : 0,
	    b ? (unsigned long long)b->reloads_failed : 0);
	out_family(&o, "worker_restarts_total", "counter",
	    "Workers that died and were replaced.");
	out(&o, "astleyd_worker_restarts_total %llu\n",
	    b ? (unsigned long long)b->restarts : 0);
	out_family(&o, "connections_accepted_total", "counter",
	    "Connections accepted.");
	out(&o, "astleyd_connections_accepted_total %llu\n",
	    (unsigned long long)t.accepted);
	out_family(&o, "connections_handled_total", "counter",
	    "Connections taken by a worker (not refused when full).");
	out(&o, "astleyd_connections_handled_total %llu\n",
	    (unsigned long long)t.handled);
	out_family(&o, "connections_evicted_total", "counter",
	    "Idle connections closed to make room (worker_connections).");
	out(&o, "astleyd_connections_evicted_total %llu\n",
	    (unsigned long long)t.evicted);
	out_family(&o, "connections", "gauge",
	    "Open connections by state.");
	for (i = 0; i < STATUS_NGAUGES; i++)
		out(&o, "astleyd_connections{state=\"%s\"} %lld\n",
		    status_gauge_names[i], (long long)g[i]);
	out_family(&o, "connection_timeouts_total", "counter",
	    "Connections ended by a timeout, by the wait that timed out.");
	for (i = 0; i < TIMER_KINDS; i++)
		out(&o, "astleyd_connection_timeouts_total{kind=\"%s\"} "
		    "%llu\n", status_timeout_names[i],
		    (unsigned long long)t.timeouts[i]);
	out_family(&o, "connections_closed_405_total", "counter",
	    "Connections closed at their 4th 405 response.");
	out(&o, "astleyd_connections_closed_405_total %llu\n",
	    (unsigned long long)t.closed_405);
	out_family(&o, "requests_total", "counter",
	    "Requests answered, by status code.");
	for (i = 0; i < STATUS_NCODES; i++)
		out(&o, "astleyd_requests_total{code=\"%d\"} %llu\n",
		    status_codes[i], (unsigned long long)t.responses[i]);
	out_family(&o, "sent_bytes_total", "counter",
	    "Bytes written to clients (TLS: before encryption).");
	out(&o, "astleyd_sent_bytes_total %llu\n",
	    (unsigned long long)t.bytes_sent);
	out_family(&o, "tls_handshakes_total", "counter",
	    "TLS handshakes completed, by type and protocol version.");
	for (i = 0; i < STATUS_NTLS; i++)
		out(&o, "astleyd_tls_handshakes_total{type=\"full\","
		    "version=\"%s\"} %llu\n"
		    "astleyd_tls_handshakes_total{type=\"resumed\","
		    "version=\"%s\"} %llu\n", status_tls_names[i],
		    (unsigned long long)t.tls_full[i], status_tls_names[i],
		    (unsigned long long)t.tls_resumed[i]);
	out_family(&o, "tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed or timed out after the first byte.");
	out(&o, "astleyd_tls_handshake_failures_total %llu\n",
	    (unsigned long long)t.tls_failed);
	out_family(&o, "request_duration_seconds", "histogram",
	    "From a request's first byte to the last byte of its response.");
	for (cum = 0, i = 0; i < STATUS_NBUCKETS; i++) {
		cum += t.duration[i];
		out(&o, "astleyd_request_duration_seconds_bucket{le=\"%g\"} "
		    "%llu\n", status_buckets[i] / 1e6, cum);
	}
	cum += t.duration[STATUS_NBUCKETS];
	out(&o, "astleyd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "astleyd_request_duration_seconds_sum %.6f\n"
	    "astleyd_request_duration_seconds_count %llu\n", cum,
	    t.duration_us / 1e6, cum);
	out_family(&o, "worker_requests_total", "counter",
	    "Requests answered by each live worker.");
	for (i = 0; b != NULL && i < status_used(b); i++)
		if (b->slot[i].pid != 0)
			out(&o, "astleyd_worker_requests_total{pid=\"%ld\","
			    "generation=\"%d\"} %llu\n", (long)b->slot[i].pid,
			    b->slot[i].generation, (unsigned long long)
			    b->slot[i].c.requests);
	return o.len;
}

/* nginx's stub_status, byte for byte (ngx_http_stub_status_module.c). */
size_t
status_stub(char *buf, size_t cap)
{
	struct status_counters	t;
	int64_t			g[STATUS_NGAUGES];
	int			n;

	status_totals(&t, g);
	n = snprintf(buf, cap, "Active connections: %lld \n"
	    "server accepts handled requests\n"
	    " %llu %llu %llu \n"
	    "Reading: %lld Writing: %lld Waiting: %lld \n",
	    (long long)(g[0] + g[1] + g[2]), (unsigned long long)t.accepted,
	    (unsigned long long)t.handled, (unsigned long long)t.requests,
	    (long long)g[STATUS_READING], (long long)g[STATUS_WRITING],
	    (long long)g[STATUS_WAITING]);
	return n < 0 ? 0 : (size_t)n;
}

static void
out_duration(struct out *o, long long s)
{
	if (s >= 86400)
		out(o, "%lldd ", s / 86400);
	if (s >= 3600)
		out(o, "%lldh ", s / 3600 % 24);
	if (s >= 60)
		out(o, "%lldm ", s / 60 % 60);
	out(o, "%llds", s % 60);
}

/* For a person: totals, then a line per worker (varnishstat -1). */
size_t
status_text(char *buf, size_t cap)
{
	struct status_board	*b = status_board;
	struct status_gen	 gens[STATUS_GENS];
	int			 gw[STATUS_GENS], ngen;
	struct status_counters	 t;
	struct status_slot	*s;
	struct out		 o = { buf, cap, 0 };
	int64_t			 g[STATUS_NGAUGES];
	long long		 now = time(NULL);
	char			 when[32];
	struct tm		 tm;
	int			 i;

	if (b == NULL)
		return 0;
	status_totals(&t, g);
	out(&o, "astleyd %s, master %ld, up ", ASTLEYD_VERSION,
	    (long)b->master);
	out_duration(&o, now - b->started);
	out(&o, ", generation %d, %d workers\n", b->generation, b->workers);
	/* Bounded: any worker can write over it. */
	out(&o, "reloads: %llu ok, %llu failed%s%.*s%s; worker restarts: "
	    "%llu\n", (unsigned long long)b->reloads_ok,
	    (unsigned long long)b->reloads_failed,
	    b->last_error[0] ? " (last: " : "",
	    (int)strnlen(b->last_error, sizeof(b->last_error)), b->last_error,
	    b->last_error[0] ? ")" : "", (unsigned long long)b->restarts);
	ngen = status_generations(b, gens, gw, STATUS_GENS);
	for (i = 0; i < ngen; i++)
		out(&o, "generation %d%s: %d worker%s, %llu connections, %llu "
		    "requests\n", gens[i].generation, gens[i].generation ==
		    b->generation ? " (serving)" : " (finishing)", gw[i],
		    gw[i] == 1 ? "" : "s",
		    (unsigned long long)gens[i].accepted,
		    (unsigned long long)gens[i].requests);
	out(&o, "\n%-36s %20llu\n%-36s %20llu\n%-36s %20llu\n",
	    "connections_accepted", (unsigned long long)t.accepted,
	    "connections_handled", (unsigned long long)t.handled,
	    "connections_evicted", (unsigned long long)t.evicted);
	for (i = 0; i < STATUS_NGAUGES; i++)
		out(&o, "connections_%-24s %20lld\n", status_gauge_names[i],
		    (long long)g[i]);
	for (i = 0; i < TIMER_KINDS; i++)
		out(&o, "timeouts_%-27s %20llu\n", status_timeout_names[i],
		    (unsigned long long)t.timeouts[i]);
	out(&o, "%-36s %20llu\n", "requests", (unsigned long long)t.requests);
	for (i = 0; i < STATUS_NCODES; i++)
		out(&o, "responses_%-26d %20llu\n", status_codes[i],
		    (unsigned long long)t.responses[i]);
	out(&o, "%-36s %20llu\n%-36s %20llu\n", "closed_at_4th_405",
	    (unsigned long long)t.closed_405, "bytes_sent",
	    (unsigned long long)t.bytes_sent);
	for (i = 0; i < STATUS_NTLS; i++)
		out(&o, "tls_full_%-27s %20llu\ntls_resumed_%-24s %20llu\n",
		    status_tls_names[i], (unsigned long long)t.tls_full[i],
		    status_tls_names[i], (unsigned long long)t.tls_resumed[i]);
	out(&o, "%-36s %20llu\n", "tls_failed",
	    (unsigned long long)t.tls_failed);
	out(&o, "\n%7s %4s %-9s %-19s %12s %7s %7s %7s\n", "PID", "GEN",
	    "STATE", "STARTED", "REQUESTS", "READING", "WRITING", "WAITING");
	for (i = 0; i < status_used(b); i++) {
		s = &b->slot[i];
		if (s->pid == 0)
			continue;
		localtime_r(&(time_t){ s->started }, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		out(&o, "%7ld %4d %-9s %-19s %12llu %7lld %7lld %7lld\n",
		    (long)s->pid, s->generation,
		    status_state_names[s->state & 3], when,
		    (unsigned long long)s->c.requests,
		    (long long)s->gauges[STATUS_READING],
		    (long long)s->gauges[STATUS_WRITING],
		    (long long)s->gauges[STATUS_WAITING]);
	}
	return o.len;
}

static void
out_json_string(struct out *o, const char *s, size_t max)
{
	const char	*end = s + strnlen(s, max);

	out(o, "\"");
	for (; s < end; s++) {
		if (*s == '"' || *s == '\\')
			out(o, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			out(o, "\\u%04x", (unsigned char)*s);
		else
			out(o, "%c", *s);
	}
	out(o, "\"");
}

static void
out_json_array(struct out *o, const char *name, const uint64_t *v, int n)
{
	int	i;

	out(o, ",\"%s\":[", name);
	for (i = 0; i < n; i++)
		out(o, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
	out(o, "]");
}

/* The same for scripts: one JSON object. */
size_t
status_json(char *buf, size_t cap)
{
	struct status_board	*b = status_board;
	struct status_gen	 gens[STATUS_GENS];
	int			 gw[STATUS_GENS], ngen;
	struct status_counters	 t;
	struct status_slot	*s;
	struct out		 o = { buf, cap, 0 };
	int64_t			 g[STATUS_NGAUGES];
	int			 i, first = 1;

	if (b == NULL)
		return 0;
	status_totals(&t, g);
	out(&o, "{\"version\":\"%s\",\"master\":{\"pid\":%ld,"
	    "\"started\":%lld,\"uptime_seconds\":%lld,\"generation\":%d,"
	    "\"workers\":%d,\"reloads_ok\":%llu,\"reloads_failed\":%llu,"
	    "\"worker_restarts\":%llu,\"last_reload_error\":",
	    ASTLEYD_VERSION, (long)b->master, b->started,
	    (long long)time(NULL) - b->started, b->generation, b->workers,
	    (unsigned long long)b->reloads_ok,
	    (unsigned long long)b->reloads_failed,
	    (unsigned long long)b->restarts);
	out_json_string(&o, b->last_error, sizeof(b->last_error));
	out(&o, "},\"generations\":[");
	ngen = status_generations(b, gens, gw, STATUS_GENS);
	for (i = 0; i < ngen; i++)
		out(&o, "%s{\"generation\":%d,\"workers\":%d,"
		    "\"connections\":%llu,\"requests\":%llu}", i ? "," : "",
		    gens[i].generation, gw[i],
		    (unsigned long long)gens[i].accepted,
		    (unsigned long long)gens[i].requests);
	out(&o, "],\"connections\":{\"accepted\":%llu,\"handled\":%llu,"
	    "\"evicted\":%llu,\"reading\":%lld,\"writing\":%lld,"
	    "\"waiting\":%lld},\"timeouts\":{",
	    (unsigned long long)t.accepted, (unsigned long long)t.handled,
	    (unsigned long long)t.evicted, (long long)g[STATUS_READING],
	    (long long)g[STATUS_WRITING], (long long)g[STATUS_WAITING]);
	for (i = 0; i < TIMER_KINDS; i++)
		out(&o, "%s\"%s\":%llu", i ? "," : "", status_timeout_names[i],
		    (unsigned long long)t.timeouts[i]);
	out(&o, "},\"requests\":%llu,\"responses\":{",
	    (unsigned long long)t.requests);
	for (i = 0; i < STATUS_NCODES; i++)
		out(&o, "%s\"%d\":%llu", i ? "," : "", status_codes[i],
		    (unsigned long long)t.responses[i]);
	out(&o, "},\"closed_405\":%llu,\"bytes_sent\":%llu,\"tls\":{",
	    (unsigned long long)t.closed_405,
	    (unsigned long long)t.bytes_sent);
	for (i = 0; i < STATUS_NTLS; i++)
		out(&o, "\"%s\":{\"full\":%llu,\"resumed\":%llu},",
		    status_tls_names[i], (unsigned long long)t.tls_full[i],
		    (unsigned long long)t.tls_resumed[i]);
	out(&o, "\"failed\":%llu},\"request_duration\":{\"sum_us\":%llu",
	    (unsigned long long)t.tls_failed,
	    (unsigned long long)t.duration_us);
	out(&o, ",\"le_us\":[");
	for (i = 0; i < STATUS_NBUCKETS; i++)
		out(&o, "%s%lld", i ? "," : "", status_buckets[i]);
	out(&o, "]");
	out_json_array(&o, "counts", t.duration, STATUS_NBUCKETS + 1);
	out(&o, "},\"workers\":[");
	for (i = 0; i < status_used(b); i++) {
		s = &b->slot[i];
		if (s->pid == 0)
			continue;
		out(&o, "%s{\"pid\":%ld,\"generation\":%d,\"state\":\"%s\","
		    "\"started\":%lld,\"requests\":%llu,\"reading\":%lld,"
		    "\"writing\":%lld,\"waiting\":%lld}", first ? "" : ",",
		    (long)s->pid, s->generation,
		    status_state_names[s->state & 3], s->started,
		    (unsigned long long)s->c.requests,
		    (long long)s->gauges[STATUS_READING],
		    (long long)s->gauges[STATUS_WRITING],
		    (long long)s->gauges[STATUS_WAITING]);
		first = 0;
	}
	out(&o, "]}\n");
	return o.len;
}
