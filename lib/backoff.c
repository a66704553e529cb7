/*
 * backoff - retry times of deferred mail (see backoff.h)
 */
#include "backoff.h"

/* backoff_age - now - arrival, 0 when negative, no overflow */
static int64_t
backoff_age(int64_t arrival, int64_t now)
{
	if (now <= arrival)
		return 0;
	if (arrival < 0 && now > INT64_MAX + arrival)
		return INT64_MAX;
	return now - arrival;
}

int64_t
backoff_delay(int64_t arrival, int64_t now, int64_t min, int64_t max)
{
	int64_t d = backoff_age(arrival, now);

	if (min < 0)
		min = 0;
	if (max < 0)
		max = 0;
	if (max < min)
		min = max;
	if (d < min)
		d = min;
	if (d > max)
		d = max;
	return d;
}

int
backoff_is_expired(int64_t arrival, int64_t now, int64_t lifetime)
{
	if (lifetime <= 0)
		return 1;
	return backoff_age(arrival, now) >= lifetime;
}

int
backoff_warn_due(int64_t arrival, int64_t last_attempt, int64_t now,
    int64_t warn)
{
	int64_t at;

	if (warn <= 0)
		return 0;
	if (arrival > INT64_MAX - warn)
		return 0;
	at = arrival + warn;
	return last_attempt < at && at <= now;
}
