/* Fuzzes the sample log's reader: after a crash the server replays segment
 * files that may be torn or damaged; every record it hands on must be
 * well-formed (keys and labels as long as said, a seal naming a head). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/store/samplelog.h"

static void on_group(void *arg, uint64_t id, const char *job, const char *instance)
{
    (void)arg;
    (void)id;
    if (strlen(job) > 1 << 26 || strlen(instance) > 1 << 26)
        abort();
}

static void on_series(void *arg, uint64_t id, uint64_t gid, const char *key, size_t len)
{
    volatile char sink = 0;
    (void)arg;
    (void)id;
    (void)gid;
    for (size_t i = 0; i < len; i++)
        sink ^= key[i]; /* ASan checks the length said is there */
    (void)sink;
}

static void on_sample(void *arg, uint64_t id, int64_t ts, double v)
{
    (void)arg;
    (void)id;
    (void)ts;
    (void)v;
}

static void on_seal(void *arg, uint64_t gid, int which)
{
    (void)arg;
    (void)gid;
    if (which < 0 || which > SLOG_OOO)
        abort();
}

static void on_commit(void *arg)
{
    (void)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct slog_ops ops = {on_group, on_series, on_sample, on_seal, on_commit};
    uint64_t records = 0, samples = 0;
    size_t used = slog_decode(data, size, &ops, NULL, &records, &samples);
    if (used > size)
        abort();
    /* and the record decoders behind the checksum: first byte the type */
    if (size)
        slog_decode_record(data[0], data + 1, size - 1, &ops, NULL, &samples);
    return 0;
}
