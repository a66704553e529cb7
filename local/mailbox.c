/*
 * mailbox - deliver one local target into its user's Maildir
 *
 * The user is looked up in user_database as user@domain with the
 * address extension removed.  The Maildir is HOME/Maildir when the
 * user has a home, else mail_root/DOMAIN/USER/Maildir from the user's
 * canonical name (each part checked: no '/', not "." or "..", no
 * control character, so a name cannot lead outside mail_root).
 * lib/maildir creates it on first delivery and writes the message with
 * Return-Path: and Delivered-To: in front, tmp/ -> fsync -> new/.
 * The quota is the user's quota=, else local_quota_default (0: none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "buf.h"
#include "local.h"
#include "log.h"
#include "maildir.h"
#include "mem.h"
#include "userdb.h"

static void
mailbox_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* mailbox_part_ok - 1 if s is safe as one directory name */
static int
mailbox_part_ok(const char *s)
{
	const unsigned char *p;

	if (*s == '\0' || strlen(s) > 255 || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return 0;
	return 1;
}

/* mailbox_path - the Maildir of user u; 0, or -1 (logged) */
static int
mailbox_path(const struct local_msg *msg, const struct userdb_user *u,
    char *path, size_t pathsz)
{
	char ul[ALIAS_ADDR_MAX + 1], ud[ALIAS_ADDR_MAX + 1];
	int n;

	if (u->home != NULL && *u->home != '\0') {
		if (u->home[0] != '/') {
			log_err("%s: user %s: home is not absolute: %s",
			    msg->env->id, u->name, u->home);
			return -1;
		}
		n = snprintf(path, pathsz, "%s/Maildir", u->home);
	} else {
		if (!alias_split(u->name, ul, sizeof(ul), ud, sizeof(ud)) ||
		    !mailbox_part_ok(ul) || !mailbox_part_ok(ud)) {
			log_err("%s: user name unusable in a path: %s",
			    msg->env->id, u->name);
			return -1;
		}
		n = snprintf(path, pathsz, "%s/%s/%s/Maildir",
		    local_conf.mail_root, ud, ul);
	}
	if (n < 0 || (size_t)n >= pathsz) {
		log_err("%s: user %s: mailbox path too long", msg->env->id,
		    u->name);
		return -1;
	}
	return 0;
}

/* mailbox_put_addr - an address in a header line, control chars as '?' */
static void
mailbox_put_addr(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		(void)buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ?
		    '?' : *s);
}

enum local_result
local_mailbox(struct local_ctx *ctx, const struct local_msg *msg,
    const struct alias_target *t, struct reply *r)
{
	const struct queue_env *env = msg->env;
	char local[ALIAS_ADDR_MAX + 1], domain[ALIAS_ADDR_MAX + 1];
	char base[ALIAS_ADDR_MAX + 1], key[2 * ALIAS_ADDR_MAX + 2];
	char path[MAILDIR_PATH_MAX];
	struct userdb_user u;
	struct maildir_msg m;
	struct maildir_quota q;
	struct maildir_result res;
	const char *sender;
	struct buf prefix;
	int rc;

	if (!alias_split(t->addr, local, sizeof(local), domain,
	    sizeof(domain)) ||
	    alias_strip_ext(local, local_conf.delimiters, base,
	    sizeof(base)) < 0) {
		reply_set(r, 550, "5.1.3", "bad address syntax");
		return LOCAL_FAILED;
	}
	(void)snprintf(key, sizeof(key), "%s@%s", base, domain);
	mailbox_lower(key);
	if (local_dt_has(msg, t->key) || local_dt_has(msg, key)) {
		reply_set(r, 550, "5.4.6", "mail forwarding loop");
		return LOCAL_FAILED;
	}
	memset(&u, 0, sizeof(u));
	rc = userdb_lookup(ctx->udb, key, &u, r);
	if (rc < 0)
		return LOCAL_DEFERRED;
	if (rc == 0) {
		reply_set(r, 550, "5.1.1", "unknown user");
		return LOCAL_FAILED;
	}
	if (mailbox_path(msg, &u, path, sizeof(path)) < 0) {
		userdb_user_free(&u);
		reply_set(r, 451, "4.3.5", "mailbox unavailable: "
		    "configuration error");
		return LOCAL_DEFERRED;
	}
	/* list mail goes out under the list owner, bounces stay bounces */
	sender = t->owner != NULL && *env->sender != '\0' ? t->owner :
	    env->sender;
	buf_init(&prefix, 4 * ALIAS_ADDR_MAX);
	(void)buf_puts(&prefix, "Return-Path: <");
	mailbox_put_addr(&prefix, sender);
	(void)buf_puts(&prefix, ">\r\nDelivered-To: ");
	mailbox_put_addr(&prefix, t->key);
	(void)buf_puts(&prefix, "\r\n");

	memset(&m, 0, sizeof(m));
	m.log_id = env->id;
	m.prefix = buf_cstr(&prefix);
	m.prefix_len = buf_len(&prefix);
	m.fd = msg->fd;
	m.offset = env->content_offset;
	m.size = env->content_size;
	q.bytes = u.quota != 0 ? u.quota : local_conf.quota_default;
	q.count = 0;
	rc = maildir_deliver(path, NULL, &m, q.bytes != 0 ? &q : NULL, &res, r);
	buf_deinit(&prefix);
	userdb_user_free(&u);
	if (rc < 0)
		return r->code >= 400 && r->code < 500 ? LOCAL_DEFERRED :
		    LOCAL_FAILED;
	log_debug("%s: %s: delivered to %s", env->id, t->addr, res.path);
	reply_set(r, 250, "2.0.0", "delivered to maildir");
	return LOCAL_SENT;
}
