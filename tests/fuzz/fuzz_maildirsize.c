/*
 * fuzz_maildirsize - libFuzzer target for the Maildir++ maildirsize
 * parser: whatever the bytes, it returns, and on success the totals it
 * reports are not negative (a negative sum must force a rebuild).
 */
#include <stdint.h>
#include <stdlib.h>

#include "maildir.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildir_quota_usage u;

	if (maildir_quota_parse(data, size, &u) == 0 &&
	    (u.bytes < 0 || u.count < 0 || u.limit_bytes > INT64_MAX ||
	    u.limit_count > INT64_MAX))
		abort();
	return 0;
}
