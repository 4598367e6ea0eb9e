/*
 * Deadlines for a worker's connections.  Every timeout of one kind has
 * the same length, so a FIFO list per kind is always in deadline order:
 * starting, stopping and expiring a timer are O(1), and the earliest
 * deadline is the smallest of the lists' heads.
 */
#ifndef TIMER_H
#define TIMER_H

#include <sys/queue.h>

enum timer_kind {
	TIMER_HELLO,		/* handshake_timeout: a new TLS connection's first byte */
	TIMER_HANDSHAKE,	/* handshake_timeout: the rest of the handshake */
	TIMER_FIRST,		/* header_timeout: a new connection's first byte */
	TIMER_HEAD,		/* header_timeout: one request head */
	TIMER_BODY,		/* header_timeout: one request body */
	TIMER_IDLE,		/* keepalive_timeout: between requests */
	TIMER_SEND,		/* send_timeout: a response parked on a full socket */
	TIMER_LINGER,		/* draining input before a close */
	TIMER_KINDS,
	TIMER_NONE = -1
};

struct timer {
	TAILQ_ENTRY(timer)	 entry;
	long long		 deadline;	/* ms, CLOCK_MONOTONIC */
	int			 kind;		/* TIMER_NONE: not running */
};

struct timers {
	TAILQ_HEAD(, timer)	 q[TIMER_KINDS];
	long long		 len[TIMER_KINDS];	/* ms */
};

void		 timers_init(struct timers *, const long long [TIMER_KINDS]);
void		 timer_init(struct timer *);
/* (Re)starts t as a timer of kind, due len[kind] ms after now. */
void		 timer_start(struct timers *, struct timer *, int, long long);
void		 timer_stop(struct timers *, struct timer *);
/* Milliseconds until the earliest deadline (0 if one is past), or -1. */
long long	 timers_next(const struct timers *, long long);
/* The first timer due at now, stopped, and its kind; NULL when none is. */
struct timer	*timers_expired(struct timers *, long long, int *);
/* The oldest running timer of kind, or NULL. */
struct timer	*timers_first(const struct timers *, int);

#endif
