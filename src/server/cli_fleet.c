/* `gpufleet fleet plan -c fleet.yaml`: what the server would change to
 * make its registry match a fleet file. The files are read here (a
 * password-holding file readable by others is refused) and checked here
 * first, so errors name the key and line before anything is sent. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/buf.h"
#include "cli.h"
#include "fleetfile.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gpufleet fleet [--server URL] [--json] plan -c FLEET.yaml [--secrets FILE]\n"
               "  plan   what would change to make the server's registry match the file:\n"
               "         servers to install, to update, unchanged, and registered ones the\n"
               "         file does not name\n"
               "A file holding a password must be readable by its owner only.\n"
               "URL defaults to $GPUFLEET_URL or http://127.0.0.1:%d; the admin API token\n"
               "comes from $GPUFLEET_TOKEN\n",
               SERVER_DEFAULT_PORT);
}

/* The file's text (NUL-terminated; *len its size), or NULL said on stderr. */
static char *slurp(const char *path, size_t *len, struct stat *st)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[65536];
    size_t n;

    if (!f || fstat(fileno(f), st) < 0) {
        fprintf(stderr, "gpufleet: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    buf_init(&b, FLEETFILE_MAX_BYTES + 1);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&b, chunk, n) < 0) {
            fprintf(stderr, "gpufleet: %s: larger than %u bytes\n", path, FLEETFILE_MAX_BYTES);
            fclose(f);
            buf_free(&b);
            return NULL;
        }
    fclose(f);
    buf_append(&b, "", 1);
    *len = b.len - 1;
    return b.data;
}

static int holds_password(const json_t *fleet)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(fleet, "servers"), i, s)
    {
        if (json_object_get(json_object_get(s, "bmc"), "password"))
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

/* Long for its flags; each step a few lines: read, check locally, ask. */
int cli_fleet(int argc, char **argv)
{
    int as_json = 0, rc = 1;
    const char *base = cli_api_flags(&argc, &argv, &as_json), *file = NULL, *secrets_file = NULL;
    char *text = NULL, *secrets = NULL;
    size_t len = 0, slen = 0;
    struct stat st, sst;
    struct errinfo e;
    json_t *fleet = NULL, *req = NULL;
    struct buf out;

    if (argc < 1 || strcmp(argv[0], "plan")) {
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
    req = json_pack("{s:s, s:s*}", "fleet", text, "secrets", secrets);
    char *body = json_dumps(req, JSON_COMPACT);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    long status = cli_request(base, "POST", "/api/v1/fleet/plan", body, &out);
    free(body);
    if (status == 200 && !as_json) {
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
