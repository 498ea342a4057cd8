/* Who may do what: users with roles, login sessions, API tokens, failed-login
 * backoff and the first admin, kept in DATA/auth.db. Passwords are argon2id
 * (libsodium); session and API tokens are random 256-bit strings of which
 * only a BLAKE2b hash is stored. Any thread; one lock inside. */
#ifndef GF_AUTH_H
#define GF_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/errinfo.h"

enum auth_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_USER = 2, ROLE_OPERATOR = 3, ROLE_ADMIN = 4 };

enum auth_method { AUTH_ANON = 0, AUTH_SESSION, AUTH_TOKEN, AUTH_PROXY };

#define AUTH_USERNAME_MAX 64
#define AUTH_PASSWORD_MAX 256
#define AUTH_SECRET_MAX 128 /* longest session or API token accepted */

/* The auth module's part of the server's settings (options.c). */
struct auth_config {
    int64_t session_idle_ms;     /* a session unused this long ends */
    int64_t session_max_ms;      /* and ends this long after login regardless */
    int min_password_len;
    int backoff_after;           /* failed logins before waits start */
    int64_t backoff_base_ms;     /* first wait; doubles with each failure */
    int64_t backoff_max_ms;
    int max_concurrent_logins;   /* password hashes computed at once */
    int64_t token_max_ms;        /* longest API token lifetime */
};

/* The caller of a request, as the authorize hook found it. */
struct auth_identity {
    int64_t user_id;      /* 0: anonymous */
    char username[AUTH_USERNAME_MAX + 1];
    int role;             /* enum auth_role; for a token, min(token, user) */
    int method;           /* enum auth_method */
    int64_t session_id;   /* AUTH_SESSION */
    int64_t token_id;     /* AUTH_TOKEN */
    int must_change_password;
};

struct auth;

/* Opens (creating, migrating) the database at path. NULL with err. */
struct auth *auth_open(const char *path, const struct auth_config *cfg, char *err, size_t errlen);
void auth_close(struct auth *a);

const char *auth_role_name(int role);
/* "admin" ... "viewer" to the enum; -1 when not a role. */
int auth_role_parse(const char *s);
const char *auth_method_name(int method);

/* ---- parsing of outside input (fuzzed) ---- */

/* Copies the value of cookie name from a Cookie header. 0, or -1 when
 * absent, malformed or longer than outlen - 1. */
int auth_cookie_get(const char *header, const char *name, char *out, size_t outlen);

/* Copies the credential of "Bearer CRED" (scheme case-insensitive), or
 * the password of "Basic base64(user:CRED)" (an API token given as a
 * password, as Grafana's data sources can). 0 or -1. */
int auth_bearer_get(const char *header, char *out, size_t outlen);

/* Whether s is a user name: 1-64 of [A-Za-z0-9._@-], starting alphanumeric. */
int auth_valid_username(const char *s);

/* The password policy: min_len..256 bytes, valid UTF-8, not containing the
 * user name (case-insensitive). 0, or -1 with the reason in err. */
int auth_password_policy(const char *username, const char *password, int min_len, char *err,
                         size_t errlen);

/* Reads a login body {"username","password"} into the buffers. 0, or -1
 * with err naming the field. */
int auth_parse_login(const char *body, size_t len, char *username, char *password,
                     struct errinfo *err);

/* ---- identification (the per-request path) ---- */

/* A session cookie value to its identity; touches the session. 0, or -1
 * when unknown, revoked, expired or the user is disabled. */
int auth_identify_session(struct auth *a, const char *secret, int64_t now_ms,
                          struct auth_identity *id);

/* An API token to its identity. 0 or -1 as above. */
int auth_identify_token(struct auth *a, const char *secret, int64_t now_ms,
                        struct auth_identity *id);

/* A user named by a trusted proxy; created (role from role_name, else
 * viewer) when new. role_name, when given, also updates the role. 0 or -1
 * (bad name, disabled user). */
int auth_identify_proxy(struct auth *a, const char *username, const char *role_name,
                        int64_t now_ms, struct auth_identity *id);

/* Whether an identity found earlier still holds: its session or token not
 * revoked or past its end, its user not disabled or deleted. For a long
 * stream (the live WebSocket) that checks about once a second: cheap while
 * nothing changed in auth.db (the credential cache's generation), one read
 * when something did. *gen is the caller's last generation (start at 0). */
int auth_still_valid(struct auth *a, const struct auth_identity *id, int64_t now_ms, uint64_t *gen);

/* ---- login ---- */

enum auth_login_result {
    LOGIN_OK = 0,
    LOGIN_FAILED,   /* wrong user or password: one answer for both */
    LOGIN_WAIT,     /* backoff: *retry_ms says how long */
    LOGIN_BUSY,     /* too many hashes in progress */
    LOGIN_DISABLED, /* reported as LOGIN_FAILED to the client */
};

/* Checks a password with per-user and per-address backoff. On LOGIN_OK
 * fills id. Takes as long as argon2id whether or not the user exists. */
int auth_login(struct auth *a, const char *username, const char *password, const char *source,
               int64_t now_ms, struct auth_identity *id, int64_t *retry_ms);

/* Starts a session; writes its secret (NUL-terminated, 44 bytes) to out. */
int auth_session_create(struct auth *a, int64_t user_id, const char *source,
                        const char *user_agent, int64_t now_ms, char *out, size_t outlen,
                        int64_t *session_id);

/* Revokes a session; owner_id > 0 restricts to that user's sessions.
 * 0, or -1 with err (404). */
int auth_session_revoke(struct auth *a, int64_t id, int64_t owner_id, int64_t now_ms,
                        struct errinfo *err);

/* Live sessions (of user_id, or all when 0). Caller owns the array. */
json_t *auth_sessions_list(struct auth *a, int64_t user_id, int64_t now_ms);

/* ---- API tokens ---- */

/* Creates a token for user_id named name with role (<= creator_role) that
 * expires at expires_ms. Writes the secret (shown once) to out. */
int auth_token_create(struct auth *a, int64_t user_id, int creator_role, const char *name,
                      int role, int64_t expires_ms, int64_t now_ms, char *out, size_t outlen,
                      int64_t *token_id, struct errinfo *err);
json_t *auth_tokens_list(struct auth *a, int64_t user_id, int64_t now_ms);
int auth_token_revoke(struct auth *a, int64_t id, int64_t owner_id, int64_t now_ms,
                      struct errinfo *err);

/* ---- users ---- */

/* Creates a local user. 0 and *id, or -1 with err naming the field. */
/* A sign-up (self_registration): a user-role account, disabled and
 * pending until an admin enables it. Each sign-up from an address counts
 * toward that address's login backoff (429 with retry_ms past it; 503 when
 * every hashing slot is busy). 0, or -1 with err. */
int auth_signup(struct auth *a, const char *username, const char *password, const char *source, int64_t now,
                int64_t *retry_ms, struct errinfo *err);
int auth_user_insert(struct auth *a, const char *username, const char *password, int role,
                     int must_change, int pending, int64_t now, int64_t *id, struct errinfo *err);
int auth_user_create(struct auth *a, const char *username, const char *password, int role,
                     int must_change, int64_t now_ms, int64_t *id, struct errinfo *err);

/* From a JSON body {"username","password","role"}. */
json_t *auth_user_create_json(struct auth *a, const json_t *body, int64_t now_ms,
                              struct errinfo *err);

/* Changes role, disabled and/or password from a JSON body. Refuses to
 * leave no enabled admin. */
json_t *auth_user_update_json(struct auth *a, int64_t id, const json_t *body, int64_t now_ms,
                              struct errinfo *err);

json_t *auth_users_list(struct auth *a);
json_t *auth_user_get(struct auth *a, int64_t id, struct errinfo *err);
int64_t auth_user_id(struct auth *a, const char *username); /* 0 when none */
int auth_user_delete(struct auth *a, int64_t id, struct errinfo *err);
int auth_user_set_disabled(struct auth *a, int64_t id, int disabled, int64_t now_ms,
                           struct errinfo *err);

/* Sets a password (policy checked); ends the user's other sessions except
 * keep_session (0: all). */
int auth_set_password(struct auth *a, int64_t user_id, const char *password, int must_change,
                      int64_t keep_session, int64_t now_ms, struct errinfo *err);

/* Checks a signed-in user's current password (before a change by the
 * user) with the same backoff as a login of that user from source: an
 * enum auth_login_result (LOGIN_OK, LOGIN_FAILED, LOGIN_WAIT or LOGIN_BUSY
 * with *retry_ms). */
int auth_recheck_password(struct auth *a, int64_t user_id, const char *password,
                          const char *source, int64_t now, int64_t *retry_ms);

/* Number of users. */
int64_t auth_user_count(struct auth *a);

/* Writes a new random password (24 characters) to out. */
void auth_random_password(char *out, size_t outlen);

#endif
