/* Fuzzes the series key reader (keys come from the store's database, from
 * agents' history JSON and from anything keyed from an exporter): a key it
 * accepts must read back the same way through every entry point, and write
 * again (tsdb_key) to a key that reads to the same labels. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/store/serieskey.h"
#include "../../src/server/store/tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct serieskey k, again;
    char out[256];

    if (serieskey_parse((const char *)data, size, &k) < 0) {
        if (k.store || k.labels)
            abort();
        return 0;
    }
    for (size_t i = 0; i < k.nlabels; i++) {
        int n = serieskey_label((const char *)data, size, k.labels[i].name, out, sizeof(out));
        if (n < 0 || (size_t)n != k.labels[i].value_len)
            abort();
    }
    struct buf b;
    buf_init(&b, 0);
    serieskey_json(&k, &b);
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    if (!j)
        abort();
    json_decref(j);
    buf_reset(&b);
    /* empty values are not labels to tsdb_key, so compare those it keeps */
    if (k.nlabels <= PROM_MAX_LABELS_HARD &&
        tsdb_key(k.name, k.name_len, k.labels, k.nlabels, NULL, 0, &b) == 0) {
        if (serieskey_parse(b.data, b.len, &again) < 0)
            abort();
        for (size_t i = 0; i < k.nlabels; i++) {
            const char *v = serieskey_get(&again, k.labels[i].name);
            if (k.labels[i].value_len && (!v || strcmp(v, k.labels[i].value)))
                abort();
        }
        serieskey_free(&again);
    }
    buf_free(&b);
    serieskey_free(&k);
    return 0;
}
