/*
 * fuzz_dns - dns_parse on arbitrary bytes, as an answer to each type
 *
 * The input is taken as the response packet to "a.test" for A, AAAA,
 * MX, TXT and PTR.  For every answer, checks what dns.h promises: a
 * known status, records only with DNS_OK and then at least one, at most
 * DNS_RR_MAX, each of the type asked; names lower case, valid and at
 * most DNS_NAME_MAX; addresses matching their text; TXT text ended by a
 * NUL at text_len; MX sorted by preference; ttl the smallest TTL.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"

static void
check_name(const char *name, int may_be_empty)
{
	size_t i, len;

	if (name == NULL)
		abort();
	len = strlen(name);
	if (len > DNS_NAME_MAX || (len == 0 && !may_be_empty))
		abort();
	for (i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-' ||
		    name[i] == '_' || name[i] == '.'))
			abort();
	if (len > 0 && (name[0] == '.' || name[len - 1] == '.' ||
	    strstr(name, "..") != NULL))
		abort();
}

static void
check(const struct dns_answer *a, int type)
{
	char text[64];
	unsigned minttl = 0;
	size_t i;

	if (a->status < DNS_OK || a->status > DNS_PERMFAIL || a->why == NULL ||
	    a->qtype != type || strcmp(a->qname, "a.test") != 0)
		abort();
	if ((a->status == DNS_OK) != (a->n > 0) || a->n > DNS_RR_MAX ||
	    (a->status == DNS_OK && a->why[0] != '\0'))
		abort();
	for (i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];

		if (rr->type != type)
			abort();
		if (i == 0 || rr->ttl < minttl)
			minttl = rr->ttl;
		switch (type) {
		case DNS_A:
		case DNS_AAAA:
			if (rr->family != (type == DNS_A ? AF_INET : AF_INET6) ||
			    inet_ntop(rr->family, rr->addr, text,
			    sizeof(text)) == NULL || rr->text == NULL ||
			    strcmp(text, rr->text) != 0)
				abort();
			break;
		case DNS_MX:
			check_name(rr->name, 1);
			if (i > 0 && a->rr[i - 1].pref > rr->pref)
				abort();
			break;
		case DNS_PTR:
			check_name(rr->name, 0);
			break;
		case DNS_TXT:
			if (rr->text == NULL || rr->text[rr->text_len] != '\0')
				abort();
			break;
		}
	}
	if (a->n > 0 && a->ttl != minttl)
		abort();
	(void)dns_null_mx(a);
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = { DNS_A, DNS_AAAA, DNS_MX, DNS_TXT,
	    DNS_PTR };
	struct dns_answer *a;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		a = NULL;
		if (dns_parse(data, size, "a.test", types[i], &a) != 0 ||
		    a == NULL)
			abort();
		check(a, types[i]);
		dns_answer_free(&a);
		if (a != NULL)
			abort();
	}
	return 0;
}
