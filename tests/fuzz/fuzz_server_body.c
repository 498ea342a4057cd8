/* Fuzzes the REST bodies: server create/update through the registry's
 * validation into an in-memory database, a user's quota limits into an
 * in-memory containers database, and the server's settings file. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../src/server/containers.h"
#include "../../src/server/options.h"
#include "../../src/server/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct registry *reg;
    static struct ctr *ctr;
    static const struct ctr_config cfg = {.quota_containers = 10, .quota_gpus = 4};
    char err[256];
    json_error_t jerr;
    struct errinfo re;
    struct server_options o;

    if (!reg && !(reg = reg_open(":memory:", err, sizeof(err))))
        abort();
    if (!ctr && !(ctr = ctr_open(":memory:", NULL, &cfg, err, sizeof(err))))
        abort();
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (body) {
        json_t *out = reg_create(reg, body, &re);
        if (out) {
            json_int_t id = json_integer_value(json_object_get(out, "id"));
            json_decref(out);
            out = reg_update(reg, id, body, &re);
            json_decref(out);
            reg_delete(reg, id, &re);
        }
        if (ctr_quota_set(ctr, 7, "fuzz", body, &re) == 0) {
            json_decref(ctr_quotas(ctr));
            ctr_quota_delete(ctr, 7, &re);
        }
        json_decref(body);
    }
    server_options_init(&o);
    if (server_options_parse(&o, (const char *)data, size, err, sizeof(err)) == 0)
        server_options_finish(&o, err, sizeof(err));
    server_options_free(&o);
    return 0;
}
