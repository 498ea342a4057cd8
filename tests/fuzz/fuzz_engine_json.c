/* Fuzzes the agent's readers of a container engine's answers (container
 * list, inspect, stats) and of /proc/net socket tables: an engine or a
 * proc file is outside input like any other. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/agent/engine.h"
#include "../../src/agent/ports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct errinfo e;
    json_decref(engine_list_from_json((const char *)data, size, &e));
    json_decref(engine_inspect_from_json((const char *)data, size, &e));
    json_decref(engine_stats_from_json((const char *)data, size, &e));
    char *text = malloc(size + 1);
    uint16_t ports[64];
    memcpy(text, data, size);
    text[size] = '\0';
    ports_parse(text, size, size & 1, ports, 64);
    memcpy(text, data, size);
    engine_valid_id(text);
    free(text);
    return 0;
}
