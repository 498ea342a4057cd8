/* `gpufleet prometheus-config`: the scrape configuration an existing
 * Prometheus needs to scrape the fleet, from the registry in DATA. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "promsd.h"
#include "registry.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpufleet prometheus-config [--data DIR] [--url URL] [--sd-token-file FILE]\n"
            "                                  [--interval DURATION] [--tokens auto|all|none]\n"
            "  --url URL            gpufleet as Prometheus reaches it (default $GPUFLEET_URL\n"
            "                       or http://127.0.0.1:%d)\n"
            "  --sd-token-file FILE where Prometheus finds a viewer API token for the\n"
            "                       service discovery (default /etc/prometheus/gpufleet.token)\n"
            "  --interval DURATION  scrape interval (default 15s)\n"
            "  --tokens auto|all|none  which agents Prometheus scrapes with their bearer\n"
            "                       token, in a job of their own: auto (the default) asks\n"
            "                       each agent's /metrics without one and takes those that\n"
            "                       refuse (metrics_need_token); the output then holds\n"
            "                       those tokens\n"
            "DIR defaults to $GPUFLEET_DATA or ./data\n",
            SERVER_DEFAULT_PORT);
}

/* The interval as Prometheus reads it: digits and a unit, ms s m h. */
static int valid_interval(const char *s)
{
    size_t d = strspn(s, "0123456789");
    return d > 0 && d < 8 && (!strcmp(s + d, "ms") || !strcmp(s + d, "s") || !strcmp(s + d, "m") ||
                              !strcmp(s + d, "h"));
}

static int with_token; /* how many jobs carry a token, for the warning */

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* Asks the agent's /metrics without a token: 401/403 is an agent run with
 * metrics_need_token. One that does not answer is left to the SD job (said
 * on stderr): its token would be a guess. */
static int refuses_without_token(void *arg, const struct reg_target *t)
{
    CURL *e = curl_easy_init();
    long status = 0;
    (void)arg;
    if (!e)
        return 0;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "gpufleet: %s (server %s): %s; left to the SD job\n", t->url, t->server,
                curl_easy_strerror(cc));
    curl_easy_cleanup(e);
    with_token += status == 401 || status == 403;
    return status == 401 || status == 403;
}

static int always(void *arg, const struct reg_target *t)
{
    (void)arg;
    (void)t;
    with_token++;
    return 1;
}

int cli_prometheus_config(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},      {"url", required_argument, NULL, 'u'},
        {"sd-token-file", required_argument, NULL, 't'}, {"interval", required_argument, NULL, 'i'},
        {"tokens", required_argument, NULL, 'k'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = getenv("GPUFLEET_DATA") ? getenv("GPUFLEET_DATA") : "data";
    const char *base = getenv("GPUFLEET_URL");
    char defbase[64], sd_url[2200], path[4200], err[512];
    struct promsd_config c = {.sd_token_file = "/etc/prometheus/gpufleet.token", .scrape_interval = "15s"};
    const char *tokens = "auto";
    int opt;

    snprintf(defbase, sizeof(defbase), "http://127.0.0.1:%d", SERVER_DEFAULT_PORT);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'd')
            dir = optarg;
        else if (opt == 'u')
            base = optarg;
        else if (opt == 't')
            c.sd_token_file = optarg;
        else if (opt == 'i')
            c.scrape_interval = optarg;
        else if (opt == 'k')
            tokens = optarg;
        else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (!strcmp(tokens, "auto"))
        c.needs_token = refuses_without_token;
    else if (!strcmp(tokens, "all"))
        c.needs_token = always;
    else if (strcmp(tokens, "none")) {
        fprintf(stderr, "gpufleet: --tokens: auto, all or none\n");
        return 2;
    }
    if (optind < argc || !valid_interval(c.scrape_interval)) {
        fprintf(stderr, optind < argc ? "gpufleet: unexpected argument '%s'\n"
                                      : "gpufleet: --interval: a duration like 15s or 1m%.0s\n",
                optind < argc ? argv[optind] : "");
        return 2;
    }
    base = base && *base ? base : defbase;
    if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8)) {
        fprintf(stderr, "gpufleet: --url: http:// or https:// and the server's address\n");
        return 2;
    }
    size_t blen = strcspn(base, "?#");
    while (blen > 8 && base[blen - 1] == '/')
        blen--;
    snprintf(sd_url, sizeof(sd_url), "%.*s/api/v1/prometheus/sd", (int)blen, base);
    c.sd_url = sd_url;
    snprintf(path, sizeof(path), "%s/gpufleet.db", dir);
    if (access(path, R_OK) < 0) {
        fprintf(stderr, "gpufleet: no fleet database at %s (--data DIR)\n", path);
        return 1;
    }
    struct registry *r = reg_open(path, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "gpufleet: %s\n", err);
        return 1;
    }
    int rc = promsd_write_config(stdout, r, &c);
    if (with_token)
        fprintf(stderr, "gpufleet: the configuration holds the bearer tokens of %d agent(s): keep it owner-only\n",
                with_token);
    reg_close(r);
    return rc < 0 ? 1 : 0;
}
