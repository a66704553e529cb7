/*
 * ipc_async - one ipc request/response on the event loop, never blocking
 *
 * The client side of lib/ipc blocks; a daemon on lib/ev (qmgr talking
 * to local, smtpd telling qmgr of new mail) uses this instead.  The
 * wire format is ipc's (ipc.h): one attr record each way.
 *
 * ipc_async_call(ev, path, req, timeout_ms, cb, arg) copies the request
 * req (a complete record, as built with ipc_request() + attr_put*() +
 * attr_end()), connects to the Unix socket path without blocking, sends
 * the request, reads one response and calls
 *
 *	cb(arg, status, resp, err)
 *
 * exactly once, always from the loop and never from inside
 * ipc_async_call(): status >= 0 is the response's status= with resp the
 * whole response record (borrowed for the call); status -1 means no
 * response: err is a short text for the log ("connect private/local: No
 * such file or directory", "timed out", "connection closed", "bad
 * response: ...") and resp is NULL.  timeout_ms (> 0) bounds the whole
 * exchange.  A response over IPC_MSG_MAX_DEFAULT bytes or
 * IPC_ATTRS_MAX_DEFAULT attributes is a bad response.
 *
 * A connection that ends with one whole response is kept idle (per
 * process, at most 64, for a minute) and the next call to the same path
 * uses it; a kept connection the server closed meanwhile is replaced by
 * a new one, once, before any byte of the response (so a request may be
 * sent twice when a server dies with it: callers must accept that, as
 * qmgr does).  ipc_async_pool_close() closes the idle ones.
 *
 * The handle is valid until cb runs (it is freed right after cb
 * returns); ipc_async_cancel() before that closes the connection and
 * the callback never runs.  Out of memory is fatal; a malformed req is
 * a caller bug (log_panic).
 */
#ifndef POSTA_IPC_ASYNC_H
#define POSTA_IPC_ASYNC_H

#include "attr.h"
#include "buf.h"
#include "ev.h"

struct ipc_async;

typedef void ipc_async_cb(void *arg, int status, const struct attr_rec *resp,
	    const char *err);

struct ipc_async *ipc_async_call(struct ev *, const char *path,
	    const struct buf *req, int timeout_ms, ipc_async_cb *cb,
	    void *arg);
void	ipc_async_cancel(struct ipc_async **);
void	ipc_async_pool_close(void);

#endif
