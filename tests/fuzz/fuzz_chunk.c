/* Fuzzes the chunk decoder (stored BLOBs are trusted less than memory), and
 * re-encodes what decodes to check the round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/store/chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chunk_data c, back;
    char err[128];
    struct buf out;

    if (chunk_decode(data, size, &c, err, sizeof(err)) < 0)
        return 0;
    buf_init(&out, 0);
    if (chunk_encode(&c, 1, &out) == 0 && chunk_decode(out.data, out.len, &back, err, sizeof(err)) == 0) {
        if (back.nrows != c.nrows || back.ncols != c.ncols ||
            memcmp(back.values, c.values, c.nrows * c.ncols * sizeof(double)) ||
            memcmp(back.ts, c.ts, c.nrows * sizeof(int64_t)))
            abort();
        chunk_data_free(&back);
    }
    buf_free(&out);
    chunk_data_free(&c);
    return 0;
}
