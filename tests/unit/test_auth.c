/* Tests for src/server/auth.c and audit.c: parsing of credentials, the
 * password policy, logins with backoff, session and token lifetimes and
 * revocation, the last-admin guard, proxy users, and audit queries. */
#include <unistd.h>

#include "testutil.h"

#include "../../src/server/audit.h"
#include "../../src/server/auth.h"
#include "../../src/server/options.h"

#define T0 1795000000000LL
#define PW "a-long-secret-pass"


/* The server's defaults (its settings table) for the auth module. */
static void defaults(struct auth_config *c)
{
    struct server_options o;
    server_options_init(&o);
    server_options_auth(&o, c);
    server_options_free(&o);
}

static struct auth *open_auth(struct auth_config *cfg)
{
    char path[128], err[256];
    struct auth_config def;

    if (!cfg) {
        defaults(&def);
        def.session_idle_ms = 60000;
        def.session_max_ms = 600000;
        cfg = &def;
    }
    snprintf(path, sizeof(path), "%s/auth.db", tmpdir);
    struct auth *a = auth_open(path, cfg, err, sizeof(err));
    if (!a)
        fail_msg("open: %s", err);
    return a;
}

static void cookie_and_bearer_parsing(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(auth_cookie_get("a=1; gf_session=abc_-9; b=2", "gf_session", out, sizeof(out)), 0);
    assert_string_equal(out, "abc_-9");
    assert_int_equal(auth_cookie_get("gf_session=\"quoted\"", "gf_session", out, sizeof(out)), 0);
    assert_string_equal(out, "quoted");
    /* a longer name that starts the same is another cookie */
    assert_int_equal(auth_cookie_get("gf_sessionx=1", "gf_session", out, sizeof(out)), -1);
    assert_int_equal(auth_cookie_get("gf_session=", "gf_session", out, sizeof(out)), -1);
    assert_int_equal(auth_cookie_get("gf_session=a b", "gf_session", out, sizeof(out)), -1);
    assert_int_equal(auth_cookie_get("", "gf_session", out, sizeof(out)), -1);
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "gf_session=", 11);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(auth_cookie_get(big, "gf_session", out, sizeof(out)), -1);

    assert_int_equal(auth_bearer_get("Bearer gft_abc", out, sizeof(out)), 0);
    assert_string_equal(out, "gft_abc");
    assert_int_equal(auth_bearer_get("bearer  tok ", out, sizeof(out)), 0);
    assert_string_equal(out, "tok");
    /* basic auth: the password is the credential (a token, for Grafana) */
    assert_int_equal(auth_bearer_get("Basic dXNlcjpwdw==", out, sizeof(out)), 0);
    assert_string_equal(out, "pw");
    assert_int_equal(auth_bearer_get("Basic dXNlcg==", out, sizeof(out)), -1); /* no ':' */
    assert_int_equal(auth_bearer_get("Basic !!!", out, sizeof(out)), -1);
    assert_int_equal(auth_bearer_get("Basic dXNlcjo=", out, sizeof(out)), -1); /* empty password */
    assert_int_equal(auth_bearer_get("Bearer ", out, sizeof(out)), -1);
    assert_int_equal(auth_bearer_get("Bearer a\tb", out, sizeof(out)), -1);
}

static void names_and_password_policy(void **state)
{
    char err[128];
    (void)state;
    assert_true(auth_valid_username("alice"));
    assert_true(auth_valid_username("a.b-c_d@lab.example"));
    assert_false(auth_valid_username(""));
    assert_false(auth_valid_username("-alice"));
    assert_false(auth_valid_username("al ice"));
    assert_false(auth_valid_username("alice'; DROP TABLE users; --"));
    assert_int_equal(auth_password_policy("alice", "short", 10, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "10"));
    assert_int_equal(auth_password_policy("alice", "my-Alice-password", 10, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "user name"));
    assert_int_equal(auth_password_policy("alice", "\xff\xfe-not-utf8-at-all", 10, err, sizeof(err)), -1);
    assert_int_equal(auth_password_policy("alice", "correct horse battery", 10, err, sizeof(err)), 0);

    struct errinfo e;
    char u[AUTH_USERNAME_MAX + 1], p[AUTH_PASSWORD_MAX + 1];
    const char *good = "{\"username\":\"bob\",\"password\":\"x\"}";
    assert_int_equal(auth_parse_login(good, strlen(good), u, p, &e), 0);
    assert_string_equal(u, "bob");
    const char *nul = "{\"username\":\"bo\\u0000b\",\"password\":\"x\"}";
    assert_int_equal(auth_parse_login(nul, strlen(nul), u, p, &e), -1);
    const char *inj = "{\"username\":\"' OR 1=1 --\",\"password\":\"x\"}";
    assert_int_equal(auth_parse_login(inj, strlen(inj), u, p, &e), -1);
    assert_string_equal(e.field, "username");
    const char *nopw = "{\"username\":\"bob\"}";
    assert_int_equal(auth_parse_login(nopw, strlen(nopw), u, p, &e), -1);
    assert_string_equal(e.field, "password");
}

static void login_backoff_and_sessions(void **state)
{
    struct auth_config cfg;
    struct auth_identity id;
    struct errinfo e;
    int64_t uid, retry, sid;
    char secret[64];
    (void)state;

    defaults(&cfg);
    cfg.session_idle_ms = 60000;
    cfg.session_max_ms = 600000;
    cfg.backoff_after = 3;
    cfg.backoff_base_ms = 1000;
    struct auth *a = open_auth(&cfg);
    assert_int_equal(auth_user_create(a, "alice", PW, ROLE_OPERATOR, 0, T0, &uid, &e), 0);
    assert_int_equal(auth_user_create(a, "ALICE", PW, ROLE_VIEWER, 0, T0, &uid, &e), -1);
    assert_int_equal(e.status, 409);

    assert_int_equal(auth_login(a, "alice", PW, "10.0.0.1", T0, &id, &retry), LOGIN_OK);
    assert_int_equal(id.role, ROLE_OPERATOR);
    /* a wrong password and an unknown user look the same */
    assert_int_equal(auth_login(a, "alice", "wrong-password", "10.0.0.2", T0, &id, &retry), LOGIN_FAILED);
    assert_int_equal(auth_login(a, "nobody", "wrong-password", "10.0.0.3", T0, &id, &retry), LOGIN_FAILED);
    assert_int_equal(auth_login(a, "alice", "wrong-password", "10.0.0.2", T0, &id, &retry), LOGIN_FAILED);
    assert_int_equal(auth_login(a, "alice", "wrong-password", "10.0.0.2", T0, &id, &retry), LOGIN_FAILED);
    /* third failure: even the right password waits now, from any address */
    assert_int_equal(auth_login(a, "alice", PW, "10.0.0.9", T0 + 10, &id, &retry), LOGIN_WAIT);
    assert_true(retry > 0 && retry <= 1000);
    assert_int_equal(auth_login(a, "alice", PW, "10.0.0.9", T0 + 1001, &id, &retry), LOGIN_OK);

    assert_int_equal(auth_session_create(a, uid, "10.0.0.9", "curl/8", T0, secret, sizeof(secret), &sid), 0);
    assert_true(strlen(secret) >= 43);
    assert_int_equal(auth_identify_session(a, secret, T0 + 1000, &id), 0);
    assert_string_equal(id.username, "alice");
    assert_int_equal(id.session_id, sid);
    assert_int_equal(auth_identify_session(a, "not-a-session", T0 + 1000, &id), -1);
    /* use keeps it alive past the idle limit; silence ends it */
    for (int64_t t = T0 + 30000; t < T0 + 300000; t += 30000)
        assert_int_equal(auth_identify_session(a, secret, t, &id), 0);
    assert_int_equal(auth_identify_session(a, secret, T0 + 270000 + 60001, &id), -1);

    /* absolute end regardless of use */
    assert_int_equal(auth_session_create(a, uid, "", "", T0, secret, sizeof(secret), &sid), 0);
    for (int64_t t = T0 + 30000; t < T0 + 600000; t += 30000)
        assert_int_equal(auth_identify_session(a, secret, t, &id), 0);
    assert_int_equal(auth_identify_session(a, secret, T0 + 600000, &id), -1);

    /* revocation: not by another user, yes by the owner */
    assert_int_equal(auth_session_create(a, uid, "", "", T0, secret, sizeof(secret), &sid), 0);
    assert_int_equal(auth_session_revoke(a, sid, uid + 100, T0, &e), -1);
    assert_int_equal(e.status, 404);
    assert_int_equal(auth_identify_session(a, secret, T0 + 1, &id), 0);
    assert_int_equal(auth_session_revoke(a, sid, uid, T0, &e), 0);
    assert_int_equal(auth_identify_session(a, secret, T0 + 1, &id), -1);

    /* a password change ends the other sessions, a disabled user all */
    char s2[64];
    int64_t sid2;
    assert_int_equal(auth_session_create(a, uid, "", "", T0, secret, sizeof(secret), &sid), 0);
    assert_int_equal(auth_session_create(a, uid, "", "", T0, s2, sizeof(s2), &sid2), 0);
    assert_int_equal(auth_set_password(a, uid, "another-long-pass", 0, sid2, T0, &e), 0);
    assert_int_equal(auth_identify_session(a, secret, T0 + 1, &id), -1);
    assert_int_equal(auth_identify_session(a, s2, T0 + 1, &id), 0);
    assert_int_equal(auth_login(a, "alice", PW, "10.0.0.9", T0 + 5000, &id, &retry), LOGIN_FAILED);
    assert_int_equal(auth_user_set_disabled(a, uid, 1, T0, &e), 0);
    assert_int_equal(auth_identify_session(a, s2, T0 + 2, &id), -1);
    assert_int_equal(auth_login(a, "alice", "another-long-pass", "10.0.0.8", T0 + 9000, &id, &retry),
                     LOGIN_DISABLED);
    auth_close(a);
}

/* Credentials are cached; another process's change (the CLI on the same
 * file) is seen within a second, the server's own changes at once. */
static void cache_follows_changes(void **state)
{
    struct auth_identity id;
    struct errinfo e;
    int64_t uid, sid, tid;
    char secret[64], tok[96];
    (void)state;

    struct auth *a = open_auth(NULL);
    struct auth *cli = open_auth(NULL);
    assert_int_equal(auth_user_create(a, "carol", PW, ROLE_OPERATOR, 0, T0, &uid, &e), 0);
    assert_int_equal(auth_session_create(a, uid, "", "", T0, secret, sizeof(secret), &sid), 0);
    assert_int_equal(auth_token_create(a, uid, ROLE_OPERATOR, "t", ROLE_OPERATOR, T0 + 86400000, T0,
                                       tok, sizeof(tok), &tid, &e), 0);
    assert_int_equal(auth_identify_session(a, secret, T0 + 10, &id), 0);
    assert_int_equal(auth_identify_token(a, tok, T0 + 10, &id), 0);
    /* demoted by the server itself: seen on the next request */
    json_t *body = json_pack("{s:s}", "role", "viewer");
    json_decref(auth_user_update_json(a, uid, body, T0, &e));
    json_decref(body);
    assert_int_equal(auth_identify_token(a, tok, T0 + 20, &id), 0);
    assert_int_equal(id.role, ROLE_VIEWER);
    assert_int_equal(auth_identify_session(a, secret, T0 + 20, &id), 0);
    assert_int_equal(id.role, ROLE_VIEWER);
    /* disabled from another connection: seen once the server looks again */
    assert_int_equal(auth_user_set_disabled(cli, uid, 1, T0, &e), 0);
    assert_int_equal(auth_identify_session(a, secret, T0 + 1100, &id), -1);
    assert_int_equal(auth_identify_token(a, tok, T0 + 1100, &id), -1);
    auth_close(cli);
    auth_close(a);
}

static void tokens(void **state)
{
    struct auth_identity id;
    struct errinfo e;
    int64_t uid, tid;
    char secret[96];
    (void)state;

    struct auth *a = open_auth(NULL);
    assert_int_equal(auth_user_create(a, "ops", PW, ROLE_OPERATOR, 0, T0, &uid, &e), 0);
    /* no higher than the creator */
    assert_int_equal(auth_token_create(a, uid, ROLE_OPERATOR, "ci", ROLE_ADMIN, T0 + 86400000, T0,
                                       secret, sizeof(secret), &tid, &e), -1);
    assert_string_equal(e.field, "role");
    assert_int_equal(auth_token_create(a, uid, ROLE_OPERATOR, "ci", ROLE_OPERATOR, T0 - 1, T0, secret,
                                       sizeof(secret), &tid, &e), -1);
    assert_string_equal(e.field, "expires_in");
    assert_int_equal(auth_token_create(a, uid, ROLE_OPERATOR, "bad\nname", ROLE_VIEWER, T0 + 1000, T0,
                                       secret, sizeof(secret), &tid, &e), -1);
    assert_string_equal(e.field, "name");
    assert_int_equal(auth_token_create(a, uid, ROLE_OPERATOR, "ci", ROLE_OPERATOR, T0 + 86400000, T0,
                                       secret, sizeof(secret), &tid, &e), 0);
    assert_memory_equal(secret, "gft_", 4);
    assert_int_equal(auth_token_create(a, uid, ROLE_OPERATOR, "ci", ROLE_VIEWER, T0 + 86400000, T0,
                                       secret + 50, 40, &tid, &e), -1);
    assert_int_equal(e.status, 409);
    assert_int_equal(auth_identify_token(a, secret, T0 + 1, &id), 0);
    assert_int_equal(id.role, ROLE_OPERATOR);
    assert_int_equal(id.method, AUTH_TOKEN);
    /* demoting the user demotes the token */
    json_t *body = json_pack("{s:s}", "role", "viewer");
    json_t *u = auth_user_update_json(a, uid, body, T0, &e);
    assert_non_null(u);
    json_decref(u);
    json_decref(body);
    assert_int_equal(auth_identify_token(a, secret, T0 + 2, &id), 0);
    assert_int_equal(id.role, ROLE_VIEWER);
    /* expiry, then revocation */
    assert_int_equal(auth_identify_token(a, secret, T0 + 86400000, &id), -1);
    json_t *list = auth_tokens_list(a, uid, T0);
    assert_int_equal(json_array_size(list), 1);
    /* the secret is never listed, only its prefix */
    char *text = json_dumps(list, 0);
    assert_null(strstr(text, secret + 8));
    free(text);
    json_decref(list);
    assert_int_equal(auth_token_revoke(a, tid, 0, T0, &e), 0);
    assert_int_equal(auth_identify_token(a, secret, T0 + 3, &id), -1);
    assert_int_equal(auth_token_revoke(a, tid, 0, T0, &e), -1);
    auth_close(a);
}

static void last_admin_and_proxy_users(void **state)
{
    struct auth_identity id;
    struct errinfo e;
    int64_t admin, other;
    (void)state;

    struct auth *a = open_auth(NULL);
    assert_int_equal(auth_user_create(a, "root", PW, ROLE_ADMIN, 1, T0, &admin, &e), 0);
    assert_int_equal(auth_user_delete(a, admin, &e), -1);
    assert_int_equal(e.status, 409);
    assert_int_equal(auth_user_set_disabled(a, admin, 1, T0, &e), -1);
    json_t *body = json_pack("{s:s}", "role", "viewer");
    assert_null(auth_user_update_json(a, admin, body, T0, &e));
    json_decref(body);
    assert_int_equal(auth_user_create(a, "root2", PW, ROLE_ADMIN, 0, T0, &other, &e), 0);
    assert_int_equal(auth_user_delete(a, admin, &e), 0);
    assert_int_equal(auth_user_count(a), 1);

    /* proxy users appear on first sight with the role the proxy names */
    assert_int_equal(auth_identify_proxy(a, "sso.user@lab", "operator", T0, &id), 0);
    assert_int_equal(id.role, ROLE_OPERATOR);
    assert_int_equal(id.method, AUTH_PROXY);
    assert_int_equal(auth_identify_proxy(a, "sso.user@lab", NULL, T0, &id), 0);
    assert_int_equal(id.role, ROLE_OPERATOR);
    assert_int_equal(auth_identify_proxy(a, "sso.user@lab", "superuser", T0, &id), -1);
    assert_int_equal(auth_identify_proxy(a, "bad name", NULL, T0, &id), -1);
    /* and cannot log in with a password, having none */
    int64_t retry;
    assert_int_equal(auth_login(a, "sso.user@lab", "", "", T0, &id, &retry), LOGIN_FAILED);
    auth_close(a);
}

static void audit_rows(void **state)
{
    char path[128], err[256];
    (void)state;

    snprintf(path, sizeof(path), "%s/audit.db", tmpdir);
    struct audit *au = audit_open(path, 30, err, sizeof(err));
    assert_non_null(au);
    int64_t now = 1795000000000LL;
    const char *actions[] = {"server.create", "server.delete", "user.create", "auth.login"};
    for (int i = 0; i < 40; i++) {
        struct audit_entry e = {.ts_ms = now - (40 - i) * 1000, .user_id = 1 + i % 2,
                                .username = i % 2 ? "bob" : "alice", .role = "admin",
                                .source = "127.0.0.1", .action = actions[i % 4],
                                .target = "server:1", .result = "ok", .status = 200};
        assert_int_equal(audit_write(au, &e), 0);
    }
    struct audit_filter f = {.username = "alice", .limit = 100};
    json_t *r = audit_query(au, &f);
    assert_int_equal(json_array_size(json_object_get(r, "entries")), 20);
    json_decref(r);
    struct audit_filter g = {.action = "server.*", .limit = 100};
    r = audit_query(au, &g);
    assert_int_equal(json_array_size(json_object_get(r, "entries")), 20);
    json_decref(r);
    /* an injection string is just a name that matches nothing */
    struct audit_filter h = {.username = "' OR '1'='1", .limit = 100};
    r = audit_query(au, &h);
    assert_int_equal(json_array_size(json_object_get(r, "entries")), 0);
    json_decref(r);
    /* paging: 15 + 15 + 10, newest first, no overlap */
    int64_t before = 0, seen = 0, last = INT64_MAX;
    for (int page = 0; page < 3; page++) {
        struct audit_filter p = {.limit = 15, .before_id = before};
        r = audit_query(au, &p);
        json_t *entries = json_object_get(r, "entries"), *e;
        size_t i;
        json_array_foreach(entries, i, e)
        {
            int64_t id = json_integer_value(json_object_get(e, "id"));
            assert_true(id < last);
            last = id;
            seen++;
        }
        json_t *next = json_object_get(r, "next_before_id");
        assert_true(page < 2 ? json_is_integer(next) : json_is_null(next));
        before = json_integer_value(next);
        json_decref(r);
    }
    assert_int_equal(seen, 40);
    struct audit_filter t = {.since_ms = now - 10000, .until_ms = now - 5000, .limit = 100};
    r = audit_query(au, &t);
    assert_int_equal(json_array_size(json_object_get(r, "entries")), 6);
    json_decref(r);
    /* retention: 30 days */
    assert_int_equal(audit_prune(au, now + 31LL * 86400000), 40);
    audit_close(au);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cookie_and_bearer_parsing),
        cmocka_unit_test(names_and_password_policy),
        cmocka_unit_test_setup_teardown(login_backoff_and_sessions, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(tokens, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(cache_follows_changes, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(last_admin_and_proxy_users, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(audit_rows, tmpdir_setup, tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
