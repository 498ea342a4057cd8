/* Fuzzes what the HTTP glue parses from clients and configs: listen
 * addresses and Accept-Encoding values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char host[128], err[160];
    unsigned port;

    memcpy(s, data, size);
    s[size] = '\0';
    http_parse_listen(s, host, sizeof(host), &port, err, sizeof(err));
    http_gzip_acceptable(s);
    free(s);
    return 0;
}
