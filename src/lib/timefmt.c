/* Time and duration parsing shared by the API, alerts and the CLI. */
#include "timefmt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int timefmt_parse_time(const char *s, int64_t *ms)
{
    char *end;
    double v;

    if (!s || !*s || strlen(s) > 40)
        return -1;
    if (isdigit((unsigned char)s[0]) && strchr(s, '-') == NULL) {
        v = strtod(s, &end);
        if (*end || !isfinite(v) || v < 0 || v > 1e11)
            return -1;
        *ms = (int64_t)llround(v * 1000.0);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    double frac = 0;
    if (*end == '.') {
        char *fe;
        frac = strtod(end, &fe);
        end = fe;
    }
    if (strcmp(end, "Z") != 0)
        return -1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ms = (int64_t)t * 1000 + (int64_t)llround(frac * 1000.0);
    return 0;
}

int timefmt_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
                 {"w", 604800000}, {"", 1000}};
    char *end;
    double v;

    if (!s || !*s || strlen(s) > 32 || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return -1;
    v = strtod(s, &end);
    if (!isfinite(v) || v <= 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit))
            continue;
        double r = v * units[i].ms;
        if (r < 1 || r > 1e13)
            return -1;
        *ms = (int64_t)llround(r);
        return 0;
    }
    return -1;
}

void timefmt_rfc3339(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    size_t l = strlen(out);
    snprintf(out + l, n - l, ".%03dZ", (int)(ms % 1000));
}
