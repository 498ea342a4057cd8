/* Base64 encoding (see base64.h). */
#include "base64.h"

#include <stdint.h>
#include <string.h>

static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_is_letter(char c)
{
    return c && strchr(letters, c) != NULL;
}

int base64_encode(const void *data, size_t n, int flags, char *out, size_t outlen)
{
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *l = flags & BASE64_URL ? url : letters;
    const unsigned char *d = data;
    int pad = (flags & BASE64_PAD) != 0;
    size_t o = 0;

    if (outlen < (n + 2) / 3 * 4 + 1)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        out[o++] = l[(v >> 18) & 63];
        out[o++] = l[(v >> 12) & 63];
        if (i + 1 < n || pad)
            out[o++] = i + 1 < n ? l[(v >> 6) & 63] : '=';
        if (i + 2 < n || pad)
            out[o++] = i + 2 < n ? l[v & 63] : '=';
    }
    out[o] = '\0';
    return (int)o;
}
