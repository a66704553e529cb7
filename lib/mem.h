/*
 * mem - allocation that succeeds or ends the process
 *
 * xmalloc(), xcalloc(), xrealloc(), xstrdup(), xstrndup() and
 * xmemdup() return memory or log a fatal error and exit: callers have no
 * out-of-memory path.  xcalloc() and xreallocarray() check the
 * multiplication for overflow.  xfree() frees *pp and sets it to NULL.
 */
#ifndef POSTA_MEM_H
#define POSTA_MEM_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
void	*xmemdup(const void *, size_t);
void	 xfree_(void **);
#define xfree(pp)	xfree_((void **)(pp))

#endif
