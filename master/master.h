/*
 * master - the supervisor: state shared by the files in master/
 *
 * main.c parses options and runs; config.c loads posta.conf and
 * master.conf; queue.c makes the queue directory; pidfile.c holds the
 * lock that keeps one master per queue; listen.c opens the sockets;
 * service.c spawns, reaps, restarts and throttles children; reload.c
 * applies a new configuration on SIGHUP; daemon.c detaches and talks to
 * systemd.
 *
 * Ownership: struct master owns the settings (cfg), the table (mcf) and
 * every struct master_svc.  A live service points at its entry in mcf
 * (conf); a retired one (removed or changed by a reload, or everything
 * while stopping) has conf NULL and lives on until its last process is
 * reaped.  Each process belongs to one service.
 */
#ifndef POSTA_MASTER_H
#define POSTA_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "cfg.h"
#include "ev.h"
#include "mastercf.h"
#include "server.h"

#define MASTER_LISTEN_BACKLOG	512

struct master;

struct master_proc {
	pid_t	 pid;
	int64_t	 started;	/* ev_now() at fork */
	struct master_proc *next;
};

struct master_svc {
	struct master *m;
	char	*name;
	const struct mastercf_service *conf;	/* NULL once retired */
	int	 fds[SERVER_LISTEN_MAX];	/* listening sockets */
	unsigned nfds;
	struct master_proc *procs;
	unsigned nprocs;
	unsigned fails;		/* fast failures in a row */
	int64_t	 delay;		/* next restart delay, ms */
	struct ev_timer *timer;	/* pending (re)start */
	int	 is_throttled;
	int	 mark;		/* reload: 1 kept, 2 changed, 3 removed */
	struct master_svc *next;
};

struct master {
	struct ev *ev;
	struct cfg *cfg;
	struct mastercf *mcf;
	const char *config_dir;
	const char *mcf_path;
	int	 is_foreground;
	int	 is_debug;
	int	 is_stopping;
	int	 pidfd;
	struct master_svc *svcs;
	struct ev_timer *stop_timer;
	struct ev_timer *keepalive;
};

/* config.c */
int	master_config_load(const char *dir, struct cfg **cfg_r,
	    struct mastercf **mcf_r, struct buf *errs);
void	master_log_errors(const struct buf *errs);
int	master_log_setup(struct master *);

/* queue.c */
int	master_queue_setup(struct cfg *, struct buf *errs);

/* pidfile.c */
int	master_pid_lock(const char *qdir, int *fd_r, struct buf *errs);
int	master_pid_test(const char *qdir, long *pid_r);
int	master_pid_write(int fd);
void	master_pid_clear(int fd);

/* listen.c */
int	master_listen_open(const struct mastercf_service *, struct cfg *,
	    int *fds, unsigned *nfds_r, struct buf *errs);
void	master_listen_close(struct master_svc *, int unlink_path);

/* service.c */
struct master_svc *master_svc_new(struct master *,
	    const struct mastercf_service *);
int	master_svc_listen(struct master_svc *, struct buf *errs);
void	master_svc_fill(struct master_svc *);
void	master_svc_retire(struct master_svc *, int unlink_path);
void	master_svc_signal(struct master_svc *, int signo);
void	master_on_child(struct ev *, int signo, void *arg);
void	master_stop(struct master *);
unsigned master_nprocs(const struct master *);
void	master_svc_gc(struct master *);

/* reload.c */
void	master_on_hup(struct ev *, int signo, void *arg);

/* daemon.c */
int	master_daemonize(int *ready_fd_r);
void	master_daemon_ready(int ready_fd);
void	master_notify(const char *state);

/* master_ms_text - "60s" or "250ms" for a log line */
const char *master_ms_text(int64_t ms, char *out, size_t outsz);

#endif
