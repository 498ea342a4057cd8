/* Fuzzes what users send about apps: an install request (alone, and over
 * a template made from the same input), a template, and a templates file
 * (ours or Portainer's). What parses must hold: a stored app makes a
 * container body the containers module takes, a template checked once
 * checks again the same, and the compose file of the container has only
 * the keys gpufleet writes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/agent/compose.h"
#include "../../src/lib/ctrspec.h"
#include "../../src/server/appspec.h"

/* Each line of a compose file is one of ours: a value never starts a line. */
static void check_compose(const char *text)
{
    for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
        if (*l == '#' || *l == '\n')
            continue;
        if (strncmp(l, "services:", 9) && strncmp(l, "  ", 2))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    struct appspec_defaults d = {.image = "nvcr.io/nvidia/pytorch:24.10-py3", .health_timeout_s = 900};
    struct errinfo e;
    json_t *app = NULL, *ctr = NULL, *skipped = NULL;

    json_t *tpl = appspec_template(j, &e);
    if (tpl) {
        json_t *again = appspec_template(tpl, &e);
        if (!again || !json_equal(again, tpl))
            abort(); /* a checked template is a fixed point */
        json_decref(again);
    }
    if (appspec_parse(j, tpl, &d, &app, &ctr, &e) == 0) {
        struct ctrspec s;
        if (ctrspec_parse(ctr, CTRSPEC_USER, &s, &e) != 0)
            abort(); /* its container is one the containers module takes */
        snprintf(s.app, sizeof(s.app), "%s", json_string_value(json_object_get(app, "name")));
        snprintf(s.owner, sizeof(s.owner), "fuzz");
        struct buf text;
        buf_init(&text, 0);
        compose_text(&s, "/opt/dockerstore/x", &text);
        check_compose(text.data ? text.data : "");
        buf_free(&text);
        ctrspec_free(&s);
        json_t *t = appspec_template_of(app, "from-app", "From an app");
        json_decref(appspec_template(t, &e));
        json_decref(t);
        json_decref(app);
        json_decref(ctr);
    }
    json_t *list = appspec_templates_import(j, &skipped, &e);
    json_decref(list);
    json_decref(skipped);
    json_decref(tpl);
    json_decref(j);
    char text[1200];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    appspec_check_repository(text, "repository", &e);
    return 0;
}
