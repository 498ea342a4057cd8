/* Fuzzes the fleet file reader: the bytes up to the first NUL are the fleet
 * file, the rest its secrets file; a fleet read is then planned against a
 * small registry. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/server/fleetfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - text) : size;
    struct errinfo e;

    json_t *fleet = fleetfile_parse(text, len, nul ? nul + 1 : NULL, nul ? size - len - 1 : 0, &e);
    if (fleet) {
        json_t *reg = json_pack("[{s:s, s:s, s:i, s:{}}, {s:s, s:s, s:i, s:{s:s}}]", "name", "gpu-01", "address",
                                "10.0.0.1", "agent_port", 9445, "labels", "name", "old", "address", "10.0.0.9",
                                "agent_port", 9445, "labels", "rack", "r1");
        json_decref(fleetfile_plan(fleet, reg));
        json_decref(reg);
        json_decref(fleet);
    }
    return 0;
}
