/* Fuzzes an agent's log stream as the server reads it: the engine's
 * multiplexed frames, fed in pieces, and their text made JSON (which must
 * always parse). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/muxframe.h"
#include "../../src/server/ctrsession.h"

static int to_json(void *arg, int stream, const char *data, size_t len)
{
    struct buf *b = arg;
    (void)stream;
    buf_reset(b);
    buf_putc(b, '"');
    ctrsession_json_text(b, (const unsigned char *)data, len, 1);
    buf_putc(b, '"');
    json_t *j = json_loadb(b->data, b->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j)
        abort(); /* the browser would get a message it cannot read (a NUL is
                  * \u0000, which JSON.parse takes) */
    json_decref(j);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mux_reader r;
    struct buf b;
    buf_init(&b, 0);
    /* the first byte says how the stream is cut into pieces */
    size_t step = size ? (size_t)data[0] % 17 + 1 : 1;
    mux_reader_init(&r);
    for (size_t i = 1; i < size; i += step)
        if (mux_reader_feed(&r, (const char *)data + i, step < size - i ? step : size - i, to_json, &b) < 0)
            break;
    buf_free(&b);
    return 0;
}
