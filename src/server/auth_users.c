/* Users: create, list, change role, disable, delete; never the last admin. */
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

#define USER_COLS "id, username, role, disabled, must_change, source, created_ms, updated_ms, last_login_ms, pending"

static json_t *user_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:b, s:s, s:I, s:I, s:I, s:b}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "username",
                     (const char *)sqlite3_column_text(st, 1), "role",
                     auth_role_name(sqlite3_column_int(st, 2)), "disabled",
                     sqlite3_column_int(st, 3), "must_change_password", sqlite3_column_int(st, 4),
                     "source", (const char *)sqlite3_column_text(st, 5), "created_ms",
                     (json_int_t)sqlite3_column_int64(st, 6), "updated_ms",
                     (json_int_t)sqlite3_column_int64(st, 7), "last_login_ms",
                     (json_int_t)sqlite3_column_int64(st, 8), "pending", sqlite3_column_int(st, 9));
}

json_t *auth_users_list(struct auth *a)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT " USER_COLS " FROM users ORDER BY id");
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
    sqlite3_stmt *st = auth_db_prep(a, "SELECT " USER_COLS " FROM users WHERE id = ?");
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
    sqlite3_stmt *st = auth_db_prep(a, "SELECT id FROM users WHERE username = ?");
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
    sqlite3_stmt *st = auth_db_prep(a, "SELECT count(*) FROM users");
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return n;
}

int auth_user_create(struct auth *a, const char *username, const char *password, int role,
                     int must_change, int64_t now, int64_t *id, struct errinfo *err)
{
    return auth_user_insert(a, username, password, role, must_change, 0, now, id, err);
}

/* pending: a sign-up, disabled until an admin approves it (in the same
 * row write, so it never exists enabled) */
int auth_user_insert(struct auth *a, const char *username, const char *password, int role,
                     int must_change, int pending, int64_t now, int64_t *id, struct errinfo *err)
{
    char hash[crypto_pwhash_STRBYTES];

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
    if (auth_password_hash_new(a, username, password, hash, err) < 0)
        return -1;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "INSERT INTO users (username, pwhash, role, must_change,"
                               " created_ms, updated_ms, disabled, pending) VALUES (?, ?, ?, ?, ?, ?, ?7, ?7)");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, role);
    sqlite3_bind_int(st, 4, must_change);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int(st, 7, pending);
    int rc = auth_db_run(st);
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
    sqlite3_stmt *st = auth_db_prep(a, "SELECT count(*) FROM users WHERE role = 4 AND disabled = 0 AND id <> ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int auth_end_sessions(struct auth *a, int64_t user_id, int64_t keep, int64_t now)
{
    sqlite3_stmt *st = auth_db_prep(a, "UPDATE sessions SET revoked_ms = ? WHERE user_id = ? AND id <> ?"
                               " AND revoked_ms = 0");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, keep);
    return auth_db_run(st);
}

int auth_user_set_disabled(struct auth *a, int64_t id, int disabled, int64_t now, struct errinfo *err)
{
    int rc = -1;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT role FROM users WHERE id = ?");
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
    st = auth_db_prep(a, "UPDATE users SET disabled = ?, updated_ms = ? WHERE id = ?");
    sqlite3_bind_int(st, 1, disabled);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, id);
    rc = auth_db_run(st) ? -1 : 0;
    if (disabled)
        auth_end_sessions(a, id, 0, now);
out:
    pthread_mutex_unlock(&a->lock);
    auth_invalidate(a);
    return rc;
}

/* A user update's fields, checked before anything is written. */
struct user_change {
    int role;         /* -1: unchanged */
    int disabled;     /* -1: unchanged */
    int has_password, must_change;
    char hash[crypto_pwhash_STRBYTES];
};

static int read_change(struct auth *a, int64_t id, const json_t *body, struct user_change *c,
                       struct errinfo *err)
{
    json_t *v;
    char name[AUTH_USERNAME_MAX + 1] = "";

    memset(c, 0, sizeof(*c));
    c->role = c->disabled = -1;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT username FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        auth_db_text(st, 0, name, sizeof(name));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!*name) {
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)id);
        return -1;
    }
    if ((v = json_object_get(body, "role")) && (c->role = auth_role_parse(json_string_value(v))) < 0) {
        errinfo_set(err, 400, "invalid_field", "role", "role must be admin, operator, user or viewer");
        return -1;
    }
    if ((v = json_object_get(body, "disabled"))) {
        if (!json_is_boolean(v)) {
            errinfo_set(err, 400, "invalid_field", "disabled", "disabled must be true or false");
            return -1;
        }
        c->disabled = json_is_true(v);
    }
    if ((v = json_object_get(body, "password"))) {
        if (!json_is_string(v)) {
            errinfo_set(err, 400, "invalid_field", "password", "password must be a string");
            return -1;
        }
        if (auth_password_hash_new(a, name, json_string_value(v), c->hash, err) < 0)
            return -1;
        c->has_password = 1;
        c->must_change = json_is_true(json_object_get(body, "must_change_password"));
    }
    return 0;
}

/* Writes a checked change in one transaction (lock held): all of it or,
 * when it would leave no enabled admin, none. */
static int apply_change(struct auth *a, int64_t id, const struct user_change *c, int64_t now,
                        struct errinfo *err)
{
    sqlite3_stmt *st = auth_db_prep(a, "SELECT role, disabled FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    int role = found ? sqlite3_column_int(st, 0) : 0, disabled = found ? sqlite3_column_int(st, 1) : 0;
    sqlite3_finalize(st);
    if (!found) {
        errinfo_set(err, 404, "not_found", "id", "no user with id %lld", (long long)id);
        return -1;
    }
    int admin_after = (c->role >= 0 ? c->role : role) == ROLE_ADMIN &&
                      !(c->disabled >= 0 ? c->disabled : disabled);
    if (role == ROLE_ADMIN && !disabled && !admin_after && !other_admins(a, id)) {
        errinfo_set(err, 409, "conflict", c->role >= 0 && c->role != ROLE_ADMIN ? "role" : "disabled",
                    "this is the last enabled admin");
        return -1;
    }
    if (db_exec(a->db, "BEGIN IMMEDIATE") < 0) {
        errinfo_set(err, 500, "internal", NULL, "cannot write the user");
        return -1;
    }
    /* enabling a sign-up approves it */
    st = auth_db_prep(a, "UPDATE users SET role = coalesce(?1, role), disabled = coalesce(?2, disabled),"
                         " pending = CASE WHEN ?2 = 0 THEN 0 ELSE pending END,"
                         " pwhash = coalesce(?3, pwhash),"
                         " must_change = CASE WHEN ?3 IS NULL THEN must_change ELSE ?4 END,"
                         " updated_ms = ?5 WHERE id = ?6");
    if (c->role >= 0)
        sqlite3_bind_int(st, 1, c->role);
    if (c->disabled >= 0)
        sqlite3_bind_int(st, 2, c->disabled);
    if (c->has_password)
        sqlite3_bind_text(st, 3, c->hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, c->must_change);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, id);
    int rc = auth_db_run(st);
    /* a disabled user and a changed password end the user's sessions */
    if (rc == 0 && (c->disabled == 1 || c->has_password))
        rc = auth_end_sessions(a, id, 0, now);
    if (rc != 0 || db_exec(a->db, "COMMIT") < 0) {
        db_exec(a->db, "ROLLBACK");
        errinfo_set(err, 500, "internal", NULL, "cannot write the user");
        return -1;
    }
    return 0;
}

json_t *auth_user_update_json(struct auth *a, int64_t id, const json_t *body, int64_t now,
                              struct errinfo *err)
{
    struct user_change c;

    if (read_change(a, id, body, &c, err) < 0)
        return NULL;
    pthread_mutex_lock(&a->lock);
    int rc = apply_change(a, id, &c, now, err);
    pthread_mutex_unlock(&a->lock);
    sodium_memzero(c.hash, sizeof(c.hash));
    auth_invalidate(a);
    return rc < 0 ? NULL : auth_user_get(a, id, err);
}

int auth_user_delete(struct auth *a, int64_t id, struct errinfo *err)
{
    int rc = -1;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = auth_db_prep(a, "SELECT role, disabled FROM users WHERE id = ?");
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
    st = auth_db_prep(a, "DELETE FROM users WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    rc = auth_db_run(st) ? -1 : 0;
out:
    pthread_mutex_unlock(&a->lock);
    auth_invalidate(a);
    return rc;
}
