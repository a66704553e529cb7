/*
 * trigger - tell another service of new work, best effort, never blocking
 *
 * smtpd tells qmgr of each queued message ("request=new id=ID").  One
 * connection per message is lost under load (a unix socket's backlog
 * fills and a non-blocking connect fails with EAGAIN), so a trigger keeps
 * ONE connection to the service open on the event loop and pipelines the
 * requests over it (lib/ipc.h wire format); the answers are read and
 * dropped.  When the service is down or the connection breaks, it tries
 * again after TRIGGER_RETRY_MS while requests wait; at most
 * TRIGGER_OUT_MAX bytes wait, beyond that new requests are dropped (the
 * service's own queue scan finds the work anyway: a trigger only makes
 * it faster).
 *
 * trigger_new(ev, path) makes the trigger (it connects lazily);
 * trigger_send(t, request, id) queues one request with an id= attribute;
 * trigger_pending() is the bytes waiting; trigger_free() closes it.
 * Out of memory is fatal.
 */
#ifndef POSTA_TRIGGER_H
#define POSTA_TRIGGER_H

#include <stddef.h>

#define TRIGGER_RETRY_MS	200
#define TRIGGER_OUT_MAX		(1024 * 1024)

struct ev;
struct trigger;

struct trigger *trigger_new(struct ev *, const char *path);
void	trigger_send(struct trigger *, const char *request, const char *id);
size_t	trigger_pending(const struct trigger *);
void	trigger_free(struct trigger **);

#endif
