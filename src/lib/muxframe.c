/* Docker's stdcopy framing, decoded incrementally: a frame's payload is
 * passed on as it arrives, so a 1 GB frame needs no 1 GB buffer. */
#include "muxframe.h"

#include <string.h>

void mux_reader_init(struct mux_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void mux_header(unsigned char out[8], int stream, uint32_t len)
{
    out[0] = (unsigned char)stream;
    out[1] = out[2] = out[3] = 0;
    out[4] = (unsigned char)(len >> 24);
    out[5] = (unsigned char)(len >> 16);
    out[6] = (unsigned char)(len >> 8);
    out[7] = (unsigned char)len;
}

/* A complete header in r->head: checks it and starts its frame. */
static int start_frame(struct mux_reader *r)
{
    const unsigned char *h = r->head;
    if (h[0] > MUX_STDERR || h[1] || h[2] || h[3])
        return -1;
    r->stream = h[0];
    r->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    r->have = 0;
    return 0;
}

int mux_reader_feed(struct mux_reader *r, const char *data, size_t len, mux_fn fn, void *arg)
{
    if (r->failed)
        return -1;
    while (len > 0) {
        if (r->left == 0) {
            size_t take = 8 - r->have < len ? 8 - r->have : len;
            memcpy(r->head + r->have, data, take);
            r->have += take;
            data += take;
            len -= take;
            if (r->have == 8 && start_frame(r) < 0)
                goto fail;
            continue;
        }
        size_t take = r->left < len ? r->left : len;
        if (fn(arg, r->stream, data, take) < 0)
            goto fail;
        r->left -= (uint32_t)take;
        data += take;
        len -= take;
    }
    return 0;
fail:
    r->failed = 1;
    return -1;
}

int mux_reader_at_boundary(const struct mux_reader *r)
{
    return !r->failed && r->left == 0 && r->have == 0;
}
