/*
 * test_userdb - the user database: passwd-file parsing (hostile first),
 * lookups, password schemes, hashing, reload, the shipped conf/users,
 * and LDAP users (lookup, bind as the user) against a real slapd
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userdb.h"
#include "../fixtures/ldap/slapd_fixture.h"

static struct slapd_fixture slapd;

static int
group_setup(void **state)
{
	return slapd_start(&slapd);
}

static int
group_teardown(void **state)
{
	slapd_cleanup(&slapd);
	return 0;
}

/* users_file - write text to the temp dir; "file:PATH" in a static */
static const char *
users_file(const char *name, const char *text, size_t len)
{
	static char spec[200];
	char path[160], tmp[170];
	FILE *fp;

	(void)snprintf(path, sizeof(path), "%s/%s", slapd.dir, name);
	(void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
	(void)snprintf(spec, sizeof(spec), "file:%s", path);
	return spec;
}

static void
test_file_hostile(void **state)
{
	static char longline[USERDB_LINE_MAX + 20];
	static const char nul[] = "a@x:{PLAIN}p\nb@x:{PLAIN}p\0q\n";
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "justuser\n", "u:1: expected user:password" },
		{ ":{PLAIN}x\n", "u:1: empty user name" },
		{ "a b@x:{PLAIN}x\n", "u:1: white space or control" },
		{ "a\001b@x:{PLAIN}x\n", "u:1: white space or control" },
		{ "# c\n\na@x:{PLAIN}x:uid\n", "u:3: bad uid" },
		{ "a@x:{PLAIN}x:-1\n", "u:1: bad uid" },
		{ "a@x:{PLAIN}x:99999999999999999999999\n", "u:1: bad uid" },
		{ "a@x:{PLAIN}x:4294967295\n", "u:1: bad uid" },
		{ "a@x:{PLAIN}x:1:g\n", "u:1: bad gid" },
		{ "a@x:{PLAIN}x:1:1::home/a\n", "u:1: home must be an "
		    "absolute path" },
		{ "a@x:{PLAIN}x:::::: foo=bar\n", "u:1: unknown extra field" },
		{ "a@x:{PLAIN}x::::::quota\n", "u:1: extra field without '='" },
		{ "a@x:{PLAIN}x::::::quota=10X\n", "u:1: bad quota" },
		{ "a@x:{PLAIN}x::::::quota=99999999999g\n", "u:1: bad quota" },
		{ "a@x:{PLAIN}x::::::home=rel\n", "u:1: home must be" },
		{ "A@x:{PLAIN}x\nb@x:{PLAIN}y\na@X:{PLAIN}z\n",
		    "u:3: duplicate user \"a@x\" (first at line 1)" },
	};
	struct buf errs;
	const char *spec;
	size_t i;

	(void)state;
	buf_init(&errs, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&errs);
		spec = users_file("u", cases[i].text, strlen(cases[i].text));
		assert_null(userdb_open(spec, &errs));
		if (strstr(buf_cstr(&errs), cases[i].want) == NULL)
			fail_msg("case %zu: want \"%s\", got \"%s\"", i,
			    cases[i].want, buf_cstr(&errs));
		assert_int_equal(userdb_check(spec, &errs), -1);
	}
	buf_reset(&errs);
	spec = users_file("u", nul, sizeof(nul) - 1);
	assert_null(userdb_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "u:2: NUL byte in line"));
	memset(longline, 'a', sizeof(longline) - 1);
	memcpy(longline, "ok@x:{PLAIN}x\n", 14);
	buf_reset(&errs);
	spec = users_file("u", longline, strlen(longline));
	assert_null(userdb_open(spec, &errs));
	assert_non_null(strstr(buf_cstr(&errs), "u:2: line too long"));
	buf_reset(&errs);
	assert_null(userdb_open("bdb:/etc/posta/users", &errs));
	assert_non_null(strstr(buf_cstr(&errs), "must be file:/path or "
	    "ldap:/path"));
	assert_null(userdb_open("file:users", &errs));
	assert_non_null(strstr(buf_cstr(&errs), "must be absolute"));
	buf_reset(&errs);
	assert_null(userdb_open("file:/nonexistent/users", &errs));
	assert_non_null(strstr(buf_cstr(&errs), "No such file"));
	buf_deinit(&errs);
}

static void
test_file_lookup(void **state)
{
	static const char text[] =
	    "# users\n"
	    "Demo@Example.Test:{PLAIN}demo:5000:5001:Demo User:/home/demo:"
	    "/bin/false:quota=100M\n"
	    "  min@example.test:{PLAIN}x  \n"
	    "extra@example.test:{PLAIN}x:::::: quota=1k  home=/srv/e \n"
	    "colon@example.test:{PLAIN}x::::::home=/a:b\n"
	    "nologin@example.test:\n";
	struct userdb_user u;
	struct userdb *db;
	struct buf errs;
	struct reply r;

	(void)state;
	buf_init(&errs, 0);
	db = userdb_open(users_file("u", text, sizeof(text) - 1), &errs);
	assert_non_null(db);
	assert_string_equal(buf_cstr(&errs), "");
	assert_int_equal(userdb_lookup(db, "DEMO@example.test", &u, &r), 1);
	assert_string_equal(u.name, "demo@example.test");
	assert_string_equal(u.home, "/home/demo");
	assert_int_equal(u.quota, 100 * 1024 * 1024);
	assert_int_equal(u.uid, 5000);
	assert_int_equal(u.gid, 5001);
	userdb_user_free(&u);
	assert_null(u.name);
	assert_int_equal(userdb_lookup(db, "min@example.test", &u, &r), 1);
	assert_null(u.home);
	assert_int_equal(u.quota, 0);
	assert_int_equal(u.uid, -1);
	assert_int_equal(u.gid, -1);
	userdb_user_free(&u);
	assert_int_equal(userdb_lookup(db, "extra@example.test", &u, &r), 1);
	assert_string_equal(u.home, "/srv/e");
	assert_int_equal(u.quota, 1024);
	userdb_user_free(&u);
	assert_int_equal(userdb_lookup(db, "colon@example.test", &u, &r), 1);
	assert_string_equal(u.home, "/a:b");
	userdb_user_free(&u);
	assert_int_equal(userdb_lookup(db, "nologin@example.test", &u, &r),
	    1);
	userdb_user_free(&u);
	assert_int_equal(userdb_auth(db, "nologin@example.test", "x", &r), 0);
	assert_int_equal(userdb_lookup(db, "nobody@example.test", &u, &r), 0);
	assert_null(u.name);
	assert_int_equal(userdb_lookup(db, "", &u, &r), 0);
	userdb_close(&db);
	assert_null(db);
	buf_deinit(&errs);
}

static void
test_schemes(void **state)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE], text[4096], longpw[600];
	struct crypt_data cd;
	struct buf sha, blf, sha256, cr, plain;
	struct userdb *db;
	struct buf errs;
	struct reply r;
	const char *yes, *b2b;

	(void)state;
	buf_init(&errs, 0);
	buf_init(&sha, 0);
	buf_init(&blf, 0);
	buf_init(&sha256, 0);
	buf_init(&cr, 0);
	buf_init(&plain, 0);
	assert_int_equal(userdb_hash_password("SHA512-CRYPT", "s3cret", &sha),
	    0);
	assert_int_equal(userdb_hash_password("BLF-CRYPT", "s3cret", &blf), 0);
	assert_int_equal(userdb_hash_password("sha256-crypt", "s3cret",
	    &sha256), 0);
	assert_int_equal(userdb_hash_password("CRYPT", "s3cret", &cr), 0);
	assert_int_equal(userdb_hash_password("PLAIN", "s3cret", &plain), 0);
	assert_int_equal(strncmp(buf_cstr(&sha), "{SHA512-CRYPT}$6$", 17), 0);
	assert_int_equal(strncmp(buf_cstr(&blf), "{BLF-CRYPT}$2y$10$", 18), 0);
	assert_int_equal(strncmp(buf_cstr(&sha256), "{SHA256-CRYPT}$5$", 17),
	    0);
	assert_int_equal(strncmp(buf_cstr(&cr), "{CRYPT}$y$", 10), 0);
	assert_string_equal(buf_cstr(&plain), "{PLAIN}s3cret");
	/* bare crypt(3) hashes: yescrypt and bcrypt $2b$ */
	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting)));
	yes = crypt_rn("yes pw", setting, &cd, sizeof(cd));
	assert_non_null(yes);
	(void)snprintf(text, sizeof(text), "y@x:%s\n", yes);
	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn("$2b$", 5, NULL, 0, setting,
	    sizeof(setting)));
	b2b = crypt_rn("bcrypt pw", setting, &cd, sizeof(cd));
	assert_non_null(b2b);
	(void)snprintf(text + strlen(text), sizeof(text) - strlen(text),
	    "b@x:%s\nsha@x:%s\nblf@x:%s\nsha256@x:%s\ncr@x:%s\n"
	    "plain@x:%s\n"
	    "bare6@x:%s\n"
	    "md5@x:{MD5}$1$abc$def\n"
	    "mismatch@x:{SHA512-CRYPT}%s\n"
	    "locked@x:!%s\n"
	    "nobrace@x:{SHA512-CRYPT$6$x\n"
	    "junk@x:{CRYPT}not-a-hash\n",
	    b2b, buf_cstr(&sha), buf_cstr(&blf), buf_cstr(&sha256),
	    buf_cstr(&cr), buf_cstr(&plain),
	    strchr(sha.data, '}') + 1, strchr(blf.data, '}') + 1,
	    strchr(sha.data, '}') + 1);
	db = userdb_open(users_file("u", text, strlen(text)), &errs);
	assert_non_null(db);
	assert_string_equal(buf_cstr(&errs), "");
	assert_int_equal(userdb_auth(db, "y@x", "yes pw", &r), 1);
	assert_int_equal(userdb_auth(db, "y@x", "yes pW", &r), 0);
	assert_int_equal(userdb_auth(db, "b@x", "bcrypt pw", &r), 1);
	assert_int_equal(userdb_auth(db, "b@x", "bcrypt", &r), 0);
	assert_int_equal(userdb_auth(db, "SHA@x", "s3cret", &r), 1);
	assert_int_equal(userdb_auth(db, "blf@x", "s3cret", &r), 1);
	assert_int_equal(userdb_auth(db, "blf@x", "s3cret ", &r), 0);
	assert_int_equal(userdb_auth(db, "sha256@x", "s3cret", &r), 1);
	assert_int_equal(userdb_auth(db, "cr@x", "s3cret", &r), 1);
	assert_int_equal(userdb_auth(db, "plain@x", "s3cret", &r), 1);
	assert_int_equal(userdb_auth(db, "plain@x", "s3cre", &r), 0);
	assert_int_equal(userdb_auth(db, "plain@x", "s3crett", &r), 0);
	assert_int_equal(userdb_auth(db, "bare6@x", "s3cret", &r), 1);
	/* wrong, empty, unknown scheme, mismatched, locked, broken */
	memset(&r, 0, sizeof(r));
	assert_int_equal(userdb_auth(db, "sha@x", "S3cret", &r), 0);
	assert_int_equal(r.code, 535);
	assert_string_equal(r.dsn, "5.7.8");
	assert_int_equal(userdb_auth(db, "sha@x", "", &r), 0);
	assert_int_equal(userdb_auth(db, "md5@x", "anything", &r), 0);
	assert_int_equal(userdb_auth(db, "mismatch@x", "s3cret", &r), 0);
	assert_int_equal(userdb_auth(db, "locked@x", "s3cret", &r), 0);
	assert_int_equal(userdb_auth(db, "nobrace@x", "x", &r), 0);
	assert_int_equal(userdb_auth(db, "junk@x", "not-a-hash", &r), 0);
	assert_int_equal(userdb_auth(db, "nobody@x", "s3cret", &r), 0);
	assert_int_equal(userdb_auth(db, "", "s3cret", &r), 0);
	userdb_close(&db);

	/* passwords over the limit fail even when they match */
	memset(longpw, 'p', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	(void)snprintf(text, sizeof(text), "long@x:{PLAIN}%s\n", longpw);
	db = userdb_open(users_file("u", text, strlen(text)), &errs);
	assert_non_null(db);
	assert_int_equal(userdb_auth(db, "long@x", longpw, &r), 0);
	userdb_close(&db);

	/* hashing: refusals, and a fresh salt each time */
	buf_reset(&plain);
	assert_int_equal(userdb_hash_password("MD5", "x", &plain), -1);
	assert_int_equal(userdb_hash_password("SHA512-CRYPT", "", &plain), -1);
	assert_int_equal(userdb_hash_password("PLAIN", "a:b", &plain), -1);
	assert_int_equal(userdb_hash_password("PLAIN", "a\nb", &plain), -1);
	assert_int_equal(userdb_hash_password("PLAIN", longpw, &plain), -1);
	assert_string_equal(buf_cstr(&plain), "");
	buf_reset(&cr);
	assert_int_equal(userdb_hash_password("SHA512-CRYPT", "s3cret", &cr),
	    0);
	assert_string_not_equal(buf_cstr(&cr), buf_cstr(&sha));
	assert_int_equal(userdb_password_verify(buf_cstr(&cr), "s3cret", "t"),
	    1);
	buf_deinit(&sha);
	buf_deinit(&blf);
	buf_deinit(&sha256);
	buf_deinit(&cr);
	buf_deinit(&plain);
	buf_deinit(&errs);
}

static void
test_file_reload(void **state)
{
	struct userdb_user u;
	struct userdb *db;
	struct buf errs;
	struct reply r;
	const char *spec;
	char path[200];

	(void)state;
	buf_init(&errs, 0);
	spec = users_file("r", "a@x:{PLAIN}one\n", 15);
	(void)snprintf(path, sizeof(path), "%s", spec + 5);
	db = userdb_open(spec, &errs);
	assert_non_null(db);
	assert_int_equal(userdb_auth(db, "a@x", "one", &r), 1);
	(void)users_file("r", "a@x:{PLAIN}two\n", 15);
	assert_int_equal(userdb_auth(db, "a@x", "one", &r), 0);
	assert_int_equal(userdb_auth(db, "a@x", "two", &r), 1);
	/* broken: temporary failures, not "wrong password" */
	(void)users_file("r", "a@x:{PLAIN}two:bad-uid\n", 23);
	memset(&r, 0, sizeof(r));
	assert_int_equal(userdb_auth(db, "a@x", "two", &r), -1);
	assert_int_equal(r.code, 454);
	assert_string_equal(r.dsn, "4.7.0");
	assert_int_equal(userdb_lookup(db, "a@x", &u, &r), -1);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(userdb_lookup(db, "a@x", &u, &r), -1);
	(void)users_file("r", "a@x:{PLAIN}three\n", 17);
	assert_int_equal(userdb_auth(db, "a@x", "three", &r), 1);
	userdb_close(&db);
	buf_deinit(&errs);
}

static void
test_shipped_conf_users(void **state)
{
	char path[PATH_MAX], spec[PATH_MAX + 8];
	struct userdb_user u;
	struct userdb *db;
	struct buf errs;
	struct reply r;

	(void)state;
	buf_init(&errs, 0);
	assert_non_null(realpath("conf/users", path));
	(void)snprintf(spec, sizeof(spec), "file:%s", path);
	db = userdb_open(spec, &errs);
	assert_non_null(db);
	assert_int_equal(userdb_auth(db, "demo@example.test", "demo", &r), 1);
	assert_int_equal(userdb_auth(db, "demo@example.test", "Demo", &r), 0);
	assert_int_equal(userdb_lookup(db, "demo@example.test", &u, &r), 1);
	userdb_user_free(&u);
	userdb_close(&db);
	buf_deinit(&errs);
}

/* ldap_db - an LDAP user database over the slapd fixture */
static struct userdb *
ldap_db(const char *extra)
{
	char text[512], spec[200];
	struct userdb *db;
	struct buf errs;
	const char *path;

	(void)snprintf(text, sizeof(text), "search_base = dc=example,dc=test\n"
	    "query_filter = (|(mail=%%s)(mailAlternateAddress=%%s))\n%s",
	    extra);
	path = slapd_write_conf(&slapd, "ldap-users.conf", text);
	assert_non_null(path);
	(void)snprintf(spec, sizeof(spec), "ldap:%s", path);
	buf_init(&errs, 0);
	db = userdb_open(spec, &errs);
	if (db == NULL)
		fail_msg("%s", buf_cstr(&errs));
	assert_int_equal(userdb_check(spec, &errs), 0);
	buf_deinit(&errs);
	return db;
}

static void
test_ldap_lookup(void **state)
{
	struct userdb_user u;
	struct userdb *db;
	struct reply r;

	(void)state;
	db = ldap_db("home_attribute = homeDirectory\n");
	assert_int_equal(userdb_lookup(db, "Demo@example.test", &u, &r), 1);
	assert_string_equal(u.name, "demo@example.test");
	assert_int_equal(u.quota, 104857600);
	assert_string_equal(u.home, "/var/mail/demo");
	assert_int_equal(u.uid, -1);
	userdb_user_free(&u);
	assert_int_equal(userdb_lookup(db, "demo.alias@example.test", &u, &r),
	    1);
	userdb_user_free(&u);
	assert_int_equal(userdb_lookup(db, "alice@example.test", &u, &r), 1);
	assert_int_equal(u.quota, 0);
	assert_null(u.home);
	userdb_user_free(&u);
	assert_int_equal(userdb_lookup(db, "nobody@example.test", &u, &r), 0);
	assert_int_equal(userdb_lookup(db, "*", &u, &r), 0);
	assert_int_equal(userdb_lookup(db, "*)(uid=*", &u, &r), 0);
	/* two entries for one address: ambiguous, defer */
	memset(&r, 0, sizeof(r));
	assert_int_equal(userdb_lookup(db, "team@example.test", &u, &r), -1);
	assert_int_equal(r.code, 451);
	assert_null(u.name);
	/* a bad attribute value in the directory: defer, never guess */
	assert_int_equal(userdb_lookup(db, "odd*(x)\\@example.test", &u, &r),
	    -1);
	assert_null(u.name);
	assert_null(u.home);
	userdb_close(&db);
}

static void
test_ldap_auth(void **state)
{
	struct userdb *db;
	struct reply r;

	(void)state;
	db = ldap_db("");
	assert_int_equal(userdb_auth(db, "demo@example.test", "demo", &r), 1);
	assert_int_equal(userdb_auth(db, "DEMO.alias@example.test", "demo",
	    &r), 1);
	assert_int_equal(userdb_auth(db, "alice@example.test", "alice pw", &r),
	    1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(userdb_auth(db, "demo@example.test", "wrong", &r), 0);
	assert_int_equal(r.code, 535);
	assert_string_equal(r.dsn, "5.7.8");
	/* another user's password is wrong */
	assert_int_equal(userdb_auth(db, "demo@example.test", "alice pw", &r),
	    0);
	/* empty: would be an anonymous bind that "succeeds" */
	assert_int_equal(userdb_auth(db, "demo@example.test", "", &r), 0);
	assert_int_equal(userdb_auth(db, "nobody@example.test", "demo", &r),
	    0);
	assert_int_equal(userdb_auth(db, "*", "demo", &r), 0);
	assert_int_equal(userdb_auth(db, "*)(uid=*", "demo", &r), 0);
	/* no userPassword at all */
	assert_int_equal(userdb_auth(db, "odd*(x)\\@example.test", "x", &r),
	    0);
	/* ambiguous: defer */
	memset(&r, 0, sizeof(r));
	assert_int_equal(userdb_auth(db, "team@example.test", "alice pw", &r),
	    -1);
	assert_int_equal(r.code, 454);
	assert_string_equal(r.dsn, "4.7.0");
	/* restart: both connections come back */
	slapd_stop(&slapd);
	assert_int_equal(slapd_spawn(&slapd), 0);
	assert_int_equal(userdb_auth(db, "demo@example.test", "demo", &r), 1);
	assert_int_equal(userdb_auth(db, "demo@example.test", "bad", &r), 0);
	/* down: temporary failure */
	slapd_stop(&slapd);
	memset(&r, 0, sizeof(r));
	assert_int_equal(userdb_auth(db, "demo@example.test", "demo", &r), -1);
	assert_int_equal(r.code, 454);
	assert_int_equal(slapd_spawn(&slapd), 0);
	assert_int_equal(userdb_auth(db, "demo@example.test", "demo", &r), 1);
	userdb_close(&db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_hostile),
		cmocka_unit_test(test_file_lookup),
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_file_reload),
		cmocka_unit_test(test_shipped_conf_users),
		cmocka_unit_test(test_ldap_lookup),
		cmocka_unit_test(test_ldap_auth),
	};

	return cmocka_run_group_tests_name("userdb", tests, group_setup,
	    group_teardown);
}
