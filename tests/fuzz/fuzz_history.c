/* Fuzzes the parser of an agent's /api/v1/history answer, which the server
 * reads during backfill. */
#include <stdint.h>
#include <stdlib.h>

#include "../../src/server/scrape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch *b = ingest_batch_new();
    char err[256];
    struct prom_label extra[1] = {{"job", 3, "agent", 5}};

    scrape_parse_history((const char *)data, size, extra, 1, b, err, sizeof(err));
    ingest_batch_free(b);
    return 0;
}
