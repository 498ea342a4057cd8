/* Users, sessions and API tokens kept in DATA/auth.db: opening it, roles,
 * the parsing of credentials from requests, and what the other auth files
 * share (auth_impl.h). */
#include "auth_impl.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/expo.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "store/db.h"

static const struct db_migration steps[] = {
    {"users, sessions, api tokens",
     "CREATE TABLE users (id INTEGER PRIMARY KEY,"
     " username TEXT NOT NULL UNIQUE COLLATE NOCASE, pwhash TEXT, role INTEGER NOT NULL,"
     " disabled INTEGER NOT NULL DEFAULT 0, must_change INTEGER NOT NULL DEFAULT 0,"
     " source TEXT NOT NULL DEFAULT 'local', created_ms INTEGER NOT NULL,"
     " updated_ms INTEGER NOT NULL, last_login_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE sessions (id INTEGER PRIMARY KEY,"
     " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " hash BLOB NOT NULL UNIQUE, created_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
     " expires_ms INTEGER NOT NULL, source TEXT NOT NULL DEFAULT '',"
     " user_agent TEXT NOT NULL DEFAULT '', revoked_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX sessions_by_user ON sessions (user_id);"
     "CREATE TABLE api_tokens (id INTEGER PRIMARY KEY,"
     " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " name TEXT NOT NULL, role INTEGER NOT NULL, hash BLOB NOT NULL UNIQUE,"
     " prefix TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
     " last_used_ms INTEGER NOT NULL DEFAULT 0, revoked_ms INTEGER NOT NULL DEFAULT 0,"
     " UNIQUE (user_id, name));"},
    {"sign-ups waiting for approval",
     "ALTER TABLE users ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;"},
};

static const char *const role_names[] = {"none", "viewer", "user", "operator", "admin"};

const char *auth_role_name(int role)
{
    return role >= 0 && role <= ROLE_ADMIN ? role_names[role] : "none";
}

int auth_role_parse(const char *s)
{
    for (int r = ROLE_VIEWER; s && r <= ROLE_ADMIN; r++)
        if (!strcmp(s, role_names[r]))
            return r;
    return -1;
}

const char *auth_method_name(int method)
{
    static const char *const names[] = {"anonymous", "session", "token", "proxy"};
    return method >= 0 && method <= AUTH_PROXY ? names[method] : "anonymous";
}

/* ---- parsing ---- */

int auth_cookie_get(const char *h, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);

    while (h && *h) {
        h += strspn(h, " \t;");
        size_t n = strcspn(h, ";");
        if (n > nl && !strncmp(h, name, nl) && h[nl] == '=') {
            const char *v = h + nl + 1;
            size_t vl = n - nl - 1;
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            if (vl == 0 || vl >= outlen)
                return -1;
            for (size_t i = 0; i < vl; i++)
                if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f || v[i] == '"' ||
                    v[i] == ',' || v[i] == '\\')
                    return -1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        h += n;
    }
    return -1;
}

/* Decodes standard base64 (padding optional) into out; length or -1. */
static long unbase64(const char *s, size_t n, char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *p = s[i] ? strchr(abc, s[i]) : NULL;
        if (!p)
            return -1;
        acc = (acc << 6) | (unsigned)(p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k + 1 >= cap)
                return -1;
            out[k++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[k] = '\0';
    return (long)k;
}

/* "Basic base64(user:token)": the password is an API token (how Grafana's
 * Prometheus data source can authenticate); the user name is ignored. */
static int basic_get(const char *h, char *out, size_t outlen)
{
    char dec[512];
    h += 6;
    h += strspn(h, " ");
    size_t n = strcspn(h, " ");
    if (n == 0 || unbase64(h, n, dec, sizeof(dec)) < 0)
        return -1;
    const char *colon = strchr(dec, ':');
    if (!colon)
        return -1;
    char bearer[520];
    snprintf(bearer, sizeof(bearer), "Bearer %s", colon + 1);
    return auth_bearer_get(bearer, out, outlen);
}

int auth_bearer_get(const char *h, char *out, size_t outlen)
{
    if (h && !strncasecmp(h, "Basic ", 6))
        return basic_get(h, out, outlen);
    if (!h || strncasecmp(h, "Bearer ", 7))
        return -1;
    h += 7;
    h += strspn(h, " ");
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f)
            return -1;
    memcpy(out, h, n);
    out[n] = '\0';
    return 0;
}

int auth_valid_username(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AUTH_USERNAME_MAX || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i]))
            return 0;
    return 1;
}

int auth_parse_login(const char *body, size_t len, char *username, char *password,
                     struct errinfo *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;

    if (!j || !json_is_object(j)) {
        errinfo_set(err, 400, "invalid_body", "body", "a JSON object {\"username\",\"password\"} is required");
        goto out;
    }
    const char *u = json_string_value(json_object_get(j, "username"));
    const char *p = json_string_value(json_object_get(j, "password"));
    if (!u || !auth_valid_username(u)) {
        errinfo_set(err, 400, "invalid_field", "username",
                "username must be 1-%d of letters, digits, '.', '_', '@', '-'", AUTH_USERNAME_MAX);
        goto out;
    }
    if (!p || !*p || strlen(p) > AUTH_PASSWORD_MAX) {
        errinfo_set(err, 400, "invalid_field", "password", "password must be 1-%d bytes",
                AUTH_PASSWORD_MAX);
        goto out;
    }
    strcpy(username, u);
    strcpy(password, p);
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* ---- secrets ---- */

void auth_new_secret(const char *prefix, char *out, size_t outlen, unsigned char hash[HASH_LEN])
{
    unsigned char raw[32];
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, outlen, "%s%s", prefix, b64);
    crypto_generichash(hash, HASH_LEN, (const unsigned char *)out, strlen(out), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
}

void auth_hash_secret(const char *s, unsigned char hash[HASH_LEN])
{
    crypto_generichash(hash, HASH_LEN, (const unsigned char *)s, strlen(s), NULL, 0);
}

/* ---- open / close ---- */

/* The statements prepared at open, and the database. */
static void close_db(struct auth *a)
{
    sqlite3_finalize(a->q_session);
    sqlite3_finalize(a->q_session_touch);
    sqlite3_finalize(a->q_token);
    sqlite3_finalize(a->q_token_touch);
    sqlite3_finalize(a->q_data_version);
    sqlite3_close(a->db);
}

struct auth *auth_open(const char *path, const struct auth_config *cfg, char *err, size_t errlen)
{
    struct auth *a;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    a = xcalloc(1, sizeof(*a));
    a->cfg = *cfg;
    a->db = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen);
    if (!a->db)
        goto fail;
    a->q_session = db_prepare(a->db,
        "SELECT s.id, s.user_id, s.last_seen_ms, s.expires_ms, u.username, u.role, u.disabled,"
        " u.must_change FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.hash = ? AND s.revoked_ms = 0");
    a->q_session_touch = db_prepare(a->db, "UPDATE sessions SET last_seen_ms = ? WHERE id = ?");
    a->q_token = db_prepare(a->db,
        "SELECT t.id, t.user_id, t.last_used_ms, t.expires_ms, u.username, u.role, u.disabled,"
        " t.role FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.hash = ? AND t.revoked_ms = 0");
    a->q_token_touch = db_prepare(a->db, "UPDATE api_tokens SET last_used_ms = ? WHERE id = ?");
    a->q_data_version = db_prepare(a->db, "PRAGMA data_version");
    if (!a->q_session || !a->q_session_touch || !a->q_token || !a->q_token_touch ||
        !a->q_data_version) {
        snprintf(err, errlen, "%s: cannot prepare statements", path);
        goto fail;
    }
    char pw[32];
    auth_random_password(pw, sizeof(pw));
    if (auth_hash_password(pw, a->dummy_hash) < 0) {
        snprintf(err, errlen, "cannot hash a password (out of memory?)");
        goto fail;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->fail_lock, NULL);
    pthread_mutex_init(&a->cache_lock, NULL);
    a->cache = xcalloc(CACHE_SLOTS, sizeof(*a->cache));
    a->gen = 1;
    sem_init(&a->login_slots, 0, (unsigned)(cfg->max_concurrent_logins > 0 ? cfg->max_concurrent_logins : 1));
    return a;
fail:
    close_db(a);
    free(a);
    return NULL;
}

void auth_close(struct auth *a)
{
    if (!a)
        return;
    close_db(a);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->fail_lock);
    pthread_mutex_destroy(&a->cache_lock);
    sem_destroy(&a->login_slots);
    free(a->cache);
    free(a);
}

/* Runs a statement that returns no rows; 0, or the SQLite error code. */
int auth_db_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

sqlite3_stmt *auth_db_prep(struct auth *a, const char *sql)
{
    return db_prepare(a->db, sql);
}

void auth_db_text(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    snprintf(out, outlen, "%s", s ? s : "");
}

/* ---- identification ---- */

/* Forgets every cached credential: called after any change that could
 * end one (revocation, a disabled or deleted user, a new role). */
void auth_invalidate(struct auth *a)
{
    pthread_mutex_lock(&a->cache_lock);
    a->gen++;
    pthread_mutex_unlock(&a->cache_lock);
}
