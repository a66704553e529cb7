/*
 * fuzz_mastercf - master.conf parser on arbitrary bytes: it must never
 * crash, and a table it accepts must hold only fields that passed the
 * checks (inet listen addresses split, procs in range).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mastercf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mastercf *cf = NULL;
	struct buf errs;
	char host[MASTERCF_HOST_MAX];
	unsigned port;
	size_t i;

	buf_init(&errs, 0);
	if (mastercf_parse((const char *)data, size, "fuzz", &cf,
	    &errs) == 0) {
		for (i = 0; i < cf->n; i++) {
			if (cf->svc[i].procs < 1 ||
			    cf->svc[i].procs > MASTERCF_PROCS_MAX)
				abort();
			if (cf->svc[i].type == MASTERCF_INET &&
			    mastercf_inet_split(cf->svc[i].listen, host,
			    sizeof(host), &port) < 0)
				abort();
			if (cf->svc[i].noverrides > cf->svc[i].nargs)
				abort();
		}
		mastercf_free(&cf);
	} else if (cf != NULL || errs.len == 0)
		abort();	/* failure must say why and return no table */
	buf_deinit(&errs);
	return 0;
}
