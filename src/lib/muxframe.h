/* The container engine's multiplexed stream (Docker's attach and logs
 * answers for containers without a TTY): frames of an 8-byte header
 * {stream, 0, 0, 0, length big-endian u32} and the payload. The agent
 * sends every log stream to the server in this framing (a TTY container's
 * raw stream wrapped as stdout), so the server tells stdout from stderr. */
#ifndef GF_MUXFRAME_H
#define GF_MUXFRAME_H

#include <stddef.h>
#include <stdint.h>

#define MUX_STDIN 0
#define MUX_STDOUT 1
#define MUX_STDERR 2

/* A decoder fed bytes as they arrive, in pieces of any size. */
struct mux_reader {
    unsigned char head[8];
    size_t have;      /* header bytes held */
    uint32_t left;    /* payload bytes still to come of the current frame */
    int stream;
    int failed;
};

/* Called with a piece of one frame's payload (a frame may come in several
 * pieces). Returns 0, or -1 to stop. */
typedef int (*mux_fn)(void *arg, int stream, const char *data, size_t len);

void mux_reader_init(struct mux_reader *r);

/* Feeds len bytes. 0, or -1 when the bytes are not a multiplexed stream
 * (a stream number above 2, nonzero padding: r stays failed) or fn
 * stopped. */
int mux_reader_feed(struct mux_reader *r, const char *data, size_t len, mux_fn fn, void *arg);

/* Whether the stream ended between frames (not inside one). */
int mux_reader_at_boundary(const struct mux_reader *r);

/* The header of a frame of len bytes on stream, into out. */
void mux_header(unsigned char out[8], int stream, uint32_t len);

#endif
