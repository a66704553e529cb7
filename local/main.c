/*
 * local - the local delivery agent (see local(8))
 *
 * Run by master as "local -c CONFIG_DIR -n SERVICE" on the unix socket
 * private/local.  This file only sets up: it reads the settings the
 * delivery code needs into local_conf while the process is single
 * threaded, starts the workers and hands each qmgr connection to
 * conn.c.
 */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ev.h"
#include "local.h"
#include "log.h"
#include "maildir.h"
#include "mem.h"
#include "server.h"

struct local_conf local_conf;
static struct ev *local_ev;

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

static int
local_init(struct ev *ev, struct cfg *cfg)
{
	struct local_conf *c = &local_conf;

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
	local_pool_start(ev, c->workers);
	return 0;
}

static void
local_accept(struct ev *ev, int fd, const struct server_peer *peer)
{
	(void)peer;
	local_conn_new(ev, fd);
}

/* local_stop - SIGTERM: finish the deliveries under way, then end */
static void
local_stop(struct ev *ev)
{
	(void)ev;
	local_conn_close_idle();
	local_stopping_check();
}

static const struct server_ops local_ops = {
	.name = "local",
	.init = local_init,
	.accept = local_accept,
	.stop = local_stop,
};

int
main(int argc, char **argv)
{
	int rc;

	rc = server_main(argc, argv, &local_ops);
	local_pool_stop();
	local_conn_free_all();
	local_conf_free();
	return rc;
}

void
local_stopping_check(void)
{
	/* every answer written and every connection closed: done */
	if (server_is_stopping() && local_pool_busy() == 0 &&
	    local_conn_count() == 0 && local_ev != NULL)
		ev_stop(local_ev);
}
