/* Times and durations as people and APIs write them. */
#ifndef GF_TIMEFMT_H
#define GF_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Parses a time as Unix seconds (decimals allowed) or RFC 3339 in UTC
 * ("2026-01-02T03:04:05.678Z"); returns 0 and the time in ms, or -1. */
int timefmt_parse_time(const char *s, int64_t *ms);

/* Parses a duration: seconds ("15", "0.5") or with a unit (ms, s, m, h, d,
 * w); returns 0 and milliseconds (> 0), or -1. */
int timefmt_parse_duration(const char *s, int64_t *ms);

/* Writes ms since the epoch as RFC 3339 with milliseconds in UTC; a time at
 * or before the epoch is written as Go's zero time (0001-01-01T00:00:00Z),
 * as Alertmanager expects for "no end". */
void timefmt_rfc3339(int64_t ms, char *out, size_t n);

#endif
