/*
 * queue - make the queue directory and its subdirectories
 *
 * queue_directory itself belongs to root (0755); the queue
 * subdirectories and private/ belong to mail_owner (0700); public/ is
 * 0710 with group postdrop when that group exists, so local tools in
 * that group may reach its sockets; pid/ belongs to root (0755), so the
 * unprivileged user cannot touch master's pid file.  Existing
 * directories get the same owner and mode; a non-directory in their
 * place is an error.  Without root nothing is chowned (make run).
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master.h"
#include "priv.h"

static const struct {
	const char *name;
	mode_t	 mode;
	int	 owner;		/* 0 root, 1 mail_owner */
	int	 is_public;
} queue_dirs[] = {
	{ "incoming", 0700, 1, 0 },
	{ "active", 0700, 1, 0 },
	{ "deferred", 0700, 1, 0 },
	{ "hold", 0700, 1, 0 },
	{ "corrupt", 0700, 1, 0 },
	{ "free", 0700, 1, 0 },
	{ "private", 0700, 1, 0 },
	{ "public", 0710, 1, 1 },
	{ "pid", 0755, 0, 0 },
};

/* queue_mkdir - mkdir -p path (parents 0755), then fix owner and mode */
static int
queue_mkdir(const char *path, mode_t mode, uid_t uid, gid_t gid,
    int is_root, struct buf *errs)
{
	char tmp[4096], *s;
	struct stat st;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		(void)buf_printf(errs, "%.100s...: path too long\n", path);
		return -1;
	}
	for (s = tmp + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			(void)buf_printf(errs, "mkdir %s: %s\n", tmp,
			    strerror(errno));
			return -1;
		}
		*s = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		(void)buf_printf(errs, "mkdir %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		(void)buf_printf(errs, "%s: not a directory\n", path);
		return -1;
	}
	if (is_root && (st.st_uid != uid || st.st_gid != gid) &&
	    chown(path, uid, gid) < 0) {
		(void)buf_printf(errs, "chown %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0) {
		(void)buf_printf(errs, "chmod %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
master_queue_setup(struct cfg *cfg, struct buf *errs)
{
	const char *qdir = cfg_str(cfg, "queue_directory");
	char path[4096];
	struct group *gr;
	uid_t uid = 0;
	gid_t gid = 0, gpub;
	size_t i;
	int is_root = geteuid() == 0;

	if (is_root && priv_lookup(cfg_str(cfg, "mail_owner"), &uid, &gid,
	    errs) < 0)
		return -1;
	if (queue_mkdir(qdir, 0755, 0, 0, is_root, errs) < 0)
		return -1;
	for (i = 0; i < sizeof(queue_dirs) / sizeof(queue_dirs[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", qdir,
		    queue_dirs[i].name) >= (int)sizeof(path)) {
			(void)buf_printf(errs, "%s: path too long\n", qdir);
			return -1;
		}
		gpub = gid;
		if (queue_dirs[i].is_public &&
		    (gr = getgrnam("postdrop")) != NULL)
			gpub = gr->gr_gid;
		if (queue_mkdir(path, queue_dirs[i].mode,
		    queue_dirs[i].owner ? uid : 0,
		    queue_dirs[i].owner ? gpub : 0, is_root, errs) < 0)
			return -1;
	}
	return 0;
}
