/* Fuzzes every query-parameter parser of the server: selectors, times,
 * durations. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/api/api.h"
#include "../../src/server/store/selector.h"

static const char *get(void *arg, const char *name)
{
    (void)name;
    return arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct selector sel;
    char err[200];
    int64_t ms;

    memcpy(s, data, size);
    s[size] = '\0';
    if (sel_parse(s, &sel, err, sizeof(err)) == 0)
        sel_matches(&sel, get, "value");
    sel_free(&sel);
    timefmt_parse_time(s, &ms);
    timefmt_parse_duration(s, &ms);
    free(s);
    return 0;
}
