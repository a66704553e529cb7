/*
 * alias - expansion of a recipient through alias tables
 *
 * alias_expand(rcpt, ops, arg, lim, res, r) resolves one envelope
 * recipient the way local(8) does, with no I/O of its own: the caller
 * gives the table lookup and the domain classes as callbacks, so the
 * same code serves the delivery agent and a unit test.
 *
 * Keys.  For user+ext@domain (ext split off at the first character of
 * ops->delimiters, when the part before it is not empty) the keys tried
 * are, in order and first hit wins:
 *	user+ext@domain, user@domain		(every local domain)
 *	user+ext, user				(ALIAS_D_LOCAL domains only)
 * all in lower case.  A domain of class ALIAS_D_REMOTE is never looked
 * up: its addresses are final targets marked is_remote.
 *
 * Values.  A value is a list of addresses separated by commas and/or
 * blanks; one pair of <> around an item is dropped; empty items are
 * skipped.  An item without '@' gets the domain of the alias.  Items
 * that start with '|', '/' or ":include:" (commands, files, includes)
 * are refused: 5.3.5.  An item with a blank, a control character, a
 * '"', a second '@', an empty local part or domain, or over
 * ALIAS_ADDR_MAX bytes is a syntax error: 5.1.3.
 *
 * Expansion is depth first and recursive.  An item equal to its own
 * alias (same key) is delivered to the user of that name, not looked up
 * again ("root: root, backup").  An alias met again on the way down
 * from the recipient is a loop: the whole expansion fails with 5.4.6.
 * An alias met again elsewhere (two lists sharing a member list) and a
 * final target met twice are taken once.  Deeper than lim->max_depth
 * also fails with 5.4.6; more than lim->max_targets targets or
 * lim->max_lookups lookups fails with 5.3.0.  A lookup (or domain
 * class) that fails temporarily fails the whole expansion with its
 * reply (4.3.0): mail is deferred, never half-expanded.
 *
 * Owners.  When alias NAME is found under a key K and "owner-K" is an
 * alias too, every target below NAME gets owner = "owner-LOCAL@domain"
 * (the nearest owner wins): the envelope sender for those deliveries,
 * so that list errors go to the list owner, as in Postfix.
 *
 * A recipient that is no alias at all comes back as one final target
 * equal to itself.  alias_expand() returns 0 with res filled in (the
 * caller frees it with alias_result_free()), or -1 with r set and res
 * empty.  Addresses in targets keep the case they were written in;
 * key is the lower-case form used for comparisons.
 */
#ifndef POSTA_ALIAS_H
#define POSTA_ALIAS_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"

#define ALIAS_ADDR_MAX		512
#define ALIAS_DEPTH_DEFAULT	20
#define ALIAS_TARGETS_DEFAULT	1000
#define ALIAS_LOOKUPS_DEFAULT	10000

enum alias_domain {
	ALIAS_D_REMOTE,		/* not ours: forward */
	ALIAS_D_LOCAL,		/* mydestination: local-part keys too */
	ALIAS_D_VIRTUAL,	/* virtual_mailbox_domains: full keys only */
};

struct alias_ops {
	/* lookup - 1 and *value_r (malloc'ed), 0 no alias, -1 (r set) */
	int	(*lookup)(void *arg, const char *key, char **value_r,
		    struct reply *r);
	/* domain - the class of domain (lower case): 0, or -1 (r set) */
	int	(*domain)(void *arg, const char *domain,
		    enum alias_domain *class_r, struct reply *r);
	const char *delimiters;	/* recipient_delimiter; "" or NULL: none */
};

struct alias_limits {
	unsigned max_depth;
	unsigned max_targets;
	unsigned max_lookups;
};

extern const struct alias_limits alias_limits_default;

struct alias_target {
	char	*addr;		/* as written (qualified) */
	char	*key;		/* lower case */
	char	*owner;		/* owner-LIST@domain, or NULL */
	bool	 is_remote;
};

struct alias_result {
	struct alias_target *t;
	size_t	 n, cap;
	unsigned lookups;	/* lookups made */
	bool	 is_expanded;	/* rcpt was an alias */
};

int	alias_expand(const char *rcpt, const struct alias_ops *, void *arg,
	    const struct alias_limits *, struct alias_result *res,
	    struct reply *r);
void	alias_result_free(struct alias_result *);

/*
 * alias_split - split addr at its last '@': 1 with local part and domain
 * copied into the buffers, 0 when it has no '@' or a part does not fit.
 */
int	alias_split(const char *addr, char *local, size_t localsz,
	    char *domain, size_t domainsz);
/*
 * alias_strip_ext - copy local into out without its extension (from the
 * first character of delims on, unless that leaves it empty); 1 when an
 * extension was removed, 0 when not, -1 when out is too small.
 */
int	alias_strip_ext(const char *local, const char *delims, char *out,
	    size_t outsz);

#endif
