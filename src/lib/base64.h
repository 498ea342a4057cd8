/* Base64 (RFC 4648, the standard alphabet) for the few places that write
 * it: WebSocket handshakes, SSH host key fingerprints, registry auth. */
#ifndef GF_BASE64_H
#define GF_BASE64_H

#include <stddef.h>

enum base64_flags {
    BASE64_PAD = 1, /* '=' to a multiple of 4 (not in OpenSSH's fingerprints) */
    BASE64_URL = 2, /* '-' and '_' for '+' and '/' (the engines' X-Registry-Auth) */
};

/* Writes n bytes of data as base64 into out (NUL-terminated), as flags
 * say. Returns the length written, or -1 when outlen is too small
 * (4 * ceil(n / 3) + 1 is always enough). */
int base64_encode(const void *data, size_t n, int flags, char *out, size_t outlen);

/* 1 when c is one of the 64 letters of the alphabet. */
int base64_is_letter(char c);

#endif
