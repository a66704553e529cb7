/*
 * backoff - when to try a deferred message again, and when to give up
 *
 * Pure arithmetic on wall-clock seconds, no I/O, so that qmgr, the
 * queue tools and the unit tests agree on it.
 *
 * backoff_delay(arrival, now, min, max) is the wait before the next
 * attempt of a message that arrived at arrival and was just deferred at
 * now: the message's age, clamped to [min, max] (Postfix's rule).  The
 * age roughly doubles from one attempt to the next, so the waits grow
 * exponentially from min up to max; the rule keeps no state, so a
 * restart of qmgr gives the same schedule.  A clock that went backwards
 * (arrival in the future) counts as age 0.  max below min means max.
 * Overflowing values are clamped, never wrapped.
 *
 * backoff_is_expired(arrival, now, lifetime) is 1 once a message has
 * been in the queue for lifetime seconds or more (lifetime 0: a
 * temporary failure is at once final), else 0.
 *
 * backoff_warn_due(arrival, last_attempt, now, warn) is 1 if a delay
 * warning is due now: warn > 0 and the moment arrival + warn lies in
 * (last_attempt, now], so that exactly one attempt crosses it and the
 * warning goes out once without any record of having been sent.
 */
#ifndef POSTA_BACKOFF_H
#define POSTA_BACKOFF_H

#include <stdint.h>

int64_t	backoff_delay(int64_t arrival, int64_t now, int64_t min, int64_t max);
int	backoff_is_expired(int64_t arrival, int64_t now, int64_t lifetime);
int	backoff_warn_due(int64_t arrival, int64_t last_attempt, int64_t now,
	    int64_t warn);

#endif
