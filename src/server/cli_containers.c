/* `gpufleet containers ...` and `gpufleet gpus`: the container API at the
 * shell, with tables for people and --json for scripts. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "cli.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpufleet containers [--server URL] [--json] COMMAND\n"
            "  list                                 your containers (all, for operators)\n"
            "  create IMAGE [--name N] [--gpus N|UUID,UUID] [--gpu-model M] [--gpu-memory MIB]\n"
            "         [--cpus X] [--memory SIZE] [--port P[/udp]]... [--env K=V]...\n"
            "         [--host SERVER] [--no-workspace] [-- COMMAND ARGS...]\n"
            "  show ID | stats ID\n"
            "  start ID | stop ID | restart ID | recreate ID | rm ID\n"
            "  quota                                your limits and what you use\n"
            "  quotas                               every user's own limits (admin)\n"
            "  quota-set USER [--containers N] [--gpus N] [--cpus X] [--memory SIZE]\n"
            "                                       give USER limits of their own (admin;\n"
            "                                       a limit not given keeps the setting)\n"
            "  quota-reset USER                     USER back to the settings' limits\n"
            "usage: gpufleet gpus [--server URL] [--json]   every GPU and who holds it\n"
            "URL defaults to $GPUFLEET_URL or http://127.0.0.1:%d; the API token comes\n"
            "from $GPUFLEET_TOKEN\n",
            SERVER_DEFAULT_PORT);
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void print_containers(const json_t *list)
{
    size_t i, j;
    json_t *c, *x;

    printf("%-5s %-22s %-10s %-12s %-9s %-5s %-24s %s\n", "ID", "NAME", "OWNER", "SERVER", "STATE",
           "GPUS", "PORTS", "IMAGE");
    json_array_foreach(list, i, c) {
        char ports[200] = "";
        size_t n = 0;
        json_array_foreach(json_object_get(c, "ports"), j, x)
            if (n < sizeof(ports))
                n += (size_t)snprintf(ports + n, sizeof(ports) - n, "%s%lld->%lld", n ? "," : "",
                                      (long long)json_integer_value(json_object_get(x, "host")),
                                      (long long)json_integer_value(json_object_get(x, "container")));
        printf("%-5lld %-22s %-10s %-12s %-9s %-5zu %-24s %s\n",
               (long long)json_integer_value(json_object_get(c, "id")), str(c, "name"), str(c, "owner"),
               str(c, "server"), str(c, "state"), json_array_size(json_object_get(c, "gpus")),
               n ? ports : "-", str(c, "image"));
    }
}

static void print_gpus(const json_t *gpus)
{
    size_t i;
    json_t *g;

    printf("%-12s %-3s %-42s %-26s %s\n", "SERVER", "IDX", "UUID", "MODEL", "HELD BY");
    json_array_foreach(json_object_get(gpus, "gpus"), i, g) {
        json_t *h = json_object_get(g, "holder");
        char who[160] = "free";
        if (json_is_object(h))
            snprintf(who, sizeof(who), "%s (%s, container %lld)", str(h, "name"), str(h, "owner"),
                     (long long)json_integer_value(json_object_get(h, "container_id")));
        printf("%-12s %-3lld %-42s %-26s %s\n", str(g, "server"),
               (long long)json_integer_value(json_object_get(g, "index")), str(g, "uuid"),
               str(g, "model"), who);
    }
    json_array_foreach(json_object_get(gpus, "conflicts"), i, g)
        printf("conflict on %s: %s\n", str(g, "server"), str(g, "message"));
}

/* One line of limits or use: "containers 2, GPUs 3, CPUs 4, memory 8.0 GiB". */
static void print_figures(const char *what, const json_t *f)
{
    if (!json_is_object(f)) {
        printf("%-7s none (admins have no quota)\n", what);
        return;
    }
    printf("%-7s containers %lld, GPUs %lld, CPUs %g, memory %.1f GiB\n", what,
           (long long)json_integer_value(json_object_get(f, "containers")),
           (long long)json_integer_value(json_object_get(f, "gpus")),
           json_number_value(json_object_get(f, "cpus")),
           (double)json_integer_value(json_object_get(f, "memory_bytes")) / (1 << 30));
}

static void print_quota(const json_t *q)
{
    printf("%s%s\n", str(q, "user"), json_is_true(json_object_get(q, "own_limits")) ? " (limits of their own)" : "");
    print_figures("limits", json_object_get(q, "limits"));
    print_figures("use", json_object_get(q, "use"));
}

/* quota-set's body from its flags. NULL (a message printed) on a bad one. */
static json_t *quota_body(int argc, char **argv)
{
    json_t *b = json_object();
    for (int i = 2; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!v || strncmp(k, "--", 2)) {
            fprintf(stderr, "gpufleet: quota-set takes --containers N --gpus N --cpus X --memory SIZE\n");
            json_decref(b);
            return NULL;
        }
        if (!strcmp(k, "--memory")) {
            json_object_set_new(b, "memory", json_string(v));
        } else {
            double x = strtod(v, &end);
            json_object_set_new(b, k + 2, *end ? json_string(v) : !strcmp(k, "--cpus") ? json_real(x)
                                                                                      : json_integer((json_int_t)x));
        }
    }
    return b;
}

/* The create request from the flags. NULL (a message printed) on a bad one. */
static json_t *create_body(int argc, char **argv)
{
    json_t *b = json_pack("{s:s}", "image", argv[1]), *ports = json_array(), *env = json_object();
    json_t *gpus = NULL;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--")) {
            json_t *cmd = json_array();
            for (i++; i < argc; i++)
                json_array_append_new(cmd, json_string(argv[i]));
            json_object_set_new(b, "command", cmd);
            break;
        }
        if (!strcmp(a, "--no-workspace")) {
            json_object_set_new(b, "workspace", json_false());
            continue;
        }
        if (!v) {
            fprintf(stderr, "gpufleet: %s needs a value\n", a);
            goto fail;
        }
        i++;
        if (!strcmp(a, "--name") || !strcmp(a, "--host") || !strcmp(a, "--memory")) {
            json_object_set_new(b, a + 2, json_string(v));
        } else if (!strcmp(a, "--cpus")) {
            json_object_set_new(b, "cpus", json_real(strtod(v, NULL)));
        } else if (!strcmp(a, "--port")) {
            json_array_append_new(ports, json_string(v));
        } else if (!strcmp(a, "--env")) {
            const char *eq = strchr(v, '=');
            if (!eq) {
                fprintf(stderr, "gpufleet: --env expects KEY=VALUE\n");
                goto fail;
            }
            char key[200];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
            json_object_set_new(env, key, json_string(eq + 1));
        } else if (!strcmp(a, "--gpus")) {
            if (strncmp(v, "GPU-", 4) && strncmp(v, "MIG-", 4)) {
                if (!gpus)
                    gpus = json_object();
                json_object_set_new(gpus, "count", json_integer(atoi(v)));
            } else {
                json_t *u = json_array();
                char *copy = strdup(v), *save = NULL;
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                    json_array_append_new(u, json_string(t));
                free(copy);
                json_object_set_new(b, "gpus", u);
            }
        } else if (!strcmp(a, "--gpu-model") || !strcmp(a, "--gpu-memory")) {
            if (!gpus)
                gpus = json_object();
            if (!strcmp(a, "--gpu-model"))
                json_object_set_new(gpus, "model", json_string(v));
            else
                json_object_set_new(gpus, "min_memory_mib", json_integer(atoll(v)));
        } else {
            fprintf(stderr, "gpufleet: unknown option %s\n", a);
            goto fail;
        }
    }
    if (gpus)
        json_object_set_new(b, "gpus", gpus);
    json_object_set_new(b, "ports", ports);
    json_object_set_new(b, "env", env);
    return b;
fail:
    json_decref(gpus);
    json_decref(ports);
    json_decref(env);
    json_decref(b);
    return NULL;
}

/* Prints a JSON answer as a table (or as JSON). */
static int show(long status, struct buf *out, int as_json, void (*table)(const json_t *),
                const char *key)
{
    if (status < 0 || status >= 400 || as_json)
        return cli_report(status, out);
    json_t *j = json_loadb(out->data ? out->data : "", out->len, 0, NULL);
    json_t *v = key ? json_object_get(j, key) : j;
    if (json_is_object(v) && table == print_containers) {
        json_t *one = json_pack("[O]", v);
        table(one);
        json_decref(one);
    } else {
        table(v);
    }
    json_decref(j);
    return 0;
}

int cli_containers(int argc, char **argv)
{
    int gpus = !strcmp(argv[0], "gpus"), as_json = 0, rc = 2;
    char path[200];
    struct buf out;
    const char *base = cli_api_flags(&argc, &argv, &as_json);

    if ((!gpus && argc < 1) || (argc >= 1 && !strcmp(argv[0], "--help"))) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    buf_init(&out, 64 << 20);
    if (gpus) {
        rc = show(cli_request(base, "GET", "/api/v1/gpus", NULL, &out), &out, as_json, print_gpus, NULL);
    } else if (!strcmp(argv[0], "list")) {
        rc = show(cli_request(base, "GET", "/api/v1/containers", NULL, &out), &out, as_json,
                  print_containers, "containers");
    } else if (!strcmp(argv[0], "create") && argc >= 2) {
        json_t *b = create_body(argc, argv);
        char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
        if (text)
            rc = show(cli_request(base, "POST", "/api/v1/containers", text, &out), &out, as_json,
                      print_containers, NULL);
        free(text);
        json_decref(b);
    } else if (argc == 2 && (!strcmp(argv[0], "show") || !strcmp(argv[0], "stats"))) {
        int stats = !strcmp(argv[0], "stats");
        snprintf(path, sizeof(path), "/api/v1/containers/%.40s%s", argv[1], stats ? "/stats" : "");
        long st = cli_request(base, "GET", path, NULL, &out);
        rc = stats ? cli_report(st, &out) : show(st, &out, as_json, print_containers, NULL);
    } else if (argc == 1 && !strcmp(argv[0], "quota")) {
        long st = cli_request(base, "GET", "/api/v1/quota", NULL, &out);
        rc = show(st, &out, as_json, print_quota, NULL);
    } else if (argc == 1 && !strcmp(argv[0], "quotas")) {
        rc = cli_report(cli_request(base, "GET", "/api/v1/quotas", NULL, &out), &out);
    } else if (argc >= 2 && (!strcmp(argv[0], "quota-set") || !strcmp(argv[0], "quota-reset"))) {
        int reset = !strcmp(argv[0], "quota-reset");
        json_t *b = reset ? NULL : quota_body(argc, argv);
        char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
        snprintf(path, sizeof(path), "/api/v1/quotas/%.64s", argv[1]);
        if (reset && argc == 2)
            rc = cli_report(cli_request(base, "DELETE", path, NULL, &out), &out);
        else if (text)
            rc = cli_report(cli_request(base, "PUT", path, text, &out), &out);
        else if (reset)
            usage(stderr);
        free(text);
        json_decref(b);
    } else if (argc == 2 && !strcmp(argv[0], "rm")) {
        snprintf(path, sizeof(path), "/api/v1/containers/%.40s", argv[1]);
        rc = cli_report(cli_request(base, "DELETE", path, NULL, &out), &out);
    } else if (argc == 2 && (!strcmp(argv[0], "start") || !strcmp(argv[0], "stop") ||
                             !strcmp(argv[0], "restart") || !strcmp(argv[0], "recreate"))) {
        snprintf(path, sizeof(path), "/api/v1/containers/%.40s/%s", argv[1], argv[0]);
        rc = show(cli_request(base, "POST", path, NULL, &out), &out, as_json, print_containers, NULL);
    } else {
        usage(stderr);
    }
    buf_free(&out);
    curl_global_cleanup();
    return rc;
}
