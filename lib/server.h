/*
 * server - the skeleton every program that master runs is built on
 *
 * master runs a child as
 *
 *	PROGRAM -c CONFIG_DIR -n SERVICE [-o name=value ...] [own options]
 *
 * with the service's listening sockets as file descriptors 3, 4, ... and
 * their count in the environment variable POSTA_LISTEN_FDS (0 or absent
 * for a service of type none).  server_main(argc, argv, &ops) does the
 * rest, in this order (DESIGN.md, "Least privilege"):
 *
 *   1. parse -c, -n, -o and the program's own options (ops->opts, each
 *      handed to ops->option); a usage error exits with status 2;
 *   2. log_init(ops->name) (syslog, or POSTA_LOG_FILE / POSTA_LOG_STDERR
 *      as master passes them), settings_open(ops->name), then the -o
 *      overrides; a config error is fatal with "file:line: message";
 *   3. take over the listening sockets (non-blocking, close-on-exec);
 *   4. ops->pre_drop(cfg): read secrets (TLS keys) while still root;
 *   5. drop privileges to mail_owner when running as root (priv_drop);
 *   6. when started by master: PR_SET_PDEATHSIG(SIGTERM), set after the
 *      drop because a credential change clears it, then exit at once if
 *      master already died in between (getppid() changed);
 *   7. chdir(queue_directory);
 *   8. ops->init(ev, cfg), then the lib/ev loop.
 *
 * In the loop, each readable listening socket is drained with
 * non-blocking accept4() (a bounded number per wake-up) and every new
 * connection (non-blocking, close-on-exec) is handed to ops->accept,
 * which owns the fd from then on.  The program calls server_client_done()
 * when a connection ends.  At the per-process client limit
 * (ops->client_limit, default SERVER_CLIENT_LIMIT) the process stops
 * accepting until a client is done, so other processes of the service
 * (or the kernel backlog) take the load.  When accept fails for lack of
 * file descriptors, accepting pauses for a second instead of spinning.
 *
 * SIGTERM (and SIGINT) close the listening sockets and call ops->stop(ev)
 * when set, which should end its sessions and let the loop run dry (or
 * call ev_stop); without ops->stop the loop stops at once.  SIGPIPE is
 * ignored.  server_main() returns the exit status for main() to return.
 *
 * Any callback may be NULL except accept, which is needed for the
 * sockets that ops->init did not take with server_take_listener().  All
 * state is per process: server_main() runs once.
 */
#ifndef POSTA_SERVER_H
#define POSTA_SERVER_H

#include <sys/socket.h>

#include "cfg.h"
#include "ev.h"

#define SERVER_CLIENT_LIMIT	1000	/* default clients per process */
#define SERVER_LISTEN_MAX	64	/* listening sockets per process */
#define SERVER_ACCEPT_BURST	64	/* accepts per wake-up and socket */
#define SERVER_OVERRIDES_MAX	256	/* -o options */

struct server_peer {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char	 text[64];	/* "192.0.2.7", "::1" or "unix" */
	int	 listen_fd;	/* the socket it came in on */
	unsigned listen_index;	/* 0 for fd 3, 1 for fd 4, ... */
};

struct server_ops {
	const char *name;	/* program: "smtpd" logs as posta/smtpd */
	const char *opts;	/* own getopt(3) options, e.g. "vx:" */
	unsigned client_limit;	/* 0: SERVER_CLIENT_LIMIT */
	/* option - one own option; 0, or -1 for a usage error */
	int	(*option)(int opt, const char *arg);
	/* pre_drop - still root: read secrets; 0, or -1 (exit 1) */
	int	(*pre_drop)(struct cfg *);
	/* init - unprivileged, in queue_directory; 0, or -1 (exit 1) */
	int	(*init)(struct ev *, struct cfg *);
	/* accept - a new client; takes ownership of fd */
	void	(*accept)(struct ev *, int fd, const struct server_peer *);
	/* stop - SIGTERM: end the sessions, let the loop end */
	void	(*stop)(struct ev *);
};

int	server_main(int argc, char **argv, const struct server_ops *);

/*
 * server_take_listener - for ops->init: take listening socket i (0 for
 * fd 3) over, e.g. to serve it with lib/ipc's server.  Returns its fd,
 * which the caller now owns (the skeleton neither accepts on it nor
 * closes it), or -1 when there is no such socket or it was taken.
 */
int	server_take_listener(unsigned i);
/* server_listeners - how many listening sockets master passed */
unsigned server_listeners(void);

/* server_client_done - a client handed to ops->accept has gone */
void	server_client_done(void);
/* server_clients - clients now open in this process */
unsigned server_clients(void);
/* server_service - the -n service name ("" when not given) */
const char *server_service(void);
/* server_config_dir - the configuration directory (-c, else default) */
const char *server_config_dir(void);
/* server_cfg - the settings (after overrides); NULL before step 2 */
struct cfg *server_cfg(void);
/* server_is_stopping - 1 after SIGTERM, else 0 */
int	server_is_stopping(void);

#endif
