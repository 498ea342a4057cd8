/* stderr logger: one line per call, written with a single write so lines from
 * threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

int log_level_parse(const char *name, enum log_level *level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};

    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *level = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                          names[level]);
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}
