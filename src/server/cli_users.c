/* `gpufleet user ...` and `gpufleet token ...`: users and API tokens from a
 * shell, on the database directly (a running server sees the change at its
 * next request). Each change writes an audit row with source "cli". */
#include <getopt.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../lib/now.h"
#include "../lib/timefmt.h"
#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "options.h"

struct cli_db {
    struct auth *auth;
    struct audit *audit;
    char actor[80];
};

static int open_dbs(const char *dir, struct cli_db *d)
{
    char path[4200], err[512];
    struct auth_config ac;
    const char *who = getenv("SUDO_USER");
    struct passwd *pw = getpwuid(getuid());

    if (mkdir(dir, 0700) < 0 && access(dir, W_OK) < 0) {
        fprintf(stderr, "gpufleet: data directory %s is not writable\n", dir);
        return -1;
    }
    struct server_options o;
    server_options_init(&o); /* the CLI takes the table's defaults */
    server_options_auth(&o, &ac);
    server_options_free(&o);
    snprintf(path, sizeof(path), "%s/auth.db", dir);
    if (!(d->auth = auth_open(path, &ac, err, sizeof(err)))) {
        fprintf(stderr, "gpufleet: %s\n", err);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/audit.db", dir);
    if (!(d->audit = audit_open(path, 36500, err, sizeof(err)))) {
        fprintf(stderr, "gpufleet: %s\n", err);
        auth_close(d->auth);
        return -1;
    }
    snprintf(d->actor, sizeof(d->actor), "shell:%s", who ? who : pw ? pw->pw_name : "?");
    return 0;
}

static void close_dbs(struct cli_db *d)
{
    auth_close(d->auth);
    audit_close(d->audit);
}

static void audit(struct cli_db *d, const char *action, const char *target, int ok, json_t *details)
{
    struct audit_entry e = {.ts_ms = now_wall_ms(), .username = d->actor, .role = "",
                            .source = "cli", .action = action, .target = target,
                            .result = ok ? "ok" : "failed", .status = ok ? 200 : 400,
                            .details = details};
    audit_write(d->audit, &e);
    json_decref(details);
}

/* A password from stdin (--password-stdin) or typed twice at a terminal. */
static int read_password(int from_stdin, char *out, size_t outlen)
{
    char again[AUTH_PASSWORD_MAX + 2];
    struct termios old, quiet;

    if (from_stdin || !isatty(0)) {
        if (!fgets(out, (int)outlen, stdin)) {
            fprintf(stderr, "gpufleet: no password on standard input\n");
            return -1;
        }
        out[strcspn(out, "\r\n")] = '\0';
        return 0;
    }
    tcgetattr(0, &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(0, TCSAFLUSH, &quiet);
    fprintf(stderr, "password: ");
    int ok = fgets(out, (int)outlen, stdin) != NULL;
    fprintf(stderr, "\nagain: ");
    ok = ok && fgets(again, sizeof(again), stdin) != NULL;
    fprintf(stderr, "\n");
    tcsetattr(0, TCSAFLUSH, &old);
    out[strcspn(out, "\r\n")] = '\0';
    again[strcspn(again, "\r\n")] = '\0';
    ok = ok && !strcmp(out, again);
    sodium_memzero(again, sizeof(again));
    if (!ok)
        fprintf(stderr, "gpufleet: the passwords differ\n");
    return ok ? 0 : -1;
}

static void user_usage(FILE *f)
{
    fprintf(f, "usage: gpufleet user [--data DIR] COMMAND\n"
               "  add NAME [--role admin|operator|user|viewer] [--password-stdin]\n"
               "  passwd NAME [--password-stdin]    set a password (ends the user's sessions)\n"
               "  list\n"
               "  disable NAME | enable NAME | delete NAME\n"
               "DIR defaults to $GPUFLEET_DATA or ./data\n");
}

static void print_users(json_t *users)
{
    size_t i;
    json_t *u;
    printf("%-5s %-24s %-9s %-8s %s\n", "ID", "USER", "ROLE", "STATE", "SOURCE");
    json_array_foreach(users, i, u)
    {
        printf("%-5lld %-24s %-9s %-8s %s\n",
               (long long)json_integer_value(json_object_get(u, "id")),
               json_string_value(json_object_get(u, "username")),
               json_string_value(json_object_get(u, "role")),
               json_is_true(json_object_get(u, "disabled")) ? "disabled" : "enabled",
               json_string_value(json_object_get(u, "source")));
    }
}

static int need_user(struct cli_db *d, const char *name, int64_t *id)
{
    *id = name ? auth_user_id(d->auth, name) : 0;
    if (!*id)
        fprintf(stderr, "gpufleet: no user named '%s'\n", name ? name : "");
    return *id ? 0 : -1;
}

/* Long on purpose: the subcommand dispatch (add, passwd, list, disable,
 * enable, delete), each a few lines over the auth module. */
int cli_user(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"password-stdin", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = getenv("GPUFLEET_DATA") ? getenv("GPUFLEET_DATA") : "data";
    const char *role_name = "viewer";
    int from_stdin = 0, opt, rc = 1;
    char pw[AUTH_PASSWORD_MAX + 2], target[128];
    struct errinfo e;
    struct cli_db d;
    int64_t id;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'd')
            dir = optarg;
        else if (opt == 'r')
            role_name = optarg;
        else if (opt == 'p')
            from_stdin = 1;
        else {
            user_usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (!cmd) {
        user_usage(stderr);
        return 2;
    }
    if (open_dbs(dir, &d) < 0)
        return 1;
    snprintf(target, sizeof(target), "user:%.64s", name ? name : "");
    if (!strcmp(cmd, "list")) {
        json_t *users = auth_users_list(d.auth);
        print_users(users);
        json_decref(users);
        rc = 0;
    } else if (!strcmp(cmd, "add")) {
        int role = auth_role_parse(role_name);
        if (role < 0) {
            fprintf(stderr, "gpufleet: --role: must be admin, operator, user or viewer\n");
        } else if (read_password(from_stdin, pw, sizeof(pw)) == 0) {
            rc = auth_user_create(d.auth, name ? name : "", pw, role, 0, now_wall_ms(), &id, &e) < 0;
            if (rc)
                fprintf(stderr, "gpufleet: %s\n", e.message);
            audit(&d, "user.create", target, !rc, json_pack("{s:s}", "role", role_name));
        }
    } else if (!strcmp(cmd, "passwd")) {
        if (need_user(&d, name, &id) == 0 && read_password(from_stdin, pw, sizeof(pw)) == 0) {
            rc = auth_set_password(d.auth, id, pw, 0, 0, now_wall_ms(), &e) < 0;
            if (rc)
                fprintf(stderr, "gpufleet: %s\n", e.message);
            audit(&d, "user.update", target, !rc, json_pack("{s:[s]}", "fields", "password"));
        }
    } else if (!strcmp(cmd, "disable") || !strcmp(cmd, "enable")) {
        int off = !strcmp(cmd, "disable");
        if (need_user(&d, name, &id) == 0) {
            rc = auth_user_set_disabled(d.auth, id, off, now_wall_ms(), &e) < 0;
            if (rc)
                fprintf(stderr, "gpufleet: %s\n", e.message);
            audit(&d, "user.update", target, !rc, json_pack("{s:b}", "disabled", off));
        }
    } else if (!strcmp(cmd, "delete")) {
        if (need_user(&d, name, &id) == 0) {
            rc = auth_user_delete(d.auth, id, &e) < 0;
            if (rc)
                fprintf(stderr, "gpufleet: %s\n", e.message);
            audit(&d, "user.delete", target, !rc, NULL);
        }
    } else {
        fprintf(stderr, "gpufleet user: unknown command '%s'\n", cmd);
        user_usage(stderr);
        rc = 2;
    }
    sodium_memzero(pw, sizeof(pw));
    close_dbs(&d);
    return rc;
}

static void token_usage(FILE *f)
{
    fprintf(f, "usage: gpufleet token [--data DIR] COMMAND\n"
               "  add USER NAME [--role ROLE] [--expires 90d]   prints the token (once)\n"
               "  list [USER]\n"
               "  revoke ID\n"
               "DIR defaults to $GPUFLEET_DATA or ./data\n");
}

/* Long on purpose: the subcommand dispatch (add, list, revoke) with its
 * option parsing. */
int cli_token(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"expires", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = getenv("GPUFLEET_DATA") ? getenv("GPUFLEET_DATA") : "data";
    const char *role_name = NULL, *expires = "90d";
    int opt, rc = 1;
    char secret[96], target[128];
    struct errinfo e;
    struct cli_db d;
    int64_t uid, id, ttl_ms, now = now_wall_ms();

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'd')
            dir = optarg;
        else if (opt == 'r')
            role_name = optarg;
        else if (opt == 'e')
            expires = optarg;
        else {
            token_usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    const char *a1 = optind + 1 < argc ? argv[optind + 1] : NULL;
    const char *a2 = optind + 2 < argc ? argv[optind + 2] : NULL;
    if (!cmd) {
        token_usage(stderr);
        return 2;
    }
    if (timefmt_parse_duration(expires, &ttl_ms) < 0) {
        fprintf(stderr, "gpufleet: --expires: a duration such as 30d or 12h\n");
        return 2;
    }
    if (open_dbs(dir, &d) < 0)
        return 1;
    if (!strcmp(cmd, "add")) {
        if (need_user(&d, a1, &uid) == 0) {
            json_t *u = auth_user_get(d.auth, uid, NULL);
            int urole = auth_role_parse(json_string_value(json_object_get(u, "role")));
            int role = role_name ? auth_role_parse(role_name) : urole;
            json_decref(u);
            snprintf(target, sizeof(target), "token:%.64s", a2 ? a2 : "");
            rc = auth_token_create(d.auth, uid, urole, a2 ? a2 : "", role, now + ttl_ms, now,
                                   secret, sizeof(secret), &id, &e) < 0;
            if (rc)
                fprintf(stderr, "gpufleet: %s\n", e.message);
            else
                printf("%s\n", secret);
            audit(&d, "token.create", target, !rc,
                  json_pack("{s:s, s:s}", "user", a1, "role", auth_role_name(role)));
            sodium_memzero(secret, sizeof(secret));
        }
    } else if (!strcmp(cmd, "list")) {
        uid = 0;
        if (!a1 || need_user(&d, a1, &uid) == 0) {
            json_t *list = auth_tokens_list(d.auth, uid, now), *t;
            size_t i;
            printf("%-5s %-16s %-24s %-9s %s\n", "ID", "USER", "NAME", "ROLE", "PREFIX");
            json_array_foreach(list, i, t)
            {
                printf("%-5lld %-16s %-24s %-9s %s\n",
                       (long long)json_integer_value(json_object_get(t, "id")),
                       json_string_value(json_object_get(t, "username")),
                       json_string_value(json_object_get(t, "name")),
                       json_string_value(json_object_get(t, "role")),
                       json_string_value(json_object_get(t, "prefix")));
            }
            json_decref(list);
            rc = 0;
        }
    } else if (!strcmp(cmd, "revoke")) {
        id = a1 ? strtoll(a1, NULL, 10) : 0;
        snprintf(target, sizeof(target), "token:%lld", (long long)id);
        rc = auth_token_revoke(d.auth, id, 0, now, &e) < 0;
        if (rc)
            fprintf(stderr, "gpufleet: %s\n", e.message);
        audit(&d, "token.revoke", target, !rc, NULL);
    } else {
        fprintf(stderr, "gpufleet token: unknown command '%s'\n", cmd);
        token_usage(stderr);
        rc = 2;
    }
    close_dbs(&d);
    return rc;
}
