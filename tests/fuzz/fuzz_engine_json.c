/* Fuzzes the agent's readers of a container engine's answers (container
 * list, inspect, stats, image list, a pull's progress stream in two
 * chunks cut anywhere, /system/df read as a cleanup plan, a folder's
 * listing from inside a container) and of /proc/net socket tables: an
 * engine or a proc file is outside input like any other. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/agent/cleanup.h"
#include "../../src/agent/engine.h"
#include "../../src/agent/files.h"
#include "../../src/agent/images.h"
#include "../../src/agent/ports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct errinfo e;
    json_decref(engine_list_from_json((const char *)data, size, &e));
    json_decref(engine_inspect_from_json((const char *)data, size, &e));
    json_decref(engine_stats_from_json((const char *)data, size, &e));
    json_t *users = json_pack("[{s:s, s:s}]", "name", "c", "image_id", "sha256:0");
    json_decref(images_list_from_json((const char *)data, size, users, &e));
    json_t *imgs = json_pack("[{s:s,s:[s]}]", "Id", "sha256:0", "RepoTags", "a:1");
    json_decref(cleanup_plan_from_df((const char *)data, size, users, imgs, 15, &e));
    json_decref(imgs);
    json_decref(files_parse_listing((const char *)data, size, "/"));
    json_decref(users);
    struct pullprog *p = pullprog_new();
    size_t cut = size ? data[0] % size : 0;
    pullprog_feed(p, (const char *)data, cut);
    pullprog_feed(p, (const char *)data + cut, size - cut);
    json_decref(pullprog_json(p));
    pullprog_free(p);
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
