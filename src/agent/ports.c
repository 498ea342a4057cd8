/* /proc/net socket tables: "sl local_address rem_address st ...", with
 * addresses as HEXIP:HEXPORT. */
#include "ports.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "procfs.h"

#define MAX_PORTS 65536

size_t ports_parse(char *text, size_t len, int udp, uint16_t *out, size_t max)
{
    size_t pos = 0, n = 0;
    char *line = procfs_next_line(text, len, &pos); /* the header */

    while (line && (line = procfs_next_line(text, len, &pos))) {
        char *colon, *end;
        /* "  0: 0100007F:1F90 00000000:0000 0A ..." */
        char *local = strchr(line, ':');
        if (!local)
            continue;
        local++;
        while (*local == ' ')
            local++;
        colon = strchr(local, ':');
        if (!colon || colon - local > 32)
            continue;
        unsigned long port = strtoul(colon + 1, &end, 16);
        if (end == colon + 1 || *end != ' ' || port > 65535)
            continue;
        char *state = strchr(end + 1, ' '); /* past the remote address */
        if (!state)
            continue;
        while (*state == ' ')
            state++;
        if (strncmp(state, udp ? "07" : "0A", 2))
            continue;
        if (n < max)
            out[n] = (uint16_t)port;
        n++;
    }
    return n;
}

static int cmp_port(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static json_t *table(const char *proc_root, const char *v4, const char *v6, int udp,
                     uint16_t *ports)
{
    const char *files[2] = {v4, v6};
    struct buf b;
    size_t n = 0;
    json_t *out = json_array();

    buf_init(&b, PROCFS_MAX_BYTES);
    for (int i = 0; i < 2; i++) {
        if (procfs_read(proc_root, files[i], &b) < 0 || !b.len)
            continue;
        size_t got = ports_parse(b.data, b.len, udp, ports + n, MAX_PORTS - n);
        n += got < MAX_PORTS - n ? got : MAX_PORTS - n;
    }
    buf_free(&b);
    qsort(ports, n, sizeof(*ports), cmp_port);
    for (size_t i = 0; i < n; i++)
        if (!i || ports[i] != ports[i - 1])
            json_array_append_new(out, json_integer(ports[i]));
    return out;
}

json_t *ports_listening(const char *proc_root)
{
    uint16_t *ports = malloc(MAX_PORTS * sizeof(*ports));
    json_t *out;

    if (!ports)
        return json_pack("{s:[], s:[]}", "tcp", "udp");
    out = json_pack("{s:o, s:o}", "tcp", table(proc_root, "proc/net/tcp", "proc/net/tcp6", 0, ports),
                    "udp", table(proc_root, "proc/net/udp", "proc/net/udp6", 1, ports));
    free(ports);
    return out;
}
