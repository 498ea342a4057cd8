/* `gpufleet images ...`: a host's images at the shell; a pull shows its
 * progress (bytes and layers) until the engine is done. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "cli.h"
#include "server.h"

#define POLL_MS 300
#define MIB (1024.0 * 1024.0)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpufleet images [--server URL] [--json] COMMAND\n"
            "  list SERVER                  the images of a server (id or name)\n"
            "  pull SERVER IMAGE            pull, showing progress until it ends\n"
            "  pulls SERVER                 the server's recent pulls\n"
            "  rm SERVER IMAGE [--force]    remove (--force: even when containers use it)\n"
            "URL defaults to $GPUFLEET_URL or http://127.0.0.1:%d; the API token comes\n"
            "from $GPUFLEET_TOKEN\n",
            SERVER_DEFAULT_PORT);
}

static void print_images(const json_t *list)
{
    size_t i;
    json_t *img;

    printf("%-19s %-40s %10s %-20s %s\n", "ID", "TAGS", "SIZE", "CREATED", "USED BY");
    json_array_foreach(list, i, img) {
        char tags[400] = "", used[400] = "", when[32] = "-";
        const char *id = json_string_value(json_object_get(img, "id"));
        time_t t = (time_t)json_integer_value(json_object_get(img, "created"));
        size_t n = 0, m = 0, j;
        json_t *x;
        struct tm tm;

        json_array_foreach(json_object_get(img, "tags"), j, x)
            if (n < sizeof(tags))
                n += (size_t)snprintf(tags + n, sizeof(tags) - n, "%s%s", n ? "," : "", json_string_value(x));
        json_array_foreach(json_object_get(img, "containers"), j, x)
            if (m < sizeof(used))
                m += (size_t)snprintf(used + m, sizeof(used) - m, "%s%s", m ? "," : "", json_string_value(x));
        if (t > 0 && gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        if (id && !strncmp(id, "sha256:", 7))
            id += 7;
        printf("%-19.12s %-40s %8.1f M %-20s %s\n", id ? id : "-", n ? tags : "<none>",
               (double)json_integer_value(json_object_get(img, "size")) / MIB, when, m ? used : "-");
    }
}

/* one line of a pull's progress */
static void progress_line(const json_t *p, char *out, size_t len)
{
    const char *status = json_string_value(json_object_get(p, "status"));
    snprintf(out, len, "%s: %.1f/%.1f MiB, %lld/%zu layers%s%s",
             json_string_value(json_object_get(p, "state")),
             (double)json_integer_value(json_object_get(p, "bytes_done")) / MIB,
             (double)json_integer_value(json_object_get(p, "bytes_total")) / MIB,
             (long long)json_integer_value(json_object_get(p, "layers_done")),
             json_array_size(json_object_get(p, "layers")), status && *status ? ", " : "",
             status ? status : "");
}

/* Follows pull id on server until it ends: a line updated in place on a
 * terminal, a line per change otherwise. 0 when it was pulled. */
static int follow(const char *base, const char *server, long long id, int as_json)
{
    char path[200], line[300], last[300] = "";
    int tty = isatty(STDOUT_FILENO), rc = 1;
    struct buf out;

    buf_init(&out, 4 << 20);
    snprintf(path, sizeof(path), "/api/v1/servers/%.64s/images/pulls/%lld", server, id);
    for (;;) {
        buf_reset(&out);
        long st = cli_request(base, "GET", path, NULL, &out);
        if (st != 200) {
            rc = cli_report(st, &out);
            break;
        }
        json_t *p = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        const char *state = json_string_value(json_object_get(p, "state"));
        int running = state && !strcmp(state, "running");
        progress_line(p, line, sizeof(line));
        if (!as_json && strcmp(line, last)) {
            printf(tty ? "\r\033[K%s" : "%s\n", line);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", line);
        }
        if (!running) {
            if (tty && !as_json)
                putchar('\n');
            if (as_json)
                printf("%s\n", out.data);
            rc = state && !strcmp(state, "done") ? 0 : 1;
            if (rc)
                fprintf(stderr, "gpufleet: the pull failed: %s\n",
                        json_string_value(json_object_get(p, "error")) ?: "no reason given");
            json_decref(p);
            break;
        }
        json_decref(p);
        usleep(POLL_MS * 1000);
    }
    buf_free(&out);
    return rc;
}

static int pull(const char *base, const char *server, const char *image, int as_json)
{
    char path[200];
    struct buf out;
    int rc;
    json_t *b = json_pack("{s:s}", "image", image);
    char *text = json_dumps(b, JSON_COMPACT);

    buf_init(&out, 4 << 20);
    snprintf(path, sizeof(path), "/api/v1/servers/%.64s/images/pull", server);
    long st = cli_request(base, "POST", path, text, &out);
    if (st != 202) {
        rc = cli_report(st, &out);
    } else {
        json_t *p = json_loadb(out.data, out.len, 0, NULL);
        rc = follow(base, server, (long long)json_integer_value(json_object_get(p, "id")), as_json);
        json_decref(p);
    }
    buf_free(&out);
    free(text);
    json_decref(b);
    return rc;
}

int cli_images(int argc, char **argv)
{
    int as_json = 0, rc = 2;
    char path[700];
    struct buf out;
    const char *base = cli_api_flags(&argc, &argv, &as_json);
    if (argc < 2 || !strcmp(argv[0], "--help")) {
        usage(argc >= 1 && !strcmp(argv[0], "--help") ? stdout : stderr);
        return argc >= 1 && !strcmp(argv[0], "--help") ? 0 : 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    buf_init(&out, 64 << 20);
    if (argc == 2 && (!strcmp(argv[0], "list") || !strcmp(argv[0], "pulls"))) {
        int list = !strcmp(argv[0], "list");
        snprintf(path, sizeof(path), "/api/v1/servers/%.64s/images%s", argv[1], list ? "" : "/pulls");
        long st = cli_request(base, "GET", path, NULL, &out);
        if (st != 200 || as_json || !list) {
            rc = cli_report(st, &out);
        } else {
            json_t *j = json_loadb(out.data, out.len, 0, NULL);
            print_images(j);
            json_decref(j);
            rc = 0;
        }
    } else if (argc == 3 && !strcmp(argv[0], "pull")) {
        rc = pull(base, argv[1], argv[2], as_json);
    } else if ((argc == 3 || argc == 4) && !strcmp(argv[0], "rm")) {
        int force = argc == 4 && !strcmp(argv[3], "--force");
        char *q = curl_easy_escape(NULL, argv[2], 0);
        if (argc == 4 && !force) {
            usage(stderr);
        } else {
            snprintf(path, sizeof(path), "/api/v1/servers/%.64s/images?image=%s%s", argv[1], q ? q : "",
                     force ? "&force=1" : "");
            rc = cli_report(cli_request(base, "DELETE", path, NULL, &out), &out);
        }
        curl_free(q);
    } else {
        usage(stderr);
    }
    buf_free(&out);
    curl_global_cleanup();
    return rc;
}
