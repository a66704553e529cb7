/*
 * ipc - request/response between posta programs over Unix-domain sockets
 *
 * Sockets live in the queue directory: private/NAME for internal
 * services, public/NAME for the few that local tools may reach.
 *
 * Wire format.  Every message in either direction is one attr record
 * (see attr.h: length-prefixed name=value attributes, then "0:,"); there
 * is no other framing and no free text.
 *
 *   request:   request=<name>  first, then the request's own attributes
 *   response:  status=<n>      first, then reason=<text> if there is
 *                              one, then the response's own attributes
 *
 *   status 0  IPC_OK         done
 *          1  IPC_TEMPFAIL   not done, may work later (4xx-like)
 *          2  IPC_PERMFAIL   not done, will not work (5xx-like); also an
 *                            unknown request name
 *          3  IPC_PROTOERR   malformed request, or one over a limit; the
 *                            server closes the connection after it
 *
 * reason= is a short text for the log of the client; it never carries
 * secrets.  The server sends exactly one response per request, in the
 * order the requests came.  A client may pipeline: send several requests
 * and then read the responses.  A connection may stay open for many
 * requests; the server closes it after limits.idle_ms without traffic
 * (while a request of the connection is being worked on it is not idle).
 *
 *   example:  client  15:request=ping,0:,
 *             server  8:status=0,0:,
 *
 * Limits (struct ipc_limits; NULL means the IPC_*_DEFAULT values): a
 * request record over max_msg bytes or max_attrs attributes, or with an
 * attribute value over max_value bytes (0: max_msg, no own limit), is a
 * protocol error; a server holds at most max_conns connections (it
 * stops accepting while full).  A server reads a bounded chunk per
 * wake-up, handles at most IPC_REQS_PER_WAKEUP requests before letting
 * other connections run, and stops reading from a peer that does not
 * read its responses once IPC_OUT_HIGH bytes of them wait.
 *
 * Client side (blocking, every call with a deadline in milliseconds; a
 * negative timeout waits forever):
 *   ipc_connect() connects, or returns NULL with errno (ETIMEDOUT when
 *   the server's backlog stays full, ENAMETOOLONG, ECONNREFUSED...).
 *   ipc_send() writes one request (a complete record, checked: a bad one
 *   is EINVAL); ipc_recv() reads the next response into resp and returns
 *   its status (>= 0).  ipc_call() is ipc_send() then ipc_recv() within
 *   one deadline.  On -1 errno says why (ETIMEDOUT, ECONNRESET for a
 *   server that closed, EPROTO for a malformed response, EMSGSIZE); the
 *   connection is then out of step and every later call fails with
 *   EPIPE: free it and connect again.  ipc_request() starts a request
 *   in a buffer: reset, then request=<name>; add attributes with
 *   attr_put*() and finish with attr_end().
 *
 * Server side (on the event loop, never blocking):
 *   ipc_listen(path, mode) makes a listening socket: a stale socket file
 *   is removed (if a server still answers there: EADDRINUSE; a path that
 *   is not a socket is left alone: EEXIST), the new one gets mode.
 *   ipc_server_new() takes ownership of the listening fd and serves it
 *   with a table of handlers {name, fn} ended by a NULL name.  For each
 *   request the handler fn(req, arg) reads ipc_req_attrs(req), appends
 *   response attributes to ipc_req_out(req) with attr_put*() (not the
 *   end marker; at most max_msg - IPC_RESP_RESERVE bytes), may set a
 *   reason with ipc_req_reason(), and returns the status.  Or it returns
 *   IPC_DEFER to answer later: the server then reads no further request
 *   of that connection until ipc_req_done(&req, status) sends the
 *   response (req and its attrs stay valid until then).  If the peer is
 *   gone meanwhile, ipc_req_is_orphan(req) is 1 and ipc_req_done() only
 *   frees it; the owner of a deferred request must always call it.
 *   ipc_server_free() closes every connection; do not call it from a
 *   handler (ev_stop() the loop, then free).  Out of memory is fatal.
 *
 * Draining (a daemon's SIGTERM): ipc_server_drain() stops accepting and
 * closes the listening socket (connections still in its backlog are
 * left to other processes sharing it, or refused when none does),
 * closes every connection that has no deferred request and no response
 * left to write, and marks the others closing: their deferred request
 * still finishes and its response (and any response queued before it)
 * is written, then the connection is closed; requests pipelined behind
 * it are not started (the peer sees the connection end instead of
 * their responses, as it would if the process went away).  The idle
 * timeout still applies, so a peer that does not read cannot hold a
 * drain up for longer than idle_ms.  Draining twice is harmless, and
 * it may be called from a handler (that request's response still goes
 * out).  ipc_server_on_drained(srv, fn, arg) sets fn(arg) to be called
 * once, from the loop (never from inside another ipc call, so fn may
 * ipc_server_free() the server or ev_stop() the loop), when a drained
 * server has no connection left; set it before or after the drain.
 * Deferred requests orphaned by a peer that went away do not hold the
 * drain up: their owner still calls ipc_req_done(), which only frees
 * them (also after ipc_server_free()).
 */
#ifndef POSTA_IPC_H
#define POSTA_IPC_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "attr.h"
#include "buf.h"
#include "ev.h"

#define IPC_OK		0
#define IPC_TEMPFAIL	1
#define IPC_PERMFAIL	2
#define IPC_PROTOERR	3
#define IPC_DEFER	(-1)	/* handler result: ipc_req_done() comes later */

#define IPC_MSG_MAX_DEFAULT	(1024 * 1024)
#define IPC_ATTRS_MAX_DEFAULT	1024
#define IPC_CONNS_MAX_DEFAULT	1000
#define IPC_IDLE_MS_DEFAULT	(300 * 1000)
#define IPC_NAME_MAX		64	/* attribute names */
#define IPC_REQS_PER_WAKEUP	32
#define IPC_OUT_HIGH		(64 * 1024)
#define IPC_RESP_RESERVE	512	/* for status= and reason= */

struct ipc_limits {
	size_t	max_msg;	/* bytes of one record */
	size_t	max_attrs;	/* attributes of one record */
	size_t	max_conns;	/* connections of one server */
	int	idle_ms;	/* close a connection idle this long */
	size_t	max_value;	/* bytes of one attribute value; 0: max_msg */
};

struct ipc_client;
struct ipc_server;
struct ipc_req;

typedef int ipc_handler_fn(struct ipc_req *, void *arg);

struct ipc_handler {
	const char	*name;
	ipc_handler_fn	*fn;
};

/* ---- client ---- */

struct ipc_client *ipc_connect(const char *path, int timeout_ms);
void	ipc_client_free(struct ipc_client **);
/* ipc_request - reset b and put request=name in it; 0 or -1 (EMSGSIZE) */
int	ipc_request(struct buf *b, const char *name);
int	ipc_send(struct ipc_client *, const struct buf *req, int timeout_ms);
int	ipc_recv(struct ipc_client *, struct attr_rec *resp, int timeout_ms);
int	ipc_call(struct ipc_client *, const struct buf *req,
	    struct attr_rec *resp, int timeout_ms);

/* ---- server ---- */

/* ipc_listen - a listening socket at path with mode; fd or -1 (errno) */
int	ipc_listen(const char *path, mode_t mode);
struct ipc_server *ipc_server_new(struct ev *, int listen_fd,
	    const struct ipc_handler *handlers, void *arg,
	    const struct ipc_limits *lim);
void	ipc_server_free(struct ipc_server **);
/* ipc_server_conns - connections now open */
size_t	ipc_server_conns(const struct ipc_server *);
/* ipc_server_drain - stop accepting, finish deferred requests, close */
void	ipc_server_drain(struct ipc_server *);
/* ipc_server_on_drained - fn(arg) once drained with no connection left */
void	ipc_server_on_drained(struct ipc_server *, void (*fn)(void *arg),
	    void *arg);

/* the request: borrowed until the handler returns or ipc_req_done() */
const struct attr_rec *ipc_req_attrs(const struct ipc_req *);
/* ipc_req_name - the value of request= */
const char *ipc_req_name(const struct ipc_req *);
/* ipc_req_out - append the response's attributes here */
struct buf *ipc_req_out(struct ipc_req *);
/* ipc_req_reason - set reason= (cut at 255 bytes) */
void	ipc_req_reason(struct ipc_req *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* ipc_req_peer - the peer's uid and pid (SO_PEERCRED at accept) */
void	ipc_req_peer(const struct ipc_req *, uid_t *uid_r, pid_t *pid_r);
/* ipc_req_is_orphan - 1 if the connection of a deferred request is gone */
int	ipc_req_is_orphan(const struct ipc_req *);
/* ipc_req_done - answer a deferred request with status; frees it */
void	ipc_req_done(struct ipc_req **, int status);

#endif
