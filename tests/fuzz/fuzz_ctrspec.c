/* Fuzzes container requests: the input is a JSON body, read as a user's
 * create request and as the agent's form; what parses must survive the
 * agent's form's round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/ctrspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    struct ctrspec s, t;
    struct errinfo e;

    for (int form = 0; form < 2; form++) {
        if (ctrspec_parse(j, form ? CTRSPEC_AGENT : CTRSPEC_USER, &s, &e) == 0 && form) {
            json_t *again = ctrspec_agent_json(&s);
            if (ctrspec_parse(again, CTRSPEC_AGENT, &t, &e) != 0)
                abort(); /* what the server sends, the agent must take */
            ctrspec_free(&t);
            json_decref(again);
        }
        ctrspec_free(&s);
    }
    json_decref(j);
    /* the text checks on their own */
    char text[300];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    int64_t b;
    ctrspec_parse_memory(text, &b);
    ctrspec_valid_image(text);
    ctrspec_valid_name(text);
    ctrspec_valid_uuid(text);
    ctrspec_valid_git_url(text);
    char url[1100], ref[300], folder[1100];
    struct errinfo ge;
    if (ctrspec_git_split(text, "git", url, sizeof(url), ref, sizeof(ref), folder, sizeof(folder), &ge) == 0 &&
        (!strcmp(folder, "..") || !strncmp(folder, "../", 3) || strstr(folder, "/../") || strstr(ref, "..") ||
         strchr(url, '#') || folder[0] == '/'))
        abort(); /* what passes never climbs out */
    ctrspec_valid_path(text, 1);
    char enc[1000];
    ctrspec_url_path(text, enc, sizeof(enc));
    return 0;
}
