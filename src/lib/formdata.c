/* Form-encoded bodies. */
#include "formdata.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static int hex(int c)
{
    return (c >= '0' && c <= '9')   ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* n bytes decoded into a new string; its length (a %00 stays in). */
static char *decode(const char *s, size_t n, size_t *len)
{
    char *o = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '+') {
            o[k++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && (h = hex((unsigned char)s[i + 1])) >= 0 &&
                   (l = hex((unsigned char)s[i + 2])) >= 0) {
            o[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    *len = k;
    return o;
}

void form_parse(const char *s, size_t n,
                void (*fn)(void *arg, const char *name, const char *value, size_t len), void *arg)
{
    const char *end = s + n;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (eq) {
            size_t nl, vl;
            char *name = decode(s, (size_t)(eq - s), &nl);
            char *value = decode(eq + 1, (size_t)(e - eq - 1), &vl);
            if (strlen(name) == nl) /* a name with a NUL in it names nothing */
                fn(arg, name, value, vl);
            free(name);
            free(value);
        }
        s = e + 1;
    }
}
