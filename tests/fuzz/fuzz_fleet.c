/* Fuzzes the live fleet state on scraped series: each input line is a
 * series key and a value, as the store writer hands them over; the fleet
 * reads labels out of the keys, sums counters, and writes JSON deltas. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/fleet.h"
#include "../../src/server/store/serieskey.h"

static size_t pushed;

static void count(void *arg, const char *json, size_t len)
{
    (void)arg;
    (void)json;
    pushed += len;
}

static void add(struct ingest_batch *b, const char *key, size_t klen, double v, int64_t ts)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->items = realloc(b->items, b->cap * sizeof(*b->items));
    }
    b->items[b->n].key_off = b->keys.len;
    b->items[b->n].key_len = klen;
    b->items[b->n].ts_ms = ts;
    b->items[b->n].value = v;
    buf_append(&b->keys, key, klen);
    b->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fleet *f = fleet_new(count, NULL); /* its flusher sends the batch at free */
    char out[128];

    for (int round = 0; round < 2; round++) {
        struct ingest_batch *b = ingest_batch_new();
        b->is_scrape = 1;
        strcpy(b->job, "gpufleet-agent");
        strcpy(b->instance, "127.0.0.1:9445");
        b->scrape_ts_ms = 1000 + round * 1000;
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *line_end = nl ? nl : end;
            const char *sp = line_end;
            while (sp > p && sp[-1] != ' ')
                sp--;
            size_t klen = sp > p ? (size_t)(sp - p - 1) : (size_t)(line_end - p);
            char num[32];
            size_t nlen = (size_t)(line_end - sp) < sizeof(num) - 1 ? (size_t)(line_end - sp) : sizeof(num) - 1;
            memcpy(num, sp, nlen);
            num[nlen] = '\0';
            double v = strtod(num, NULL) * (round + 1);
            serieskey_label(p, klen, "UUID", out, sizeof(out));
            serieskey_label(p, klen, "server", out, 1);
            add(b, p, klen, v, b->scrape_ts_ms);
            p = line_end + (nl != NULL);
        }
        fleet_ingest(f, b);
        ingest_batch_free(b);
    }
    json_t *j = fleet_server_json(f, "h1");
    json_decref(j);
    fleet_forget(f, "h1");
    fleet_free(f);
    return 0;
}
