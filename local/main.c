/*
 * local - the local delivery agent (see local(8))
 *
 * Run by master as "local -c CONFIG_DIR -n SERVICE" on the unix socket
 * private/local.  This file only sets up: it reads the settings the
 * delivery code needs into local_conf while the process is single
 * threaded, starts the workers, takes the listening socket from the
 * skeleton (server_take_listener) and serves it with lib/ipc's server
 * and the handlers of request.c.  Run by hand (no socket passed) local
 * makes private/local itself with ipc_listen(), as qmgr does.
 *
 * SIGTERM: ipc_server_drain() stops accepting, closes the idle
 * connections and lets the deliveries under way finish and be
 * answered; once it reports the server drained and no worker holds a
 * job (one whose qmgr went away), the loop stops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ev.h"
#include "ipc.h"
#include "local.h"
#include "log.h"
#include "maildir.h"
#include "mem.h"
#include "server.h"

#define LOCAL_SOCKET	"private/local"

struct local_conf local_conf;
static struct ev *local_ev;
static struct ipc_server *local_ipc;
static int local_is_drained;

static const struct ipc_limits local_limits = {
	.max_msg = LOCAL_MSG_MAX,
	.max_attrs = LOCAL_ATTRS_MAX,
	.max_conns = SERVER_CLIENT_LIMIT,
	.idle_ms = IPC_IDLE_MS_DEFAULT,
	.max_value = LOCAL_VALUE_MAX,
};

/* local_list - a list setting, domains lower-cased, into *v_r */
static int
local_list(struct cfg *cfg, const char *name, char ***v_r, size_t *n_r)
{
	const char *pos = cfg_str(cfg, name);
	char item[1024], *s;
	int rc;

	while ((rc = cfg_list_next(&pos, item, sizeof(item))) > 0) {
		/* "file:/etc/posta/domains" is a table: keep its case */
		for (s = item; *s != '\0' && strchr(item, ':') == NULL; s++)
			if (*s >= 'A' && *s <= 'Z')
				*s = (char)(*s - 'A' + 'a');
		*v_r = xreallocarray(*v_r, *n_r + 1, sizeof(**v_r));
		(*v_r)[(*n_r)++] = xstrdup(item);
	}
	if (rc < 0) {
		log_err("%s: an item is too long", name);
		return -1;
	}
	return 0;
}

static void
local_conf_free(void)
{
	struct local_conf *c = &local_conf;
	size_t i;

	free(c->queue_dir);
	free(c->mail_root);
	free(c->delimiters);
	free(c->alias_maps);
	free(c->user_database);
	free(c->myhostname);
	for (i = 0; i < c->nmydest; i++)
		free(c->mydest[i]);
	free(c->mydest);
	for (i = 0; i < c->nvirt; i++)
		free(c->virt[i]);
	free(c->virt);
	memset(c, 0, sizeof(*c));
}

/* local_listen_fd - the listening socket to serve, or -1 */
static int
local_listen_fd(void)
{
	int lfd;

	if (server_listeners() > 1) {
		log_err("one listening socket expected, got %u",
		    server_listeners());
		return -1;
	}
	if (server_listeners() == 1)
		return server_take_listener(0);
	if ((lfd = ipc_listen(LOCAL_SOCKET, 0600)) < 0)
		log_err("cannot listen on %s: %s", LOCAL_SOCKET,
		    strerror(errno));
	return lfd;
}

static void
local_on_drained(void *arg)
{
	(void)arg;
	local_is_drained = 1;
	local_stopping_check();
}

static int
local_init(struct ev *ev, struct cfg *cfg)
{
	struct local_conf *c = &local_conf;
	int lfd;

	local_ev = ev;
	c->queue_dir = xstrdup(cfg_str(cfg, "queue_directory"));
	c->mail_root = xstrdup(cfg_str(cfg, "mail_root"));
	c->delimiters = xstrdup(cfg_str(cfg, "recipient_delimiter"));
	c->alias_maps = xstrdup(cfg_str(cfg, "alias_maps"));
	c->user_database = xstrdup(cfg_str(cfg, "user_database"));
	c->myhostname = xstrdup(cfg_str(cfg, "myhostname"));
	c->quota_default = (uint64_t)cfg_int(cfg, "local_quota_default");
	c->workers = (unsigned)cfg_int(cfg, "local_workers");
	if (local_list(cfg, "mydestination", &c->mydest, &c->nmydest) < 0 ||
	    local_list(cfg, "virtual_mailbox_domains", &c->virt,
	    &c->nvirt) < 0)
		return -1;
	if (c->mail_root[0] != '/') {
		log_err("mail_root must be an absolute path: %s", c->mail_root);
		return -1;
	}
	log_set_debug(cfg_bool(cfg, "debug"));
	maildir_set_hostname(c->myhostname);
	if ((lfd = local_listen_fd()) < 0)
		return -1;
	local_pool_start(ev, c->workers);
	local_ipc = ipc_server_new(ev, lfd, local_handlers, NULL,
	    &local_limits);
	ipc_server_on_drained(local_ipc, local_on_drained, NULL);
	return 0;
}

/* local_stop - SIGTERM: finish the deliveries under way, then end */
static void
local_stop(struct ev *ev)
{
	(void)ev;
	if (local_ipc != NULL)
		ipc_server_drain(local_ipc);
}

static const struct server_ops local_ops = {
	.name = "local",
	.init = local_init,
	.stop = local_stop,
};

int
main(int argc, char **argv)
{
	int rc;

	rc = server_main(argc, argv, &local_ops);
	local_pool_stop();
	local_conf_free();
	return rc;
}

void
local_stopping_check(void)
{
	/* every answer written, every connection closed, no job left */
	if (!server_is_stopping() || !local_is_drained ||
	    local_pool_busy() != 0 || local_ev == NULL)
		return;
	ipc_server_free(&local_ipc);
	ev_stop(local_ev);
	local_ev = NULL;
}
