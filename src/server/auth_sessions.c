/* Login sessions and API tokens: created with a secret shown once, listed,
 * revoked. */
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

int auth_session_create(struct auth *a, int64_t user_id, const char *source, const char *ua,
                        int64_t now, char *out, size_t outlen, int64_t *session_id)
{
    unsigned char h[HASH_LEN];
    int rc;

    auth_new_secret("", out, outlen, h);
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "INSERT INTO sessions (user_id, hash, created_ms, last_seen_ms,"
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
    rc = auth_db_run(st);
    *session_id = sqlite3_last_insert_rowid(a->db);
    /* sessions past their absolute end are of no use to anyone */
    st = auth_db_prep(a, "DELETE FROM sessions WHERE expires_ms < ? OR (revoked_ms > 0 AND revoked_ms < ?)");
    sqlite3_bind_int64(st, 1, now - 86400000LL);
    sqlite3_bind_int64(st, 2, now - 86400000LL);
    auth_db_run(st);
    pthread_mutex_unlock(&a->lock);
    return rc ? -1 : 0;
}

int auth_revoke(struct auth *a, const char *sql, const char *what, int64_t id, int64_t owner,
                  int64_t now, struct errinfo *err)
{
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, sql);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, owner);
    int rc = auth_db_run(st);
    int changed = sqlite3_changes(a->db);
    pthread_mutex_unlock(&a->lock);
    auth_invalidate(a);
    if (rc || !changed) {
        errinfo_set(err, 404, "not_found", "id", "no such %s", what);
        return -1;
    }
    return 0;
}

int auth_session_revoke(struct auth *a, int64_t id, int64_t owner, int64_t now, struct errinfo *err)
{
    return auth_revoke(a, "UPDATE sessions SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms = 0"
                     " AND (?3 = 0 OR user_id = ?3)", "session", id, owner, now, err);
}

json_t *auth_sessions_list(struct auth *a, int64_t user_id, int64_t now)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT s.id, u.username, s.created_ms, s.last_seen_ms,"
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
    auth_new_secret("gft_", out, outlen, h);
    snprintf(prefix, sizeof(prefix), "%.8s", out);
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "INSERT INTO api_tokens (user_id, name, role, hash, prefix,"
                               " created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, role);
    sqlite3_bind_blob(st, 4, h, HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, prefix, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, expires_ms);
    int rc = auth_db_run(st);
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
    sqlite3_stmt *st = auth_db_prep(a, "SELECT t.id, u.username, t.name, t.role, t.prefix, t.created_ms,"
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
    return auth_revoke(a, "UPDATE api_tokens SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms = 0"
                     " AND (?3 = 0 OR user_id = ?3)", "token", id, owner, now, err);
}
