/*
 * settings - every setting of every posta program, in one table
 *
 * One table so that "posta check" and "posta config" know all of them
 * without linking each program.  Each setting has a scope: the files
 * where it may be set.  SCOPE_POSTA settings (posta.conf) are shared by
 * every program and may be overridden in a program's own file or by a
 * master.conf "-o name=value" for one service.
 *
 * settings_open(prog, dir, errs) loads dir/posta.conf (required) and
 * dir/PROG.conf (optional) for program prog ("smtpd", "master", ...;
 * master and the tools read only posta.conf), then fills in what is
 * computed (myhostname from the system when empty).  It returns the cfg,
 * or NULL with "file:line: message" lines in errs.
 *
 * settings_config_dir() is where configuration lives: $POSTA_CONFIG_DIR
 * if set, else the compiled-in /etc/posta.
 */
#ifndef POSTA_SETTINGS_H
#define POSTA_SETTINGS_H

#include "buf.h"
#include "cfg.h"

#define SCOPE_POSTA	0x001	/* posta.conf, shared */
#define SCOPE_SMTPD	0x004
#define SCOPE_QMGR	0x008
#define SCOPE_LOCAL	0x010
#define SCOPE_SMTP	0x020
#define SCOPE_FILTERD	0x040
#define SCOPE_IMAPD	0x080
#define SCOPE_PROXYD	0x100
#define SCOPE_ALL	0x1ff

extern const struct cfg_def posta_settings[];

/* settings_scope - the scope bit of program prog, 0 if it has no file */
unsigned settings_scope(const char *prog);
/* settings_programs - NULL-terminated names of programs with a file */
const char *const *settings_programs(void);

struct cfg *settings_open(const char *prog, const char *dir,
	    struct buf *errs);
const char *settings_config_dir(void);

#endif
