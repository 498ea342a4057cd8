/* Users, sessions, API tokens and login backoff on SQLite + libsodium. The
 * per-request lookups use statements prepared once at open; logins run
 * argon2id outside the lock, a bounded number at a time. */
#include "auth.h"

#include <ctype.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/expo.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "store/db.h"

#define HASH_LEN 32
#define FAIL_SLOTS 1024
#define CACHE_SLOTS 4096 /* credentials checked recently: a direct-mapped table */
#define POLL_MS 1000     /* how often changes by other processes are looked for */

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
};

struct fail_entry {
    char key[AUTH_USERNAME_MAX + 72];
    int failures;
    int64_t last_ms, until_ms;
};

/* A credential the database vouched for, so that the next request with it
 * costs a hash and a lookup instead of a SQLite read transaction (which
 * takes file locks). Any change that could end it bumps the generation. */
struct cred_slot {
    unsigned char hash[HASH_LEN];
    uint64_t gen;
    int method;
    struct auth_identity id;
    int64_t expires_ms;  /* absolute end */
    int64_t last_ms;     /* last use (sessions: idle end counts from here) */
    int64_t stored_ms;   /* last use written to the database */
};

struct auth {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *q_session, *q_session_touch, *q_token, *q_token_touch, *q_data_version;
    pthread_mutex_t cache_lock;
    struct cred_slot *cache;
    uint64_t gen;          /* under cache_lock */
    int64_t polled_ms;     /* atomic */
    int64_t data_version;  /* under lock */
    struct auth_config cfg;
    sem_t login_slots;
    char dummy_hash[crypto_pwhash_STRBYTES]; /* verified when the user does not exist */
    pthread_mutex_t fail_lock;
    struct fail_entry fails[FAIL_SLOTS];
};

static const char *const role_names[] = {"none", "viewer", "user", "operator", "admin"};

void auth_config_defaults(struct auth_config *c)
{
    c->session_idle_ms = 12 * 3600 * 1000LL;
    c->session_max_ms = 7 * 86400 * 1000LL;
    c->min_password_len = 10;
    c->backoff_after = 3;
    c->backoff_base_ms = 1000;
    c->backoff_max_ms = 300 * 1000;
    c->max_concurrent_logins = 2;
    c->token_max_ms = 366 * 86400 * 1000LL;
}

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

int auth_bearer_get(const char *h, char *out, size_t outlen)
{
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

int auth_password_policy(const char *user, const char *pw, int min_len, char *err, size_t errlen)
{
    size_t n = strlen(pw);

    if (n < (size_t)min_len) {
        snprintf(err, errlen, "at least %d characters", min_len);
        return -1;
    }
    if (n > AUTH_PASSWORD_MAX) {
        snprintf(err, errlen, "at most %d bytes", AUTH_PASSWORD_MAX);
        return -1;
    }
    if (!expo_valid_utf8(pw, n)) {
        snprintf(err, errlen, "not valid UTF-8");
        return -1;
    }
    if (user && *user && strcasestr(pw, user)) {
        snprintf(err, errlen, "must not contain the user name");
        return -1;
    }
    return 0;
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

static void new_secret(const char *prefix, char *out, size_t outlen, unsigned char hash[HASH_LEN])
{
    unsigned char raw[32];
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, outlen, "%s%s", prefix, b64);
    crypto_generichash(hash, HASH_LEN, (const unsigned char *)out, strlen(out), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
}

static void hash_secret(const char *s, unsigned char hash[HASH_LEN])
{
    crypto_generichash(hash, HASH_LEN, (const unsigned char *)s, strlen(s), NULL, 0);
}

void auth_random_password(char *out, size_t outlen)
{
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    size_t n = outlen - 1 < 24 ? outlen - 1 : 24;
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    out[n] = '\0';
}

static int hash_password(const char *pw, char out[crypto_pwhash_STRBYTES])
{
    /* argon2id, 2 passes over 64 MiB (libsodium's INTERACTIVE): ~0.1 s */
    return crypto_pwhash_str_alg(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
}

/* ---- open / close ---- */

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
    if (hash_password(pw, a->dummy_hash) < 0) {
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
    sqlite3_finalize(a->q_session);
    sqlite3_finalize(a->q_session_touch);
    sqlite3_finalize(a->q_token);
    sqlite3_finalize(a->q_token_touch);
    sqlite3_finalize(a->q_data_version);
    sqlite3_close(a->db);
    free(a);
    return NULL;
}

void auth_close(struct auth *a)
{
    if (!a)
        return;
    sqlite3_finalize(a->q_session);
    sqlite3_finalize(a->q_session_touch);
    sqlite3_finalize(a->q_token);
    sqlite3_finalize(a->q_token_touch);
    sqlite3_finalize(a->q_data_version);
    sqlite3_close(a->db);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->fail_lock);
    pthread_mutex_destroy(&a->cache_lock);
    sem_destroy(&a->login_slots);
    free(a->cache);
    free(a);
}

/* Runs a statement that returns no rows; 0, or the SQLite error code. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

static sqlite3_stmt *prep(struct auth *a, const char *sql)
{
    return db_prepare(a->db, sql);
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    snprintf(out, outlen, "%s", s ? s : "");
}

/* ---- identification ---- */

static int64_t touch_every(const struct auth *a)
{
    int64_t q = a->cfg.session_idle_ms / 4;
    return q < 60000 ? q : 60000;
}

/* Forgets every cached credential: called after any change that could
 * end one (revocation, a disabled or deleted user, a new role). */
static void invalidate(struct auth *a)
{
    pthread_mutex_lock(&a->cache_lock);
    a->gen++;
    pthread_mutex_unlock(&a->cache_lock);
}

/* Changes made by another process (`gpufleet user disable` at the shell)
 * show up as a new PRAGMA data_version; looked for once a second. */
static void poll_other_writers(struct auth *a, int64_t now)
{
    int64_t last = __atomic_load_n(&a->polled_ms, __ATOMIC_RELAXED);
    if (now - last < POLL_MS && now >= last)
        return;
    if (!__atomic_compare_exchange_n(&a->polled_ms, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&a->lock);
    int64_t v = -1;
    if (sqlite3_step(a->q_data_version) == SQLITE_ROW)
        v = sqlite3_column_int64(a->q_data_version, 0);
    sqlite3_reset(a->q_data_version);
    int changed = v != a->data_version;
    a->data_version = v;
    pthread_mutex_unlock(&a->lock);
    if (changed)
        invalidate(a);
}

static struct cred_slot *slot_of(struct auth *a, const unsigned char *h)
{
    uint32_t k;
    memcpy(&k, h, sizeof(k));
    return &a->cache[k % CACHE_SLOTS];
}

/* A cache hit fills id and returns 1 (and whether the database's last-use
 * time is due in *touch); 0 sends the caller to the database. */
static int cache_get(struct auth *a, const unsigned char *h, int method, int64_t now, int64_t idle_ms,
                     int64_t touch_ms, struct auth_identity *id, int *touch)
{
    int hit = 0;
    pthread_mutex_lock(&a->cache_lock);
    struct cred_slot *c = slot_of(a, h);
    if (c->gen == a->gen && c->method == method && !memcmp(c->hash, h, HASH_LEN) &&
        now < c->expires_ms && (idle_ms <= 0 || now - c->last_ms < idle_ms) && now >= c->last_ms) {
        *id = c->id;
        c->last_ms = now;
        *touch = now - c->stored_ms >= touch_ms;
        hit = 1;
    }
    pthread_mutex_unlock(&a->cache_lock);
    return hit;
}

static void cache_put(struct auth *a, const unsigned char *h, uint64_t gen, const struct auth_identity *id,
                      int64_t expires_ms, int64_t last_ms, int64_t stored_ms)
{
    pthread_mutex_lock(&a->cache_lock);
    if (gen == a->gen) { /* nothing changed while the database was read */
        struct cred_slot *c = slot_of(a, h);
        memcpy(c->hash, h, HASH_LEN);
        c->gen = gen;
        c->method = id->method;
        c->id = *id;
        c->expires_ms = expires_ms;
        c->last_ms = last_ms;
        c->stored_ms = stored_ms;
    }
    pthread_mutex_unlock(&a->cache_lock);
}

static void cache_stored(struct auth *a, const unsigned char *h, int64_t now)
{
    pthread_mutex_lock(&a->cache_lock);
    struct cred_slot *c = slot_of(a, h);
    if (!memcmp(c->hash, h, HASH_LEN))
        c->stored_ms = now;
    pthread_mutex_unlock(&a->cache_lock);
}

static uint64_t generation(struct auth *a)
{
    pthread_mutex_lock(&a->cache_lock);
    uint64_t g = a->gen;
    pthread_mutex_unlock(&a->cache_lock);
    return g;
}

static void touch_row(struct auth *a, sqlite3_stmt *st, int64_t id, int64_t now)
{
    pthread_mutex_lock(&a->lock);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_step(st);
    sqlite3_reset(st);
    pthread_mutex_unlock(&a->lock);
}

/* Sessions and API tokens take the same path: the cache, else one read of
 * their row (both SELECTs give id, user_id, last use, end, username, the
 * user's role, disabled, then must_change or the token's role). */
static int identify(struct auth *a, const char *secret, int64_t now, int method, struct auth_identity *id)
{
    int session = method == AUTH_SESSION;
    sqlite3_stmt *st = session ? a->q_session : a->q_token;
    sqlite3_stmt *touch_q = session ? a->q_session_touch : a->q_token_touch;
    int64_t idle = session ? a->cfg.session_idle_ms : 0;
    /* the database keeps the last use to within a quarter of the idle time
     * (tokens: a minute) */
    int64_t touch_ms = session ? touch_every(a) : 60000;
    unsigned char h[HASH_LEN];
    int rc = -1, touch = 0;
    int64_t row = 0, last = 0, end = 0;

    hash_secret(secret, h);
    poll_other_writers(a, now);
    if (cache_get(a, h, method, now, idle, touch_ms, id, &touch)) {
        if (touch) {
            touch_row(a, touch_q, session ? id->session_id : id->token_id, now);
            cache_stored(a, h, now);
        }
        return 0;
    }
    uint64_t gen = generation(a);
    pthread_mutex_lock(&a->lock);
    sqlite3_bind_blob(st, 1, h, HASH_LEN, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    row = sqlite3_column_int64(st, 0);
    last = sqlite3_column_int64(st, 2);
    end = sqlite3_column_int64(st, 3);
    if (sqlite3_column_int(st, 6) || now >= end || (idle && now - last >= idle))
        goto out;
    memset(id, 0, sizeof(*id));
    id->user_id = sqlite3_column_int64(st, 1);
    copy_col(st, 4, id->username, sizeof(id->username));
    int urole = sqlite3_column_int(st, 5), extra = sqlite3_column_int(st, 7);
    if (session) {
        id->session_id = row;
        id->role = urole;
        id->must_change_password = extra;
    } else {
        id->token_id = row;
        id->role = extra < urole ? extra : urole; /* a demoted user's tokens follow */
    }
    id->method = method;
    rc = 0;
out:
    sqlite3_reset(st);
    pthread_mutex_unlock(&a->lock);
    if (rc == 0) {
        int64_t stored = last;
        if (now - last >= touch_ms) {
            touch_row(a, touch_q, row, now);
            stored = now;
        }
        cache_put(a, h, gen, id, end, now, stored);
    }
    return rc;
}

int auth_identify_session(struct auth *a, const char *secret, int64_t now, struct auth_identity *id)
{
    return identify(a, secret, now, AUTH_SESSION, id);
}

int auth_identify_token(struct auth *a, const char *secret, int64_t now, struct auth_identity *id)
{
    return identify(a, secret, now, AUTH_TOKEN, id);
}

int auth_identify_proxy(struct auth *a, const char *username, const char *role_name, int64_t now,
                        struct auth_identity *id)
{
    int role = role_name ? auth_role_parse(role_name) : -1;
    int rc = -1;
    sqlite3_stmt *st;

    if (!auth_valid_username(username) || (role_name && role < 0))
        return -1;
    pthread_mutex_lock(&a->lock);
    st = prep(a, "INSERT OR IGNORE INTO users (username, role, source, created_ms, updated_ms)"
                 " VALUES (?, ?, 'proxy', ?, ?)");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, role > 0 ? role : ROLE_VIEWER);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    run(st);
    if (role > 0) {
        st = prep(a, "UPDATE users SET role = ?, updated_ms = ? WHERE username = ? AND role <> ?");
        sqlite3_bind_int(st, 1, role);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, username, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, role);
        run(st);
        if (sqlite3_changes(a->db)) {
            pthread_mutex_unlock(&a->lock);
            invalidate(a);
            pthread_mutex_lock(&a->lock);
        }
    }
    st = prep(a, "SELECT id, username, role, disabled FROM users WHERE username = ?");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && !sqlite3_column_int(st, 3)) {
        memset(id, 0, sizeof(*id));
        id->user_id = sqlite3_column_int64(st, 0);
        copy_col(st, 1, id->username, sizeof(id->username));
        id->role = sqlite3_column_int(st, 2);
        id->method = AUTH_PROXY;
        rc = 0;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- login backoff ---- */

static struct fail_entry *fail_slot(struct auth *a, const char *key, int64_t now, int create)
{
    struct fail_entry *oldest = NULL;

    for (size_t i = 0; i < FAIL_SLOTS; i++) {
        struct fail_entry *f = &a->fails[i];
        if (f->key[0] && !strcmp(f->key, key))
            return f;
        if (!oldest || f->last_ms < oldest->last_ms)
            oldest = f;
    }
    if (!create)
        return NULL;
    /* evicting the entry idle longest: an attacker cycling names loses them
     * too, while each address still has its own entry */
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->key, sizeof(oldest->key), "%s", key);
    oldest->last_ms = now;
    return oldest;
}

static void fail_keys(const char *username, const char *source, char *ukey, char *akey, size_t n)
{
    snprintf(ukey, n, "u:%s", username);
    for (char *p = ukey; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(akey, n, "a:%s", source ? source : "");
}

static int64_t wait_left(struct auth *a, const char *key, int64_t now)
{
    struct fail_entry *f = fail_slot(a, key, now, 0);
    return f && f->until_ms > now ? f->until_ms - now : 0;
}

static void record_failure(struct auth *a, const char *key, int64_t now)
{
    struct fail_entry *f = fail_slot(a, key, now, 1);
    /* a quiet spell forgives old failures */
    if (now - f->last_ms > a->cfg.backoff_max_ms * 2)
        f->failures = 0;
    f->failures++;
    f->last_ms = now;
    if (f->failures >= a->cfg.backoff_after) {
        int shift = f->failures - a->cfg.backoff_after;
        int64_t w = a->cfg.backoff_base_ms << (shift > 20 ? 20 : shift);
        f->until_ms = now + (w < a->cfg.backoff_max_ms ? w : a->cfg.backoff_max_ms);
    }
}

static void clear_failures(struct auth *a, const char *key)
{
    struct fail_entry *f = fail_slot(a, key, 0, 0);
    if (f)
        memset(f, 0, sizeof(*f));
}

int auth_login(struct auth *a, const char *username, const char *password, const char *source,
               int64_t now, struct auth_identity *id, int64_t *retry_ms)
{
    char ukey[AUTH_USERNAME_MAX + 72], akey[AUTH_USERNAME_MAX + 72];
    char hash[crypto_pwhash_STRBYTES] = "";
    int64_t uid = 0;
    int role = 0, disabled = 0, must = 0;

    fail_keys(username, source, ukey, akey, sizeof(ukey));
    pthread_mutex_lock(&a->fail_lock);
    int64_t w1 = wait_left(a, ukey, now), w2 = wait_left(a, akey, now);
    pthread_mutex_unlock(&a->fail_lock);
    *retry_ms = w1 > w2 ? w1 : w2;
    if (*retry_ms > 0)
        return LOGIN_WAIT;
    if (sem_trywait(&a->login_slots) < 0) {
        *retry_ms = 1000;
        return LOGIN_BUSY;
    }
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT id, username, pwhash, role, disabled, must_change FROM"
                               " users WHERE username = ?");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 2)) {
        uid = sqlite3_column_int64(st, 0);
        memset(id, 0, sizeof(*id));
        copy_col(st, 1, id->username, sizeof(id->username));
        copy_col(st, 2, hash, sizeof(hash));
        role = sqlite3_column_int(st, 3);
        disabled = sqlite3_column_int(st, 4);
        must = sqlite3_column_int(st, 5);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    /* the same work whether or not the user exists */
    int good = crypto_pwhash_str_verify(uid ? hash : a->dummy_hash, password, strlen(password)) == 0;
    sem_post(&a->login_slots);
    sodium_memzero(hash, sizeof(hash));
    if (!good || !uid || disabled) {
        pthread_mutex_lock(&a->fail_lock);
        record_failure(a, ukey, now);
        record_failure(a, akey, now);
        pthread_mutex_unlock(&a->fail_lock);
        return good && disabled ? LOGIN_DISABLED : LOGIN_FAILED;
    }
    pthread_mutex_lock(&a->fail_lock);
    clear_failures(a, ukey);
    clear_failures(a, akey);
    pthread_mutex_unlock(&a->fail_lock);
    id->user_id = uid;
    id->role = role;
    id->must_change_password = must;
    id->method = AUTH_SESSION;
    pthread_mutex_lock(&a->lock);
    st = prep(a, "UPDATE users SET last_login_ms = ? WHERE id = ?");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, uid);
    run(st);
    pthread_mutex_unlock(&a->lock);
    return LOGIN_OK;
}

/* ---- sessions ---- */

int auth_session_create(struct auth *a, int64_t user_id, const char *source, const char *ua,
                        int64_t now, char *out, size_t outlen, int64_t *session_id)
{
    unsigned char h[HASH_LEN];
    int rc;

    new_secret("", out, outlen, h);
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "INSERT INTO sessions (user_id, hash, created_ms, last_seen_ms,"
                               " expires_ms, source, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_blob(st, 2, h, HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now + a->cfg.session_max_ms);
    sqlite3_bind_text(st, 6, source ? source : "", -1, SQLITE_TRANSIENT);
    /* a user agent is outside input: keep it short and printable */
    char uab[200];
    snprintf(uab, sizeof(uab), "%s", ua ? ua : "");
    for (char *p = uab; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    sqlite3_bind_text(st, 7, uab, -1, SQLITE_TRANSIENT);
    rc = run(st);
    *session_id = sqlite3_last_insert_rowid(a->db);
    /* sessions past their absolute end are of no use to anyone */
    st = prep(a, "DELETE FROM sessions WHERE expires_ms < ? OR (revoked_ms > 0 AND revoked_ms < ?)");
    sqlite3_bind_int64(st, 1, now - 86400000LL);
    sqlite3_bind_int64(st, 2, now - 86400000LL);
    run(st);
    pthread_mutex_unlock(&a->lock);
    return rc ? -1 : 0;
}

static int revoke(struct auth *a, const char *sql, const char *what, int64_t id, int64_t owner,
                  int64_t now, struct errinfo *err)
{
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, sql);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, owner);
    int rc = run(st);
    int changed = sqlite3_changes(a->db);
    pthread_mutex_unlock(&a->lock);
    invalidate(a);
    if (rc || !changed) {
        errinfo_set(err, 404, "not_found", "id", "no such %s", what);
        return -1;
    }
    return 0;
}

int auth_session_revoke(struct auth *a, int64_t id, int64_t owner, int64_t now, struct errinfo *err)
{
    return revoke(a, "UPDATE sessions SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms = 0"
                     " AND (?3 = 0 OR user_id = ?3)", "session", id, owner, now, err);
}

json_t *auth_sessions_list(struct auth *a, int64_t user_id, int64_t now)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT s.id, u.username, s.created_ms, s.last_seen_ms,"
                               " s.expires_ms, s.source, s.user_agent FROM sessions s"
                               " JOIN users u ON u.id = s.user_id WHERE s.revoked_ms = 0"
                               " AND s.expires_ms > ? AND s.last_seen_ms > ?"
                               " AND (? = 0 OR s.user_id = ?) ORDER BY s.id");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now - a->cfg.session_idle_ms);
    sqlite3_bind_int64(st, 3, user_id);
    sqlite3_bind_int64(st, 4, user_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t last = sqlite3_column_int64(st, 3), end = sqlite3_column_int64(st, 4);
        int64_t idle_end = last + a->cfg.session_idle_ms;
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:s}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "username",
                           (const char *)sqlite3_column_text(st, 1), "created_ms",
                           (json_int_t)sqlite3_column_int64(st, 2), "last_seen_ms", (json_int_t)last,
                           "expires_ms", (json_int_t)(idle_end < end ? idle_end : end), "source",
                           (const char *)sqlite3_column_text(st, 5), "user_agent",
                           (const char *)sqlite3_column_text(st, 6)));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return arr;
}

/* ---- API tokens ---- */

static int valid_token_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-: ", s[i]))
            return 0;
    return 1;
}

int auth_token_create(struct auth *a, int64_t user_id, int creator_role, const char *name, int role,
                      int64_t expires_ms, int64_t now, char *out, size_t outlen, int64_t *token_id,
                      struct errinfo *err)
{
    unsigned char h[HASH_LEN];
    char prefix[16];

    if (!valid_token_name(name)) {
        errinfo_set(err, 400, "invalid_field", "name",
                "name must be 1-64 of letters, digits, space, '.', '_', '-', ':'");
        return -1;
    }
    if (role < ROLE_VIEWER || role > creator_role) {
        errinfo_set(err, 400, "invalid_field", "role", "role must be a role no higher than yours (%s)",
                auth_role_name(creator_role));
        return -1;
    }
    if (expires_ms <= now || expires_ms - now > a->cfg.token_max_ms) {
        errinfo_set(err, 400, "invalid_field", "expires_in",
                "expiry must be in the future and at most %lld days away",
                (long long)(a->cfg.token_max_ms / 86400000));
        return -1;
    }
    new_secret("gft_", out, outlen, h);
    snprintf(prefix, sizeof(prefix), "%.8s", out);
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "INSERT INTO api_tokens (user_id, name, role, hash, prefix,"
                               " created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, role);
    sqlite3_bind_blob(st, 4, h, HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, prefix, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, expires_ms);
    int rc = run(st);
    *token_id = sqlite3_last_insert_rowid(a->db);
    pthread_mutex_unlock(&a->lock);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        errinfo_set(err, 409, "conflict", "name", "you already have a token named '%s'", name);
        return -1;
    }
    if (rc) {
        errinfo_set(err, 500, "internal", NULL, "cannot store the token");
        return -1;
    }
    return 0;
}

json_t *auth_tokens_list(struct auth *a, int64_t user_id, int64_t now)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT t.id, u.username, t.name, t.role, t.prefix, t.created_ms,"
                               " t.expires_ms, t.last_used_ms FROM api_tokens t JOIN users u ON"
                               " u.id = t.user_id WHERE t.revoked_ms = 0 AND t.expires_ms > ?"
                               " AND (? = 0 OR t.user_id = ?) ORDER BY t.id");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, user_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "username",
                           (const char *)sqlite3_column_text(st, 1), "name",
                           (const char *)sqlite3_column_text(st, 2), "role",
                           auth_role_name(sqlite3_column_int(st, 3)), "prefix",
                           (const char *)sqlite3_column_text(st, 4), "created_ms",
                           (json_int_t)sqlite3_column_int64(st, 5), "expires_ms",
                           (json_int_t)sqlite3_column_int64(st, 6), "last_used_ms",
                           (json_int_t)sqlite3_column_int64(st, 7)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return arr;
}

int auth_token_revoke(struct auth *a, int64_t id, int64_t owner, int64_t now, struct errinfo *err)
{
    return revoke(a, "UPDATE api_tokens SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms = 0"
                     " AND (?3 = 0 OR user_id = ?3)", "token", id, owner, now, err);
}

/* ---- users ---- */

static json_t *user_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:b, s:s, s:I, s:I, s:I}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "username",
                     (const char *)sqlite3_column_text(st, 1), "role",
                     auth_role_name(sqlite3_column_int(st, 2)), "disabled",
                     sqlite3_column_int(st, 3), "must_change_password", sqlite3_column_int(st, 4),
                     "source", (const char *)sqlite3_column_text(st, 5), "created_ms",
                     (json_int_t)sqlite3_column_int64(st, 6), "updated_ms",
                     (json_int_t)sqlite3_column_int64(st, 7), "last_login_ms",
                     (json_int_t)sqlite3_column_int64(st, 8));
}

#define USER_COLS "id, username, role, disabled, must_change, source, created_ms, updated_ms, last_login_ms"

json_t *auth_users_list(struct auth *a)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT " USER_COLS " FROM users ORDER BY id");
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, user_json(st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return arr;
}

json_t *auth_user_get(struct auth *a, int64_t id, struct errinfo *err)
{
    json_t *u = NULL;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT " USER_COLS " FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        u = user_json(st);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!u)
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)id);
    return u;
}

int64_t auth_user_id(struct auth *a, const char *username)
{
    int64_t id = 0;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT id FROM users WHERE username = ?");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return id;
}

int64_t auth_user_count(struct auth *a)
{
    int64_t n = 0;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT count(*) FROM users");
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return n;
}

int auth_user_create(struct auth *a, const char *username, const char *password, int role,
                     int must_change, int64_t now, int64_t *id, struct errinfo *err)
{
    char why[128], hash[crypto_pwhash_STRBYTES];

    if (!auth_valid_username(username)) {
        errinfo_set(err, 400, "invalid_field", "username",
                "username must be 1-%d of letters, digits, '.', '_', '@', '-', starting with a"
                " letter or digit", AUTH_USERNAME_MAX);
        return -1;
    }
    if (role < ROLE_VIEWER || role > ROLE_ADMIN) {
        errinfo_set(err, 400, "invalid_field", "role", "role must be admin, operator, user or viewer");
        return -1;
    }
    if (auth_password_policy(username, password, a->cfg.min_password_len, why, sizeof(why)) < 0) {
        errinfo_set(err, 400, "invalid_field", "password", "password: %s", why);
        return -1;
    }
    if (hash_password(password, hash) < 0) {
        errinfo_set(err, 500, "internal", NULL, "cannot hash the password");
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "INSERT INTO users (username, pwhash, role, must_change,"
                               " created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, role);
    sqlite3_bind_int(st, 4, must_change);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now);
    int rc = run(st);
    *id = sqlite3_last_insert_rowid(a->db);
    pthread_mutex_unlock(&a->lock);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        errinfo_set(err, 409, "conflict", "username", "a user named '%s' exists", username);
        return -1;
    }
    if (rc) {
        errinfo_set(err, 500, "internal", NULL, "cannot store the user");
        return -1;
    }
    return 0;
}

json_t *auth_user_create_json(struct auth *a, const json_t *body, int64_t now, struct errinfo *err)
{
    const char *u = json_string_value(json_object_get(body, "username"));
    const char *p = json_string_value(json_object_get(body, "password"));
    const char *r = json_string_value(json_object_get(body, "role"));
    int64_t id;

    if (!u) {
        errinfo_set(err, 400, "invalid_field", "username", "username is required (a string)");
        return NULL;
    }
    if (!p) {
        errinfo_set(err, 400, "invalid_field", "password", "password is required (a string)");
        return NULL;
    }
    int role = r ? auth_role_parse(r) : ROLE_VIEWER;
    if (role < 0) {
        errinfo_set(err, 400, "invalid_field", "role", "role must be admin, operator, user or viewer");
        return NULL;
    }
    int must = json_is_true(json_object_get(body, "must_change_password"));
    if (auth_user_create(a, u, p, role, must, now, &id, err) < 0)
        return NULL;
    return auth_user_get(a, id, err);
}

/* Enabled admins other than id. Called with the lock held. */
static int64_t other_admins(struct auth *a, int64_t id)
{
    int64_t n = 0;
    sqlite3_stmt *st = prep(a, "SELECT count(*) FROM users WHERE role = 4 AND disabled = 0 AND id <> ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int end_sessions(struct auth *a, int64_t user_id, int64_t keep, int64_t now)
{
    sqlite3_stmt *st = prep(a, "UPDATE sessions SET revoked_ms = ? WHERE user_id = ? AND id <> ?"
                               " AND revoked_ms = 0");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, keep);
    return run(st);
}

int auth_user_set_disabled(struct auth *a, int64_t id, int disabled, int64_t now, struct errinfo *err)
{
    int rc = -1;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT role FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    int role = found ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (!found) {
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)id);
        goto out;
    }
    if (disabled && role == ROLE_ADMIN && !other_admins(a, id)) {
        errinfo_set(err, 409, "conflict", "disabled", "this is the last enabled admin");
        goto out;
    }
    st = prep(a, "UPDATE users SET disabled = ?, updated_ms = ? WHERE id = ?");
    sqlite3_bind_int(st, 1, disabled);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, id);
    rc = run(st) ? -1 : 0;
    if (disabled)
        end_sessions(a, id, 0, now);
out:
    pthread_mutex_unlock(&a->lock);
    invalidate(a);
    return rc;
}

int auth_set_password(struct auth *a, int64_t user_id, const char *password, int must_change,
                      int64_t keep_session, int64_t now, struct errinfo *err)
{
    char why[128], hash[crypto_pwhash_STRBYTES], name[AUTH_USERNAME_MAX + 1] = "";
    int rc = -1;

    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT username FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, user_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        copy_col(st, 0, name, sizeof(name));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!*name) {
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)user_id);
        return -1;
    }
    if (auth_password_policy(name, password, a->cfg.min_password_len, why, sizeof(why)) < 0) {
        errinfo_set(err, 400, "invalid_field", "password", "password: %s", why);
        return -1;
    }
    if (hash_password(password, hash) < 0) {
        errinfo_set(err, 500, "internal", NULL, "cannot hash the password");
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    st = prep(a, "UPDATE users SET pwhash = ?, must_change = ?, updated_ms = ? WHERE id = ?");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, must_change);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, user_id);
    if (run(st) == 0 && end_sessions(a, user_id, keep_session, now) == 0)
        rc = 0;
    pthread_mutex_unlock(&a->lock);
    invalidate(a);
    if (rc)
        errinfo_set(err, 500, "internal", NULL, "cannot store the password");
    return rc;
}

int auth_verify_password(struct auth *a, int64_t user_id, const char *password)
{
    char hash[crypto_pwhash_STRBYTES] = "";
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT pwhash FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, user_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        copy_col(st, 0, hash, sizeof(hash));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!*hash)
        return -1;
    if (sem_trywait(&a->login_slots) < 0)
        return -1;
    int rc = crypto_pwhash_str_verify(hash, password, strlen(password));
    sem_post(&a->login_slots);
    return rc == 0 ? 0 : -1;
}

json_t *auth_user_update_json(struct auth *a, int64_t id, const json_t *body, int64_t now,
                              struct errinfo *err)
{
    json_t *v;
    json_t *cur = auth_user_get(a, id, err);

    if (!cur)
        return NULL;
    json_decref(cur);
    if ((v = json_object_get(body, "role"))) {
        int role = auth_role_parse(json_string_value(v));
        if (role < 0) {
            errinfo_set(err, 400, "invalid_field", "role", "role must be admin, operator, user or viewer");
            return NULL;
        }
        pthread_mutex_lock(&a->lock);
        int last = role != ROLE_ADMIN && !other_admins(a, id);
        sqlite3_stmt *st = prep(a, "SELECT role FROM users WHERE id = ?");
        sqlite3_bind_int64(st, 1, id);
        int was_admin = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == ROLE_ADMIN;
        sqlite3_finalize(st);
        if (last && was_admin) {
            pthread_mutex_unlock(&a->lock);
            errinfo_set(err, 409, "conflict", "role", "this is the last enabled admin");
            return NULL;
        }
        st = prep(a, "UPDATE users SET role = ?, updated_ms = ? WHERE id = ?");
        sqlite3_bind_int(st, 1, role);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, id);
        run(st);
        pthread_mutex_unlock(&a->lock);
        invalidate(a);
    }
    if ((v = json_object_get(body, "password"))) {
        if (!json_is_string(v)) {
            errinfo_set(err, 400, "invalid_field", "password", "password must be a string");
            return NULL;
        }
        int must = json_is_true(json_object_get(body, "must_change_password"));
        if (auth_set_password(a, id, json_string_value(v), must, 0, now, err) < 0)
            return NULL;
    }
    if ((v = json_object_get(body, "disabled"))) {
        if (!json_is_boolean(v)) {
            errinfo_set(err, 400, "invalid_field", "disabled", "disabled must be true or false");
            return NULL;
        }
        if (auth_user_set_disabled(a, id, json_is_true(v), now, err) < 0)
            return NULL;
    }
    return auth_user_get(a, id, err);
}

int auth_user_delete(struct auth *a, int64_t id, struct errinfo *err)
{
    int rc = -1;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT role, disabled FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    int admin = found && sqlite3_column_int(st, 0) == ROLE_ADMIN && !sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    if (!found) {
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)id);
        goto out;
    }
    if (admin && !other_admins(a, id)) {
        errinfo_set(err, 409, "conflict", "id", "this is the last enabled admin");
        goto out;
    }
    st = prep(a, "DELETE FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    rc = run(st) ? -1 : 0;
out:
    pthread_mutex_unlock(&a->lock);
    invalidate(a);
    return rc;
}
