/*
 * Unit tests for server/timer.c: per-kind FIFO deadlines, the earliest
 * one across kinds, restart, stop and expiry order.
 */
#include <stddef.h>

#include "timer.h"
#include "tap.h"

static const long long	lens[TIMER_KINDS] = {
	[TIMER_HELLO] = 1000,
	[TIMER_HANDSHAKE] = 1000,
	[TIMER_FIRST] = 3000,
	[TIMER_HEAD] = 3000,
	[TIMER_BODY] = 3000,
	[TIMER_IDLE] = 500,
	[TIMER_SEND] = 2000,
	[TIMER_LINGER] = 200,
};

static void
test_empty(void)
{
	struct timers	ts;
	int		kind = -7;

	timers_init(&ts, lens);
	is_int(timers_next(&ts, 0), -1, "no timer: no limit");
	ok(timers_expired(&ts, 1LL << 40, &kind) == NULL, "nothing expires");
	is_int(kind, -7, "kind untouched when nothing expired");
}

static void
test_earliest_across_kinds(void)
{
	struct timers	ts;
	struct timer	head, idle, hs;

	timers_init(&ts, lens);
	timer_init(&head);
	timer_init(&idle);
	timer_init(&hs);
	timer_start(&ts, &head, TIMER_HEAD, 100);	/* due 3100 */
	is_int(timers_next(&ts, 100), 3000, "one head timer: 3000 ms");
	timer_start(&ts, &idle, TIMER_IDLE, 200);	/* due 700 */
	is_int(timers_next(&ts, 200), 500, "idle started later is due first");
	timer_start(&ts, &hs, TIMER_HANDSHAKE, 300);	/* due 1300 */
	is_int(timers_next(&ts, 300), 400, "still the idle one");
	is_int(timers_next(&ts, 900), 0, "past due: 0, never negative");
	ok(timers_first(&ts, TIMER_IDLE) == &idle, "first idle");
	ok(timers_first(&ts, TIMER_SEND) == NULL, "no send timer");
}

static void
test_expiry_order(void)
{
	struct timers	ts;
	struct timer	t[6], *got;
	int		kind, i;
	/* Started at 0, 10, 20... over three kinds. */
	static const int kinds[6] = { TIMER_HEAD, TIMER_IDLE, TIMER_HEAD,
	    TIMER_IDLE, TIMER_LINGER, TIMER_HEAD };
	/* Due: 3000, 510, 3020, 530, 240, 3050: expected order by index. */
	static const int order[6] = { 4, 1, 3, 0, 2, 5 };

	timers_init(&ts, lens);
	for (i = 0; i < 6; i++) {
		timer_init(&t[i]);
		timer_start(&ts, &t[i], kinds[i], i * 10);
	}
	ok(timers_expired(&ts, 239, &kind) == NULL, "nothing due at 239");
	for (i = 0; i < 6; i++) {
		got = timers_expired(&ts, 10000, &kind);
		ok(got == &t[order[i]], "expiry %d is timer %d", i, order[i]);
		if (got != NULL) {
			is_int(kind, kinds[order[i]], "its kind");
			is_int(got->kind, TIMER_NONE, "stopped once expired");
		}
	}
	ok(timers_expired(&ts, 10000, &kind) == NULL, "all expired");
}

static void
test_restart_and_stop(void)
{
	struct timers	ts;
	struct timer	a, b;
	int		kind;

	timers_init(&ts, lens);
	timer_init(&a);
	timer_init(&b);
	timer_start(&ts, &a, TIMER_IDLE, 0);		/* due 500 */
	timer_start(&ts, &b, TIMER_IDLE, 100);		/* due 600 */
	timer_start(&ts, &a, TIMER_IDLE, 200);		/* again: due 700 */
	ok(timers_first(&ts, TIMER_IDLE) == &b, "restarted goes last");
	is_int(timers_next(&ts, 200), 400, "b is next, at 600");
	timer_start(&ts, &b, TIMER_SEND, 300);		/* moves kind: 2300 */
	ok(timers_first(&ts, TIMER_IDLE) == &a, "moved out of its list");
	is_int(timers_next(&ts, 300), 400, "a at 700 is next");
	timer_stop(&ts, &a);
	timer_stop(&ts, &a);				/* harmless twice */
	is_int(a.kind, TIMER_NONE, "stopped");
	is_int(timers_next(&ts, 300), 2000, "only b is left");
	ok(timers_expired(&ts, 2299, &kind) == NULL, "b not due at 2299");
	ok(timers_expired(&ts, 2300, &kind) == &b && kind == TIMER_SEND,
	    "b due at exactly 2300, as a send timer");
	is_int(timers_next(&ts, 2300), -1, "empty again");
}

int
main(void)
{
	test_empty();
	test_earliest_across_kinds();
	test_expiry_order();
	test_restart_and_stop();
	return done_testing();
}
