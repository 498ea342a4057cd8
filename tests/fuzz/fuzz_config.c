/* Fuzzes the YAML settings loader through the agent's settings table. */
#include <stddef.h>
#include <stdint.h>

#include "../../src/agent/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_options o;
    char err[256];

    agent_options_init(&o);
    if (agent_options_parse(&o, (const char *)data, size, err, sizeof(err)) == 0)
        agent_options_finish(&o, err, sizeof(err));
    agent_options_free(&o);
    return 0;
}
