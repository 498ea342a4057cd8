/* What the files of the auth module share (auth.c, auth_identify.c,
 * auth_login.c, auth_password.c, auth_sessions.c, auth_users.c). Not for
 * other modules: auth.h is the interface. */
#ifndef GF_AUTH_IMPL_H
#define GF_AUTH_IMPL_H

#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>

#include "auth.h"

#define HASH_LEN 32
#define FAIL_SLOTS 1024
#define CACHE_SLOTS 4096 /* credentials checked recently: a direct-mapped table */
#define POLL_MS 1000     /* how often changes by other processes are looked for */

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

/* Runs a statement that returns no rows and finalizes it; 0, or the SQLite
 * error code. */
int auth_db_run(sqlite3_stmt *st);
/* Prepares sql on the auth database (logged on failure). */
sqlite3_stmt *auth_db_prep(struct auth *a, const char *sql);
/* Copies a text column ("" for NULL). */
void auth_db_text(sqlite3_stmt *st, int col, char *out, size_t outlen);

/* Forgets every cached credential: called after any change that could end
 * one (revocation, a disabled or deleted user, a new role). */
void auth_invalidate(struct auth *a);

/* A new random secret with prefix, and its hash (the only form stored). */
void auth_new_secret(const char *prefix, char *out, size_t outlen, unsigned char hash[HASH_LEN]);
void auth_hash_secret(const char *s, unsigned char hash[HASH_LEN]);
/* argon2id of a password, as libsodium encodes it. 0 or -1. */
int auth_hash_password(const char *pw, char out[crypto_pwhash_STRBYTES]);

/* Checks a new password against the policy and hashes it; 0, or -1 with
 * err naming "password". */
int auth_password_hash_new(struct auth *a, const char *username, const char *password,
                           char hash[crypto_pwhash_STRBYTES], struct errinfo *err);

/* Revokes the session or token row of sql (?1 now, ?2 id, ?3 owner or 0). */
int auth_revoke(struct auth *a, const char *sql, const char *what, int64_t id, int64_t owner,
                int64_t now, struct errinfo *err);
/* Ends a user's sessions but keep (0: all). Lock held. */
int auth_end_sessions(struct auth *a, int64_t user_id, int64_t keep, int64_t now);

#endif
