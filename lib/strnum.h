/*
 * strnum - strict number parsing
 *
 * Each function accepts the whole string (no sign for unsigned, no
 * leading or trailing space, no empty string) in [min, max] and stores it
 * in *val_r, or returns -1 leaving *val_r untouched.  Returns 0 on
 * success.
 *
 * str_to_time() takes a number with an optional unit suffix s, m, h, d,
 * w (seconds when none); str_to_size() takes k, m, g (KiB, MiB, GiB,
 * case-insensitive, bytes when none).  str_to_bool() takes yes/no,
 * true/false, on/off, 1/0.
 */
#ifndef POSTA_STRNUM_H
#define POSTA_STRNUM_H

#include <stdbool.h>
#include <stdint.h>

int	str_to_uint(const char *, unsigned long long min,
	    unsigned long long max, unsigned long long *val_r);
int	str_to_int(const char *, long long min, long long max,
	    long long *val_r);
int	str_to_time(const char *, long long min, long long max,
	    long long *val_r);
int	str_to_size(const char *, long long min, long long max,
	    long long *val_r);
int	str_to_bool(const char *, bool *val_r);

#endif
