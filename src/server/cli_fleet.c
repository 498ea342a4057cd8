/* `gpufleet fleet plan|apply -c fleet.yaml`: what the server would change
 * to make the fleet match a fleet file, and doing it (followed host by host
 * until done); `gpufleet ssh-key`. The files are read here (a
 * password-holding file readable by others is refused) and checked here
 * first, so errors name the key and line before anything is sent. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "cli.h"
#include "fleetfile.h"
#include "server.h"
#include "sshop.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gpufleet fleet [--server URL] [--json] plan|apply -c FLEET.yaml [--secrets FILE]\n"
               "                                               [--dry-run] [--prune]\n"
               "  plan   what would change to make the server's registry match the file:\n"
               "         servers to install, to update, unchanged, and registered ones the\n"
               "         file does not name\n"
               "  apply  make it so, over SSH with the fleet key (`gpufleet ssh-key`): the\n"
               "         agent installed as a systemd service, verified and registered on\n"
               "         each new or changed server, a line per host as it goes; --dry-run\n"
               "         prints the plan instead, --prune also uninstalls and removes the\n"
               "         registered servers the file does not name\n"
               "A file holding a password must be readable by its owner only.\n"
               "URL defaults to $GPUFLEET_URL or http://127.0.0.1:%d; the admin API token\n"
               "comes from $GPUFLEET_TOKEN\n",
               SERVER_DEFAULT_PORT);
}

/* The file's text (NUL-terminated; *len its size) and its mode, or NULL
 * said on stderr. */
static char *slurp(const char *path, size_t *len, struct stat *st)
{
    struct buf b;
    buf_init(&b, FLEETFILE_MAX_BYTES);
    int rc = stat(path, st) < 0 ? -1 : buf_append_file(&b, path);
    if (rc < 0) {
        if (rc == BUF_TOOBIG)
            fprintf(stderr, "gpufleet: %s: larger than %u bytes\n", path, FLEETFILE_MAX_BYTES);
        else
            fprintf(stderr, "gpufleet: %s: %s\n", path, strerror(errno));
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return buf_detach(&b, NULL);
}

static int holds_password(const json_t *fleet)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(fleet, "servers"), i, s)
    {
        if (json_object_get(json_object_get(s, "bmc"), "password") ||
            json_object_get(json_object_get(s, "ssh"), "password"))
            return 1;
    }
    return 0;
}

static void print_plan(const json_t *plan)
{
    const json_t *sum = json_object_get(plan, "summary"), *c;
    size_t i;
    printf("site %s: %lld to install, %lld to update, %lld unchanged, %lld registered but not in the file\n",
           json_string_value(json_object_get(plan, "site")),
           (long long)json_integer_value(json_object_get(sum, "install")),
           (long long)json_integer_value(json_object_get(sum, "update")),
           (long long)json_integer_value(json_object_get(sum, "unchanged")),
           (long long)json_integer_value(json_object_get(sum, "remove")));
    const json_t *admin = json_object_get(plan, "admin_user");
    if (admin)
        printf("  admin user %s: %s (%s)\n", json_string_value(json_object_get(admin, "name")),
               json_string_value(json_object_get(admin, "state")), json_string_value(json_object_get(admin, "detail")));
    json_array_foreach(json_object_get(plan, "changes"), i, c)
    {
        const char *k;
        json_t *v;
        printf("  %-10s %s", json_string_value(json_object_get(c, "action")),
               json_string_value(json_object_get(c, "server")));
        json_object_foreach(json_object_get(c, "fields"), k, v)
        {
            char *a = json_dumps(json_array_get(v, 0), JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
            char *b = json_dumps(json_array_get(v, 1), JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
            printf("  %s %s -> %s", k, a ? a : "?", b ? b : "?");
            free(a);
            free(b);
        }
        printf("%s\n", !strcmp(json_string_value(json_object_get(c, "action")), "remove")
                           ? "  (kept: not removed unless asked)"
                           : "");
    }
}

/* One line per host: state, step, detail. */
static void host_line(const json_t *h, int tty)
{
    const char *state = json_string_value(json_object_get(h, "state"));
    const char *detail = json_string_value(json_object_get(h, "detail"));
    printf("%s  %-24s %-9s %-9s %-9s %.1f s  %s\n", tty ? "\033[2K" : "",
           json_string_value(json_object_get(h, "server")), json_string_value(json_object_get(h, "action")), state,
           json_string_value(json_object_get(h, "step")), (double)json_integer_value(json_object_get(h, "ms")) / 1000,
           detail ? detail : "");
}

/* Polls the apply until it is done: on a terminal the lines are redrawn
 * in place; elsewhere a line is printed when a host's step or state
 * changes. Returns the final status (new reference) or NULL. */
static json_t *follow(const char *base, int tty, int quiet)
{
    json_t *seen = json_object(), *st = NULL;
    size_t drawn = 0;
    for (;;) {
        struct buf out;
        buf_init(&out, 16 << 20);
        long code = cli_request(base, "GET", "/api/v1/fleet/apply", NULL, &out);
        json_decref(st);
        st = code == 200 ? json_loadb(out.data, out.len, 0, NULL) : NULL;
        buf_free(&out);
        if (!st)
            break;
        json_t *hosts = json_object_get(st, "hosts"), *h;
        size_t i;
        if (tty && drawn && !quiet)
            printf("\033[%zuA", drawn);
        json_array_foreach(hosts, i, h)
        {
            char key[160];
            snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(h, "step")),
                     json_string_value(json_object_get(h, "state")));
            const char *name = json_string_value(json_object_get(h, "server"));
            const char *was = json_string_value(json_object_get(seen, name));
            if (!quiet && (tty || !was || strcmp(was, key)))
                host_line(h, tty);
            json_object_set_new(seen, name, json_string(key));
        }
        drawn = tty ? json_array_size(hosts) : 0;
        fflush(stdout);
        if (!strcmp(json_string_value(json_object_get(st, "state")), "done"))
            break;
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL);
    }
    json_decref(seen);
    return st;
}

static int print_summary(const json_t *st)
{
    const json_t *sum = json_object_get(st, "summary"), *h;
    size_t i, failed = (size_t)json_integer_value(json_object_get(sum, "failed"));
    printf("%lld installed or updated, %lld unchanged, %lld removed, %lld kept, %zu failed in %.1f s\n",
           (long long)json_integer_value(json_object_get(sum, "ok")),
           (long long)json_integer_value(json_object_get(sum, "unchanged")),
           (long long)json_integer_value(json_object_get(sum, "removed")),
           (long long)json_integer_value(json_object_get(sum, "kept")), failed,
           (double)(json_integer_value(json_object_get(st, "finished_ms")) -
                    json_integer_value(json_object_get(st, "started_ms"))) / 1000);
    if (!json_integer_value(json_object_get(sum, "ok")) && !failed && !json_integer_value(json_object_get(sum, "removed")))
        printf("nothing to change: the fleet matches the file\n");
    json_array_foreach(json_object_get(st, "hosts"), i, h)
    {
        if (!strcmp(json_string_value(json_object_get(h, "state")), "failed"))
            printf("FAILED %s at %s: %s\n", json_string_value(json_object_get(h, "server")),
                   json_string_value(json_object_get(h, "step")), json_string_value(json_object_get(h, "detail")));
    }
    return failed ? 1 : 0;
}

/* Long for its flags; each step a few lines: read, check locally, ask. */
int cli_fleet(int argc, char **argv)
{
    int as_json = 0, rc = 1, dry_run = 0, prune = 0;
    const char *base = cli_api_flags(&argc, &argv, &as_json), *file = NULL, *secrets_file = NULL;
    char *text = NULL, *secrets = NULL;
    size_t len = 0, slen = 0;
    struct stat st, sst;
    struct errinfo e;
    json_t *fleet = NULL, *req = NULL;
    struct buf out;

    if (argc < 1 || (strcmp(argv[0], "plan") && strcmp(argv[0], "apply"))) {
        usage(argc >= 1 && !strcmp(argv[0], "--help") ? stdout : stderr);
        return argc >= 1 && !strcmp(argv[0], "--help") ? 0 : 2;
    }
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")))
            file = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--secrets"))
            secrets_file = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strcmp(argv[i], "--dry-run"))
            dry_run = 1;
        else if (!strcmp(argv[i], "--prune"))
            prune = 1;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!file) {
        usage(stderr);
        return 2;
    }
    buf_init(&out, 64 << 20);
    if (!(text = slurp(file, &len, &st)) || (secrets_file && !(secrets = slurp(secrets_file, &slen, &sst))))
        goto done;
    if (secrets && (sst.st_mode & 077)) {
        fprintf(stderr, "gpufleet: %s: others may read it (mode %03o); chmod 600 it first\n", secrets_file,
                (unsigned)(sst.st_mode & 0777));
        goto done;
    }
    if (!(fleet = fleetfile_parse(text, len, secrets, slen, &e))) {
        fprintf(stderr, "gpufleet: %s: %s\n", strncmp(e.message, "secrets file:", 13) ? file : secrets_file, e.message);
        goto done;
    }
    if (holds_password(fleet) && !secrets && (st.st_mode & 077)) {
        fprintf(stderr, "gpufleet: %s holds a password and others may read it (mode %03o); chmod 600 it,"
                        " or move the passwords to a --secrets file\n", file, (unsigned)(st.st_mode & 0777));
        goto done;
    }
    int applying = !strcmp(argv[0], "apply") && !dry_run;
    req = json_pack("{s:s, s:s*, s:b}", "fleet", text, "secrets", secrets, "prune", prune);
    char *body = json_dumps(req, JSON_COMPACT);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    long status = cli_request(base, "POST", applying ? "/api/v1/fleet/apply" : "/api/v1/fleet/plan", body, &out);
    if (body)
        explicit_bzero(body, strlen(body)); /* it held the secrets */
    free(body);
    if (applying && status == 202) {
        json_t *done = follow(base, isatty(STDOUT_FILENO), as_json);
        if (done && as_json) {
            char *txt = json_dumps(done, JSON_COMPACT);
            puts(txt ? txt : "{}");
            free(txt);
        }
        rc = !done ? 1
             : as_json ? (json_integer_value(json_object_get(json_object_get(done, "summary"), "failed")) > 0)
                       : print_summary(done);
        json_decref(done);
    } else if (status == 200 && !as_json) {
        json_t *plan = json_loadb(out.data, out.len, 0, NULL);
        print_plan(plan);
        json_decref(plan);
        rc = 0;
    } else {
        rc = cli_report(status, &out);
    }
    curl_global_cleanup();
done:
    json_decref(req);
    json_decref(fleet);
    free(text);
    free(secrets);
    buf_free(&out);
    return rc;
}

int cli_ssh_key(int argc, char **argv)
{
    const char *dir = getenv("GPUFLEET_DATA") ? getenv("GPUFLEET_DATA") : "data", *unpin = NULL;
    char pub[600], err[300];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--data"))
            dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "unpin"))
            unpin = argv[++i];
        else {
            fprintf(stderr, "usage: gpufleet ssh-key [--data DIR] [unpin HOST:PORT]\n"
                            "prints the fleet key's public half (made on first use, DIR/fleet_ed25519):\n"
                            "add it to each host's ~/.ssh/authorized_keys of the fleet file's SSH user;\n"
                            "unpin forgets a host's pinned key (after a reinstall you know of)\n");
            return 2;
        }
    }
    if (unpin) {
        const char *colon = strrchr(unpin, ':');
        char host[256];
        snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - unpin) : 0, unpin);
        if (!colon || !host[0] || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
            fprintf(stderr, "gpufleet: unpin HOST:PORT, as the refusal named it\n");
            return 2;
        }
        if (sshop_unpin(dir, host, atoi(colon + 1)) < 0) {
            fprintf(stderr, "gpufleet: no key pinned for %s\n", unpin);
            return 1;
        }
        printf("unpinned %s: its key is pinned again at the next contact\n", unpin);
        return 0;
    }
    if (sshop_fleet_key(dir, pub, sizeof(pub), err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet: %s\n", err);
        return 1;
    }
    puts(pub);
    return 0;
}
