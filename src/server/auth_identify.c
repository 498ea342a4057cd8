/* Who a request is: sessions and API tokens checked against the database
 * once, then from a cache of what it vouched for; users named by a trusted
 * proxy. */
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

static int64_t touch_every(const struct auth *a)
{
    int64_t q = a->cfg.session_idle_ms / 4;
    return q < 60000 ? q : 60000;
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
        auth_invalidate(a);
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

    auth_hash_secret(secret, h);
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
    auth_db_text(st, 4, id->username, sizeof(id->username));
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

/* A role a proxy names: ours, or the roles SSO proxies in front of GPU
 * fleets commonly send (admin, readwrite, readonly). */
static int proxy_role(const char *s)
{
    if (!strcmp(s, "readwrite"))
        return ROLE_OPERATOR;
    if (!strcmp(s, "readonly"))
        return ROLE_VIEWER;
    return auth_role_parse(s);
}

int auth_identify_proxy(struct auth *a, const char *username, const char *role_name, int64_t now,
                        struct auth_identity *id)
{
    int role = role_name ? proxy_role(role_name) : -1;
    int rc = -1;
    sqlite3_stmt *st;

    if (!auth_valid_username(username) || (role_name && role < 0))
        return -1;
    pthread_mutex_lock(&a->lock);
    st = auth_db_prep(a, "INSERT OR IGNORE INTO users (username, role, source, created_ms, updated_ms)"
                 " VALUES (?, ?, 'proxy', ?, ?)");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, role > 0 ? role : ROLE_VIEWER);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    auth_db_run(st);
    if (role > 0) {
        st = auth_db_prep(a, "UPDATE users SET role = ?, updated_ms = ? WHERE username = ? AND role <> ?");
        sqlite3_bind_int(st, 1, role);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, username, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, role);
        auth_db_run(st);
        if (sqlite3_changes(a->db)) {
            pthread_mutex_unlock(&a->lock);
            auth_invalidate(a);
            pthread_mutex_lock(&a->lock);
        }
    }
    st = auth_db_prep(a, "SELECT id, username, role, disabled FROM users WHERE username = ?");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && !sqlite3_column_int(st, 3)) {
        memset(id, 0, sizeof(*id));
        id->user_id = sqlite3_column_int64(st, 0);
        auth_db_text(st, 1, id->username, sizeof(id->username));
        id->role = sqlite3_column_int(st, 2);
        id->method = AUTH_PROXY;
        rc = 0;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int auth_still_valid(struct auth *a, const struct auth_identity *id, int64_t now, uint64_t *gen)
{
    poll_other_writers(a, now); /* `gpufleet user disable` at the shell too */
    uint64_t g = generation(a);
    if (g == *gen)
        return 1;
    const char *sql = id->method == AUTH_SESSION
                          ? "SELECT s.expires_ms FROM sessions s JOIN users u ON u.id = s.user_id"
                            " WHERE s.id = ?1 AND s.revoked_ms = 0 AND u.disabled = 0"
                          : id->method == AUTH_TOKEN
                                ? "SELECT t.expires_ms FROM api_tokens t JOIN users u ON u.id = t.user_id"
                                  " WHERE t.id = ?1 AND t.revoked_ms = 0 AND u.disabled = 0"
                                : "SELECT 9223372036854775807 FROM users WHERE id = ?1 AND disabled = 0";
    int64_t key = id->method == AUTH_SESSION ? id->session_id
                  : id->method == AUTH_TOKEN ? id->token_id
                                             : id->user_id;
    int ok = 0;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, sql);
    sqlite3_bind_int64(st, 1, key);
    if (sqlite3_step(st) == SQLITE_ROW)
        ok = sqlite3_column_int64(st, 0) > now;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (ok)
        *gen = g;
    return ok;
}
