/* Command-line client of the server's REST API (libcurl). */
#include "cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpufleet servers [--server URL] COMMAND\n"
            "  list                                  list servers and their status\n"
            "  add NAME ADDRESS [--agent-port N] [--agent-token-file FILE]\n"
            "      [--label KEY=VALUE]... [--target NAME=URL]...\n"
            "  rm ID                                 remove a server\n"
            "  check ID                              check that its agent answers\n"
            "URL defaults to $GPUFLEET_URL or http://127.0.0.1:%d\n"
            "the API token (operator role to change things) comes from $GPUFLEET_TOKEN;\n"
            "make one with `gpufleet token add USER NAME` or POST /api/v1/tokens\n",
            SERVER_DEFAULT_PORT);
}

static size_t collect(char *d, size_t s, size_t n, void *arg)
{
    return buf_append(arg, d, s * n) < 0 ? 0 : s * n;
}

long cli_request(const char *base, const char *method, const char *path, const char *body,
                    struct buf *out)
{
    char url[2048];
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = -1;
    const char *token = getenv("GPUFLEET_TOKEN");

    if (token && *token) {
        char auth[256];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
        explicit_bzero(auth, sizeof(auth));
    }

    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 180L); /* a container create waits on its host */
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(e);
    if (cc != CURLE_OK)
        fprintf(stderr, "gpufleet: %s: %s\n", url, curl_easy_strerror(cc));
    else
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

int cli_report(long status, struct buf *out)
{
    if (status < 0)
        return 1;
    if (status >= 400) {
        json_error_t jerr;
        json_t *j = json_loadb(out->data ? out->data : "", out->len, 0, &jerr);
        json_t *e = json_object_get(j, "error");
        const char *field = json_string_value(json_object_get(e, "field"));
        fprintf(stderr, "gpufleet: %s%s%s\n", field ? field : "", field ? ": " : "",
                json_string_value(json_object_get(e, "message"))
                    ? json_string_value(json_object_get(e, "message"))
                    : (out->data ? out->data : "request failed"));
        json_decref(j);
        return 1;
    }
    if (out->len)
        fwrite(out->data, 1, out->len, stdout);
    return 0;
}

static int add(const char *base, int argc, char **argv)
{
    json_t *body, *labels = json_object(), *targets = json_array();
    struct buf out;

    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    body = json_pack("{s:s, s:s}", "name", argv[1], "address", argv[2]);
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "gpufleet: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--agent-port")) {
            json_object_set_new(body, "agent_port", json_integer(atoi(v)));
        } else if (!strcmp(a, "--agent-token-file")) {
            FILE *f = fopen(v, "r");
            char tok[600] = "";
            if (!f || !fgets(tok, sizeof(tok), f)) {
                fprintf(stderr, "gpufleet: cannot read %s\n", v);
                if (f)
                    fclose(f);
                return 1;
            }
            fclose(f);
            tok[strcspn(tok, "\r\n")] = '\0';
            json_object_set_new(body, "agent_token", json_string(tok));
        } else if (!strcmp(a, "--label") || !strcmp(a, "--target")) {
            const char *eq = strchr(v, '=');
            if (!eq) {
                fprintf(stderr, "gpufleet: %s expects KEY=VALUE\n", a);
                return 2;
            }
            char *k = xstrndup(v, (size_t)(eq - v));
            if (!strcmp(a, "--label"))
                json_object_set_new(labels, k, json_string(eq + 1));
            else
                json_array_append_new(targets, json_pack("{s:s, s:s}", "name", k, "url", eq + 1));
            free(k);
        } else {
            fprintf(stderr, "gpufleet: unknown option %s\n", a);
            return 2;
        }
    }
    json_object_set_new(body, "labels", labels);
    json_object_set_new(body, "targets", targets);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    buf_init(&out, 1 << 20);
    int rc = cli_report(cli_request(base, "POST", "/api/v1/servers", text, &out), &out);
    free(text);
    buf_free(&out);
    return rc;
}

int cli_servers(int argc, char **argv)
{
    const char *base = getenv("GPUFLEET_URL");
    char def[64], path[128];
    struct buf out;
    int rc = 2;

    snprintf(def, sizeof(def), "http://127.0.0.1:%d", SERVER_DEFAULT_PORT);
    if (!base)
        base = def;
    argc--, argv++;
    if (argc >= 2 && !strcmp(argv[0], "--server")) {
        base = argv[1];
        argc -= 2, argv += 2;
    }
    if (argc < 1 || !strcmp(argv[0], "--help")) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    buf_init(&out, 64 << 20);
    if (!strcmp(argv[0], "list")) {
        rc = cli_report(cli_request(base, "GET", "/api/v1/servers", NULL, &out), &out);
    } else if (!strcmp(argv[0], "add")) {
        rc = add(base, argc, argv);
    } else if ((!strcmp(argv[0], "rm") || !strcmp(argv[0], "check")) && argc == 2) {
        int check = !strcmp(argv[0], "check");
        snprintf(path, sizeof(path), "/api/v1/servers/%.40s%s", argv[1], check ? "/check" : "");
        rc = cli_report(cli_request(base, check ? "POST" : "DELETE", path, NULL, &out), &out);
    } else {
        usage(stderr);
    }
    buf_free(&out);
    curl_global_cleanup();
    return rc;
}

const char *cli_api_flags(int *argc, char ***argv, int *as_json)
{
    static char def[64];
    const char *base = getenv("GPUFLEET_URL");

    snprintf(def, sizeof(def), "http://127.0.0.1:%d", SERVER_DEFAULT_PORT);
    if (!base)
        base = def;
    (*argc)--, (*argv)++;
    for (;;) {
        if (*argc >= 2 && !strcmp((*argv)[0], "--server")) {
            base = (*argv)[1];
            *argc -= 2, *argv += 2;
        } else if (*argc >= 1 && !strcmp((*argv)[0], "--json")) {
            *as_json = 1;
            (*argc)--, (*argv)++;
        } else {
            return base;
        }
    }
}
