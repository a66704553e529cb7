/*
 * fuzz_smtp_data - libFuzzer target for the DATA/BDAT byte reader
 *
 * The first byte picks the mode and a chunk size; the rest is pushed in
 * chunks of that size.  Checked: output never exceeds its promised room,
 * consumption stops only at the end marker, the size counter matches.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data st;
	size_t chunk, off = 0, n, used, o, total = 0;
	char *out;

	if (size == 0)
		return 0;
	smtp_data_init(&st, (data[0] & 0x80) ? SMTP_DATA_RAW : 0);
	chunk = (size_t)(data[0] & 0x7f) + 1;
	data++;
	size--;
	out = malloc(SMTP_DATA_OUT_MAX(chunk));
	while (off < size) {
		n = size - off < chunk ? size - off : chunk;
		used = smtp_data_push(&st, (const char *)data + off, n, out,
		    &o);
		if (o > SMTP_DATA_OUT_MAX(n) || used > n)
			abort();
		if (used < n && !st.is_done)
			abort();
		total += o;
		off += used;
		if (st.is_done)
			break;
	}
	total += smtp_data_finish(&st, out);
	if (st.size != total)
		abort();
	free(out);
	return 0;
}
