/* Fuzzes the alert rules file: YAML into JSON, then every rule's checks,
 * and the templates of the annotations; and the same bytes as a body of
 * notification routes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/yamljson.h"
#include "../../src/server/alerts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct errinfo e;
    char err[256];

    alert_rules_check_yaml((const char *)data, size, &e);
    /* the same bytes as a routes body (PUT /api/v1/alerts/routes) */
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, 0, &jerr);
    if (body) {
        json_t *names = json_pack("[s, s]", "pager", "team-x");
        alert_routes_check(body, names, &e);
        json_decref(names);
        json_decref(body);
    }
    json_t *j = yaml_to_json((const char *)data, size, err, sizeof(err));
    if (j) {
        char *s = malloc(size + 1);
        memcpy(s, data, size);
        s[size] = '\0';
        char *t = alert_template(s, json_object_get(j, "labels"), 1.5);
        free(t);
        free(s);
        json_decref(j);
    }
    return 0;
}
