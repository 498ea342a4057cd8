/* Fuzzes the agent's query-parameter parsing: the input is split at the
 * first NUL into "since" and "until" values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/agent/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 2);
    struct history_params p;
    const char *field = NULL, *until = NULL;
    char err[160];

    memcpy(copy, data, size);
    copy[size] = copy[size + 1] = '\0';
    size_t first = strlen(copy);
    if (first < size)
        until = copy + first + 1;
    api_parse_history_params(copy, until, 1795000000000LL, 600000, &p, &field, err, sizeof(err));
    api_parse_history_params(NULL, copy, 1795000000000LL, 600000, &p, &field, err, sizeof(err));
    free(copy);
    return 0;
}
