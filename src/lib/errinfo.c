/* The shared input-error type. */
#include "errinfo.h"

#include <stdarg.h>
#include <stdio.h>

void errinfo_set(struct errinfo *e, int status, const char *code, const char *field,
                 const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    e->status = status;
    e->code = code;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}
