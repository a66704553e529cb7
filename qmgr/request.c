/*
 * request - the admin and notification requests qmgr serves on
 * private/qmgr (issue 4 contract)
 *
 *	new id=ID		incoming/ID was just queued: take it now
 *	scan			scan the queue directories now
 *	flush [id=ID|ALL]	retry deferred mail (all, or one) now
 *	delete id=ID|ALL	remove mail (incoming, active, deferred, hold)
 *	hold id=ID		move mail to hold/ (active mail after its round)
 *	release id=ID		move held mail to incoming/: it is tried now
 *	requeue id=ID|ALL	move deferred mail to incoming/: tried now
 *
 * Each answers status 0, or IPC_PERMFAIL with reason="no such message"
 * (or "bad queue ID" for an id that is not one: ids are checked before
 * they come near a path).  Requests are answered at once; a message in
 * delivery is marked and acted on when its round ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"

#define REQ_ALL		"ALL"

/* req_id - the id= attribute: 1 an ID, 2 "ALL" (if allowed), else -1 */
static int
req_id(struct ipc_req *req, char *id, bool allow_all)
{
	const char *v = attr_get_str(ipc_req_attrs(req), "id");

	if (v != NULL && allow_all && strcmp(v, REQ_ALL) == 0)
		return 2;
	if (v == NULL || !queue_id_ok(v)) {
		ipc_req_reason(req, "%s", v == NULL ? "id= missing" :
		    "bad queue ID");
		return -1;
	}
	memcpy(id, v, QUEUE_ID_LEN + 1);
	return 1;
}

static int
req_nosuch(struct ipc_req *req)
{
	ipc_req_reason(req, "no such message");
	return IPC_PERMFAIL;
}

static bool
req_exists(enum queue_dir d, const char *id)
{
	char path[64];
	struct stat st;

	(void)snprintf(path, sizeof(path), "%s/%.12s", queue_dir_name(d), id);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
req_unlink(enum queue_dir d, const char *id)
{
	char path[64];

	(void)snprintf(path, sizeof(path), "%s/%.12s", queue_dir_name(d), id);
	return unlink(path) == 0;
}

/* req_set_held - record held=1|0 in the file at dir/id (best effort) */
static void
req_set_held(enum queue_dir d, const char *id, bool held)
{
	struct queue_env *env = queue_env_new();
	const char *why;
	char path[64];
	bool is_corrupt;
	int fd;

	(void)snprintf(path, sizeof(path), "%s/%.12s", queue_dir_name(d), id);
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		if (queue_read(fd, env, &why, &is_corrupt) == 0 &&
		    env->held != held && queue_hold_append(fd, env, held) < 0)
			log_warn("%s: cannot record held=%d: %s", id, held,
			    strerror(errno));
		(void)close(fd);
	}
	queue_env_free(&env);
}

static int
req_new(struct ipc_req *req, void *arg)
{
	char id[QUEUE_ID_LEN + 1];

	(void)arg;
	if (req_id(req, id, false) < 0)
		return IPC_PERMFAIL;
	if (index_get(id) != NULL)
		return IPC_OK;
	if (!req_exists(QUEUE_INCOMING, id))
		return req_nosuch(req);
	(void)index_add(id, QE_READY, QUEUE_INCOMING);
	return IPC_OK;
}

static int
req_scan(struct ipc_req *req, void *arg)
{
	(void)req;
	(void)arg;
	scan_all(false);
	return IPC_OK;
}

static void
req_flush_one(struct qent *e, void *arg)
{
	size_t *n = arg;

	if (e->state != QE_DEFERRED)
		return;
	index_set_ready(e, QUEUE_DEFERRED, false);
	if (n != NULL)
		(*n)++;
}

static int
req_flush(struct ipc_req *req, void *arg)
{
	char id[QUEUE_ID_LEN + 1];
	struct qent *e;
	size_t n = 0;
	int k;

	(void)arg;
	k = attr_get_str(ipc_req_attrs(req), "id") == NULL ? 2 :
	    req_id(req, id, true);
	if (k < 0)
		return IPC_PERMFAIL;
	if (k == 2) {
		index_foreach(req_flush_one, &n);
		(void)attr_put_uint(ipc_req_out(req), "count", n);
		return IPC_OK;
	}
	if ((e = index_get(id)) != NULL) {
		req_flush_one(e, NULL);
		return IPC_OK;
	}
	if (req_exists(QUEUE_DEFERRED, id)) {
		(void)index_add(id, QE_READY, QUEUE_DEFERRED);
		return IPC_OK;
	}
	if (req_exists(QUEUE_INCOMING, id)) {
		(void)index_add(id, QE_READY, QUEUE_INCOMING);
		return IPC_OK;
	}
	return req_nosuch(req);
}

/* req_delete_id - 1 removed (or marked), 0 not found */
static int
req_delete_id(const char *id)
{
	struct qent *e = index_get(id);

	if (e != NULL && e->state == QE_ACTIVE) {
		e->msg->want_delete = true;	/* removed after its round */
		return 1;
	}
	if (e != NULL) {
		if (!req_unlink(e->dir, id) && errno != ENOENT)
			return 0;
		index_del(e);
		log_info("%s: removed", id);
		return 1;
	}
	if (req_unlink(QUEUE_INCOMING, id) || req_unlink(QUEUE_DEFERRED, id) ||
	    req_unlink(QUEUE_HOLD, id)) {
		log_info("%s: removed", id);
		return 1;
	}
	return 0;
}

struct req_all {
	size_t	 n;
	int	 what;		/* 0 delete, 1 requeue */
};

static void
req_delete_each(struct qent *e, void *arg)
{
	struct req_all *ra = arg;
	char id[QUEUE_ID_LEN + 1];

	memcpy(id, e->id, sizeof(id));
	ra->n += (size_t)req_delete_id(id);
}

/* req_sweep - delete every message file left in directory d */
static void
req_sweep(enum queue_dir d, struct req_all *ra)
{
	struct dirent *de;
	DIR *dir;

	if ((dir = opendir(queue_dir_name(d))) == NULL)
		return;
	while ((de = readdir(dir)) != NULL)
		if (queue_id_ok(de->d_name) && index_get(de->d_name) == NULL &&
		    req_unlink(d, de->d_name)) {
			log_info("%s: removed", de->d_name);
			ra->n++;
		}
	(void)closedir(dir);
}

static int
req_delete(struct ipc_req *req, void *arg)
{
	char id[QUEUE_ID_LEN + 1];
	struct req_all ra = { 0, 0 };
	int k;

	(void)arg;
	if ((k = req_id(req, id, true)) < 0)
		return IPC_PERMFAIL;
	if (k == 2) {
		index_foreach(req_delete_each, &ra);
		req_sweep(QUEUE_INCOMING, &ra);
		req_sweep(QUEUE_DEFERRED, &ra);
		req_sweep(QUEUE_HOLD, &ra);
		(void)attr_put_uint(ipc_req_out(req), "count", ra.n);
		return IPC_OK;
	}
	return req_delete_id(id) ? IPC_OK : req_nosuch(req);
}

static int
req_hold(struct ipc_req *req, void *arg)
{
	char id[QUEUE_ID_LEN + 1];
	enum queue_dir from;
	struct qent *e;

	(void)arg;
	if (req_id(req, id, false) < 0)
		return IPC_PERMFAIL;
	if ((e = index_get(id)) != NULL && e->state == QE_ACTIVE) {
		e->msg->want_hold = true;
		return IPC_OK;
	}
	if (e != NULL)
		from = e->dir;
	else if (req_exists(QUEUE_HOLD, id))
		return IPC_OK;
	else if (req_exists(QUEUE_DEFERRED, id))
		from = QUEUE_DEFERRED;
	else if (req_exists(QUEUE_INCOMING, id))
		from = QUEUE_INCOMING;
	else
		return req_nosuch(req);
	req_set_held(from, id, true);
	if (msg_move(id, from, QUEUE_HOLD) < 0) {
		if (errno == ENOENT) {
			if (e != NULL)
				index_del(e);
			return req_nosuch(req);
		}
		ipc_req_reason(req, "cannot move to hold/: %s",
		    strerror(errno));
		return IPC_TEMPFAIL;
	}
	if (e != NULL)
		index_del(e);
	log_info("%s: placed on hold", id);
	return IPC_OK;
}

static int
req_release(struct ipc_req *req, void *arg)
{
	char id[QUEUE_ID_LEN + 1];

	(void)arg;
	if (req_id(req, id, false) < 0)
		return IPC_PERMFAIL;
	if (!req_exists(QUEUE_HOLD, id))
		return req_nosuch(req);
	req_set_held(QUEUE_HOLD, id, false);
	if (msg_move(id, QUEUE_HOLD, QUEUE_INCOMING) < 0) {
		if (errno == ENOENT)
			return req_nosuch(req);
		ipc_req_reason(req, "cannot move to incoming/: %s",
		    strerror(errno));
		return IPC_TEMPFAIL;
	}
	log_info("%s: released from hold", id);
	if (index_get(id) == NULL)
		(void)index_add(id, QE_READY, QUEUE_INCOMING);
	return IPC_OK;
}

/* req_requeue_id - 1 requeued (or marked), 0 not found, -1 error */
static int
req_requeue_id(const char *id)
{
	struct qent *e = index_get(id);

	if (e != NULL && e->state == QE_ACTIVE) {
		e->msg->want_requeue = true;
		return 1;
	}
	if (e != NULL && e->dir == QUEUE_INCOMING)
		return 1;
	if (e == NULL && !req_exists(QUEUE_DEFERRED, id)) {
		if (!req_exists(QUEUE_INCOMING, id))
			return 0;
		(void)index_add(id, QE_READY, QUEUE_INCOMING);
		return 1;
	}
	if (msg_move(id, QUEUE_DEFERRED, QUEUE_INCOMING) < 0) {
		if (errno != ENOENT)
			log_warn("%s: cannot requeue: %s", id,
			    strerror(errno));
		return errno == ENOENT ? 0 : -1;
	}
	log_info("%s: requeued", id);
	if (e != NULL)
		index_set_ready(e, QUEUE_INCOMING, false);
	else
		(void)index_add(id, QE_READY, QUEUE_INCOMING);
	return 1;
}

static void
req_requeue_each(struct qent *e, void *arg)
{
	struct req_all *ra = arg;
	char id[QUEUE_ID_LEN + 1];

	if (e->state != QE_DEFERRED)
		return;
	memcpy(id, e->id, sizeof(id));
	if (req_requeue_id(id) == 1)
		ra->n++;
}

static int
req_requeue(struct ipc_req *req, void *arg)
{
	char id[QUEUE_ID_LEN + 1];
	struct req_all ra = { 0, 1 };
	int k;

	(void)arg;
	if ((k = req_id(req, id, true)) < 0)
		return IPC_PERMFAIL;
	if (k == 2) {
		index_foreach(req_requeue_each, &ra);
		(void)attr_put_uint(ipc_req_out(req), "count", ra.n);
		return IPC_OK;
	}
	k = req_requeue_id(id);
	if (k < 0) {
		ipc_req_reason(req, "cannot requeue");
		return IPC_TEMPFAIL;
	}
	return k == 1 ? IPC_OK : req_nosuch(req);
}

const struct ipc_handler qmgr_handlers[] = {
	{ "new", req_new },
	{ "scan", req_scan },
	{ "flush", req_flush },
	{ "delete", req_delete },
	{ "hold", req_hold },
	{ "release", req_release },
	{ "requeue", req_requeue },
	{ NULL, NULL },
};
