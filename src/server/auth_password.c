/* Passwords: the policy, argon2id hashes, setting and verifying them. */
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

void auth_random_password(char *out, size_t outlen)
{
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    size_t n = outlen - 1 < 24 ? outlen - 1 : 24;
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    out[n] = '\0';
}

int auth_hash_password(const char *pw, char out[crypto_pwhash_STRBYTES])
{
    /* argon2id, 2 passes over 64 MiB (libsodium's INTERACTIVE): ~0.1 s */
    return crypto_pwhash_str_alg(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
}

int auth_password_hash_new(struct auth *a, const char *username, const char *password,
                           char hash[crypto_pwhash_STRBYTES], struct errinfo *err)
{
    char why[128];
    if (auth_password_policy(username, password, a->cfg.min_password_len, why, sizeof(why)) < 0) {
        errinfo_set(err, 400, "invalid_field", "password", "password: %s", why);
        return -1;
    }
    if (auth_hash_password(password, hash) < 0) {
        errinfo_set(err, 500, "internal", NULL, "cannot hash the password");
        return -1;
    }
    return 0;
}

int auth_set_password(struct auth *a, int64_t user_id, const char *password, int must_change,
                      int64_t keep_session, int64_t now, struct errinfo *err)
{
    char hash[crypto_pwhash_STRBYTES], name[AUTH_USERNAME_MAX + 1] = "";
    int rc = -1;

    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT username FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, user_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        auth_db_text(st, 0, name, sizeof(name));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!*name) {
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)user_id);
        return -1;
    }
    if (auth_password_hash_new(a, name, password, hash, err) < 0)
        return -1;
    pthread_mutex_lock(&a->lock);
    st = auth_db_prep(a, "UPDATE users SET pwhash = ?, must_change = ?, updated_ms = ? WHERE id = ?");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, must_change);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, user_id);
    if (auth_db_run(st) == 0 && auth_end_sessions(a, user_id, keep_session, now) == 0)
        rc = 0;
    pthread_mutex_unlock(&a->lock);
    auth_invalidate(a);
    if (rc)
        errinfo_set(err, 500, "internal", NULL, "cannot store the password");
    return rc;
}

