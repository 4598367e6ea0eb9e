/*
 * Deadlines: one FIFO list per timeout kind (timer.h).  A timer that is
 * started again goes to the tail of its kind's list: it is due last.
 */
#include <stddef.h>

#include "timer.h"

void
timers_init(struct timers *ts, const long long len[TIMER_KINDS])
{
	int	k;

	for (k = 0; k < TIMER_KINDS; k++) {
		TAILQ_INIT(&ts->q[k]);
		ts->len[k] = len[k];
	}
}

void
timer_init(struct timer *t)
{
	t->kind = TIMER_NONE;
	t->deadline = 0;
}

void
timer_stop(struct timers *ts, struct timer *t)
{
	if (t->kind == TIMER_NONE)
		return;
	TAILQ_REMOVE(&ts->q[t->kind], t, entry);
	t->kind = TIMER_NONE;
}

void
timer_start(struct timers *ts, struct timer *t, int kind, long long now)
{
	timer_stop(ts, t);
	t->kind = kind;
	t->deadline = now + ts->len[kind];
	TAILQ_INSERT_TAIL(&ts->q[kind], t, entry);
}

struct timer *
timers_first(const struct timers *ts, int kind)
{
	return TAILQ_FIRST(&ts->q[kind]);
}

/* The head due first, or NULL when no timer runs. */
static struct timer *
timers_earliest(const struct timers *ts)
{
	struct timer	*t, *first = NULL;
	int		 k;

	for (k = 0; k < TIMER_KINDS; k++)
		if ((t = TAILQ_FIRST(&ts->q[k])) != NULL &&
		    (first == NULL || t->deadline < first->deadline))
			first = t;
	return first;
}

long long
timers_next(const struct timers *ts, long long now)
{
	struct timer	*t;

	if ((t = timers_earliest(ts)) == NULL)
		return -1;
	return t->deadline > now ? t->deadline - now : 0;
}

struct timer *
timers_expired(struct timers *ts, long long now, int *kind)
{
	struct timer	*t;

	if ((t = timers_earliest(ts)) == NULL || t->deadline > now)
		return NULL;
	*kind = t->kind;
	timer_stop(ts, t);
	return t;
}
