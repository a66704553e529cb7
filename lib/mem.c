/*
 * mem - allocation that succeeds or ends the process (see mem.h)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

static void
mem_fail(size_t n)
{
	log_fatal("out of memory allocating %zu bytes", n);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		mem_fail(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if ((p = calloc(nmemb, size)) == NULL)
		mem_fail(nmemb * size);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n ? n : 1);

	if (p == NULL)
		mem_fail(n);
	return p;
}

void *
xreallocarray(void *old, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		log_fatal("allocation overflow: %zu * %zu", nmemb, size);
	return xrealloc(old, nmemb * size);
}

char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *
xmemdup(const void *s, size_t n)
{
	void *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

void
xfree_(void **pp)
{
	free(*pp);
	*pp = NULL;
}
