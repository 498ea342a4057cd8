/* Logins, with per-user and per-address backoff after failures. */
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

/* Whether a password may be tried now for these keys: LOGIN_WAIT while
 * either is backing off, LOGIN_BUSY when every hashing slot is taken (the
 * hash is what an attacker would make us spend); 0 with a slot held, which
 * the caller gives back with sem_post after the verify. */
static int login_gate(struct auth *a, const char *ukey, const char *akey, int64_t now, int64_t *retry_ms)
{
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
    return 0;
}

int auth_signup(struct auth *a, const char *username, const char *password, const char *source, int64_t now,
                int64_t *retry_ms, struct errinfo *err)
{
    char key[AUTH_USERNAME_MAX + 72];
    int64_t id;

    snprintf(key, sizeof(key), "s:%s", source ? source : "");
    pthread_mutex_lock(&a->fail_lock);
    *retry_ms = wait_left(a, key, now);
    if (*retry_ms <= 0)
        record_failure(a, key, now); /* every sign-up counts: one address makes few */
    pthread_mutex_unlock(&a->fail_lock);
    if (*retry_ms > 0) {
        errinfo_set(err, 429, "too_many_attempts", NULL, "too many sign-ups from this address; try again later");
        return -1;
    }
    if (sem_trywait(&a->login_slots) < 0) {
        *retry_ms = 1000;
        errinfo_set(err, 503, "busy", NULL, "too many sign-ups and logins at once; try again in a second");
        return -1;
    }
    int rc = auth_user_insert(a, username, password, ROLE_USER, 0, 1, now, &id, err);
    sem_post(&a->login_slots);
    return rc;
}

int auth_login(struct auth *a, const char *username, const char *password, const char *source,
               int64_t now, struct auth_identity *id, int64_t *retry_ms)
{
    char ukey[AUTH_USERNAME_MAX + 72], akey[AUTH_USERNAME_MAX + 72];
    char hash[crypto_pwhash_STRBYTES] = "";
    int64_t uid = 0;
    int role = 0, disabled = 0, must = 0;

    fail_keys(username, source, ukey, akey, sizeof(ukey));
    int gate = login_gate(a, ukey, akey, now, retry_ms);
    if (gate)
        return gate;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT id, username, pwhash, role, disabled, must_change FROM"
                               " users WHERE username = ?");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 2)) {
        uid = sqlite3_column_int64(st, 0);
        memset(id, 0, sizeof(*id));
        auth_db_text(st, 1, id->username, sizeof(id->username));
        auth_db_text(st, 2, hash, sizeof(hash));
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
    st = auth_db_prep(a, "UPDATE users SET last_login_ms = ? WHERE id = ?");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, uid);
    auth_db_run(st);
    pthread_mutex_unlock(&a->lock);
    return LOGIN_OK;
}

int auth_recheck_password(struct auth *a, int64_t user_id, const char *password,
                          const char *source, int64_t now, int64_t *retry_ms)
{
    char ukey[AUTH_USERNAME_MAX + 72], akey[AUTH_USERNAME_MAX + 72];
    char name[AUTH_USERNAME_MAX + 1] = "", hash[crypto_pwhash_STRBYTES] = "";

    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT username, pwhash FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, user_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        auth_db_text(st, 0, name, sizeof(name));
        auth_db_text(st, 1, hash, sizeof(hash));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    /* the same keys as a login of this user from this address: guesses
     * through a stolen session wait as guesses at the sign-in page do */
    fail_keys(name, source, ukey, akey, sizeof(ukey));
    int gate = login_gate(a, ukey, akey, now, retry_ms);
    if (gate)
        return gate;
    int good = crypto_pwhash_str_verify(*hash ? hash : a->dummy_hash, password, strlen(password)) == 0;
    sem_post(&a->login_slots);
    sodium_memzero(hash, sizeof(hash));
    pthread_mutex_lock(&a->fail_lock);
    if (good && *name) {
        clear_failures(a, ukey);
        clear_failures(a, akey);
    } else {
        record_failure(a, ukey, now);
        record_failure(a, akey, now);
    }
    pthread_mutex_unlock(&a->fail_lock);
    return good && *name ? LOGIN_OK : LOGIN_FAILED;
}
