/* Fuzzes the exposition parser in both modes and the canonical keys built
 * from what it accepts, the path every scraped byte takes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/promparse.h"
#include "../../src/server/ingest.h"

static int on_sample(void *arg, const struct prom_sample *s)
{
    ingest_batch_add(arg, s, NULL, 0, 1795000000000LL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct prom_error err;
    struct prom_limits lim = {.max_samples = 1000};

    for (int om = 0; om < 2; om++) {
        struct ingest_batch *b = ingest_batch_new();
        prom_parse((const char *)data, size, om, &lim, on_sample, b, &err);
        ingest_batch_free(b);
    }
    return 0;
}
