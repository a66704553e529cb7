/*
 * reload - SIGHUP: read posta.conf and master.conf again and apply them
 *
 * A configuration with any error is refused as a whole (each error is
 * logged as file:line) and the running one stays.  Otherwise each
 * service is compared with the running one of the same name: unchanged
 * services keep their processes; changed ones are restarted (old
 * processes get SIGTERM, new ones start at once); removed ones are
 * stopped; new ones are started.  A new or changed service whose type
 * and listen address equal a retiring service's takes over its open
 * sockets, so a restart never closes a port (and never fails to bind
 * one the old processes still hold).  queue_directory cannot change
 * under a running master (its pid file and sockets live there): a new
 * value is ignored with a warning until the next start.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "master.h"

enum { MARK_NONE, MARK_KEPT, MARK_CHANGED, MARK_REMOVED };

/* reload_take_fds - hand a retiring service's sockets to svc */
static void
reload_take_fds(struct master *m, struct master_svc *svc)
{
	struct master_svc *o;

	if (svc->conf->type == MASTERCF_NONE)
		return;
	for (o = m->svcs; o != NULL; o = o->next) {
		if (o->conf == NULL || o == svc || o->nfds == 0 ||
		    (o->mark != MARK_CHANGED && o->mark != MARK_REMOVED))
			continue;
		if (o->conf->type != svc->conf->type ||
		    strcmp(o->conf->listen, svc->conf->listen) != 0)
			continue;
		memcpy(svc->fds, o->fds, o->nfds * sizeof(o->fds[0]));
		svc->nfds = o->nfds;
		o->nfds = 0;
		return;
	}
}

void
master_on_hup(struct ev *ev, int signo, void *arg)
{
	struct master *m = arg;
	struct master_svc *svc, *last;
	const struct mastercf_service *nc;
	struct mastercf *mcf, *old_mcf;
	struct cfg *cfg, *old_cfg;
	struct buf errs;
	unsigned nnew = 0, nchanged = 0, nremoved = 0, nkept = 0;
	size_t i;

	(void)ev;
	(void)signo;
	if (m->is_stopping)
		return;
	master_notify("RELOADING=1");
	buf_init(&errs, 0);
	if (master_config_load(m->config_dir, &cfg, &mcf, &errs) < 0) {
		master_log_errors(&errs);
		log_err("reload refused: configuration errors; the running "
		    "configuration stays in effect");
		buf_deinit(&errs);
		master_notify("READY=1");
		return;
	}
	if (strcmp(cfg_str(cfg, "queue_directory"),
	    cfg_str(m->cfg, "queue_directory")) != 0) {
		log_warn("reload: queue_directory cannot change while master "
		    "runs: keeping %s until the next start",
		    cfg_str(m->cfg, "queue_directory"));
		(void)cfg_set(cfg, "queue_directory",
		    cfg_str(m->cfg, "queue_directory"), "running master",
		    &errs);
	}
	old_cfg = m->cfg;
	old_mcf = m->mcf;
	m->cfg = cfg;
	m->mcf = mcf;
	(void)master_log_setup(m);

	/* which running services stay, which change, which go */
	last = NULL;
	for (svc = m->svcs; svc != NULL; svc = svc->next) {
		last = svc;
		svc->mark = MARK_NONE;
		if (svc->conf == NULL)
			continue;
		nc = mastercf_lookup(mcf, svc->name);
		if (nc != NULL && mastercf_service_equal(svc->conf, nc)) {
			svc->conf = nc;
			svc->mark = MARK_KEPT;
			nkept++;
		} else
			svc->mark = nc != NULL ? MARK_CHANGED : MARK_REMOVED;
	}

	/* start new and changed services, taking over sockets */
	for (i = 0; i < mcf->n; i++) {
		nc = &mcf->svc[i];
		for (svc = m->svcs; svc != NULL; svc = svc->next)
			if (svc->mark == MARK_KEPT &&
			    strcmp(svc->name, nc->name) == 0)
				break;
		if (svc != NULL)
			continue;
		for (svc = m->svcs; svc != NULL; svc = svc->next)
			if (svc->mark == MARK_CHANGED &&
			    strcmp(svc->name, nc->name) == 0)
				break;
		if (svc != NULL) {
			log_info("reload: service %s: changed (%s): "
			    "restarting", nc->name, nc->origin);
			nchanged++;
		} else {
			log_info("reload: service %s: new (%s): starting",
			    nc->name, nc->origin);
			nnew++;
		}
		svc = master_svc_new(m, nc);
		reload_take_fds(m, svc);
		buf_reset(&errs);
		if (master_svc_listen(svc, &errs) < 0) {
			master_log_errors(&errs);
			log_err("reload: service %s: cannot listen on %s: "
			    "not started", nc->name, nc->listen);
			svc->conf = NULL;
		}
	}

	/* stop what changed or went away */
	for (svc = m->svcs; svc != NULL; svc = svc->next) {
		if (svc->mark == MARK_REMOVED) {
			log_info("reload: service %s: removed: stopping %u "
			    "processes", svc->name, svc->nprocs);
			nremoved++;
		}
		if (svc->mark == MARK_CHANGED || svc->mark == MARK_REMOVED)
			master_svc_retire(svc, svc->mark == MARK_REMOVED);
		if (svc == last)
			break;
	}
	for (svc = m->svcs; svc != NULL; svc = svc->next) {
		svc->mark = MARK_NONE;
		master_svc_fill(svc);
	}
	master_svc_gc(m);
	mastercf_free(&old_mcf);
	cfg_free(&old_cfg);
	buf_deinit(&errs);
	log_info("reload: done: %u new, %u changed, %u removed, %u "
	    "unchanged services", nnew, nchanged, nremoved, nkept);
	master_notify("READY=1");
}
