/*
 * config - "posta config [-n] [name ...]": the effective settings
 *
 * Prints "name = value" (values as written, $name not expanded) for
 * posta.conf, then, under a "# PROG.conf" line, each program's own
 * settings and the shared ones its file overrides.  -n keeps only the
 * values that differ from their defaults (like "postconf -n").  With
 * names, prints only those: a posta.conf setting's value from posta.conf,
 * a program setting's from the (first) program it belongs to; an
 * unknown name is an error (exit 1) after the known ones are printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"
#include "posta.h"
#include "settings.h"

struct config {
	const char *dir;
	bool	 only_changed;
	struct cfg *pc;		/* posta.conf */
	struct cfg **pcfg;	/* per program: posta.conf + PROG.conf */
	size_t	 nprogs;
};

/*
 * config_find - in the dump text, the line of setting name (without its
 * newline) in *line_r, *len_r; 1 if found, else 0
 */
static int
config_find(const char *text, const char *name, const char **line_r,
    size_t *len_r)
{
	size_t n = strlen(name);
	const char *p, *nl;

	for (p = text; *p != '\0'; p = nl + (*nl != '\0')) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (strncmp(p, name, n) == 0 && strncmp(p + n, " = ", 3) == 0) {
			*line_r = p;
			*len_r = (size_t)(nl - p);
			return 1;
		}
	}
	return 0;
}

/* config_dump - cfg_dump() of c as one string (caller frees) */
static char *
config_dump(const struct cfg *c, bool only_changed)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	if ((fp = open_memstream(&text, &len)) == NULL)
		return xstrdup("");
	cfg_dump(c, fp, only_changed);
	if (fclose(fp) != 0 || text == NULL) {
		free(text);
		return xstrdup("");
	}
	return text;
}

/* config_shown - should line name of program i (or posta.conf) show? */
static int
config_shown(struct config *cf, size_t i, const char *name)
{
	const struct cfg_def *d = cfg_def_lookup(posta_settings, name);
	const char *origin, *prog;
	char path[4096];
	size_t n;

	if (d == NULL)
		return 0;
	if (i == cf->nprogs) {
		/* -c DIR is not a change made in a file */
		origin = cfg_origin(cf->pc, name);
		return !(cf->only_changed && origin != NULL &&
		    strcmp(origin, "command line") == 0);
	}
	if (!(d->scope & SCOPE_POSTA))
		return 1;
	/* a shared setting shows here only when this file sets it */
	prog = settings_programs()[i];
	n = (size_t)snprintf(path, sizeof(path), "%s/%s.conf:", cf->dir, prog);
	origin = cfg_origin(cf->pcfg[i], name);
	return origin != NULL && n < sizeof(path) &&
	    strncmp(origin, path, n) == 0;
}

/* config_put - print one "name = value" line, no blank after an empty '=' */
static void
config_put(const char *line, size_t len)
{
	while (len > 0 && line[len - 1] == ' ')
		len--;
	printf("%.*s\n", (int)len, line);
}

/* config_print - the dump of program i (nprogs: posta.conf) */
static void
config_print(struct config *cf, size_t i)
{
	struct cfg *c = i == cf->nprogs ? cf->pc : cf->pcfg[i];
	char *text = config_dump(c, cf->only_changed), *p, *nl, *eq;
	int header = i == cf->nprogs;

	for (p = text; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		if ((eq = strstr(p, " = ")) == NULL || eq > nl)
			continue;
		*eq = '\0';
		if (config_shown(cf, i, p)) {
			if (!header) {
				printf("\n# %s.conf\n", settings_programs()[i]);
				header = 1;
			}
			*eq = ' ';
			config_put(p, (size_t)(nl - p));
		}
		*eq = ' ';
	}
	free(text);
}

/* config_name - print one named setting; 0 or -1 if unknown */
static int
config_name(struct config *cf, const char *name)
{
	const struct cfg_def *d = cfg_def_lookup(posta_settings, name);
	const char *line;
	struct cfg *c = NULL;
	size_t i, len;
	char *text;

	if (d == NULL) {
		fprintf(stderr, "posta: unknown setting \"%.100s\"\n", name);
		return -1;
	}
	if (d->scope & SCOPE_POSTA)
		c = cf->pc;
	for (i = 0; c == NULL && i < cf->nprogs; i++)
		if (settings_scope(settings_programs()[i]) & d->scope)
			c = cf->pcfg[i];
	if (c == NULL)
		return 0;
	text = config_dump(c, cf->only_changed);
	if (config_find(text, name, &line, &len) &&
	    !(c == cf->pc && !config_shown(cf, cf->nprogs, name)))
		config_put(line, len);
	free(text);
	return 0;
}

int
cmd_config(const char *dir, int argc, char **argv)
{
	const char *const *progs = settings_programs();
	struct config cf;
	struct buf errs;
	char path[4096];
	size_t i;
	int ch, rc = POSTA_EXIT_OK;

	memset(&cf, 0, sizeof(cf));
	cf.dir = dir;
	while ((ch = getopt(argc, argv, "n")) != -1) {
		switch (ch) {
		case 'n':
			cf.only_changed = true;
			break;
		default:
			usage();
			return POSTA_EXIT_USAGE;
		}
	}
	if ((cf.pc = posta_conf_load(dir)) == NULL)
		return POSTA_EXIT_FAIL;
	for (cf.nprogs = 0; progs[cf.nprogs] != NULL; cf.nprogs++)
		;
	cf.pcfg = xcalloc(cf.nprogs + 1, sizeof(*cf.pcfg));
	buf_init(&errs, 1024 * 1024);
	for (i = 0; i < cf.nprogs; i++) {
		cf.pcfg[i] = cfg_new(posta_settings,
		    SCOPE_POSTA | settings_scope(progs[i]));
		(void)snprintf(path, sizeof(path), "%s/posta.conf", dir);
		if (cfg_load_file(cf.pcfg[i], path, SCOPE_POSTA, false,
		    &errs) < 0)
			rc = POSTA_EXIT_FAIL;
		(void)snprintf(path, sizeof(path), "%s/%s.conf", dir,
		    progs[i]);
		if (cfg_load_file(cf.pcfg[i], path, SCOPE_POSTA |
		    settings_scope(progs[i]), true, &errs) < 0)
			rc = POSTA_EXIT_FAIL;
	}
	fputs(buf_cstr(&errs), stderr);
	buf_deinit(&errs);
	if (rc == POSTA_EXIT_OK && optind == argc) {
		config_print(&cf, cf.nprogs);
		for (i = 0; i < cf.nprogs; i++)
			config_print(&cf, i);
	} else if (rc == POSTA_EXIT_OK) {
		for (i = (size_t)optind; i < (size_t)argc; i++)
			if (config_name(&cf, argv[i]) < 0)
				rc = POSTA_EXIT_FAIL;
	}
	for (i = 0; i < cf.nprogs; i++)
		cfg_free(&cf.pcfg[i]);
	free(cf.pcfg);
	cfg_free(&cf.pc);
	return rc;
}
