/* Clocks: wall time for timestamps, monotonic time for intervals. */
#ifndef GF_NOW_H
#define GF_NOW_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t now_wall_ms(void);

/* Nanoseconds on CLOCK_MONOTONIC, for durations and schedules. */
int64_t now_mono_ns(void);

/* Nanoseconds of CPU time used by the calling thread. */
int64_t now_thread_cpu_ns(void);

/* Sleeps until the CLOCK_MONOTONIC instant deadline_ns; returns early on a
 * signal. */
void now_sleep_until_ns(int64_t deadline_ns);

#endif
