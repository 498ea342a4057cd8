/* Clocks: wall time for timestamps, monotonic time for intervals. */
#ifndef GF_NOW_H
#define GF_NOW_H

#include <pthread.h>
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

/* Initializes a condition variable whose timed waits count on
 * CLOCK_MONOTONIC, so a step of the wall clock never stalls a waiter. Every
 * timed wait in both binaries goes through these two. */
void now_cond_init(pthread_cond_t *c);

/* Waits on c (made by now_cond_init, m held) until signalled or until the
 * CLOCK_MONOTONIC instant deadline_ns; returns ETIMEDOUT once that is past,
 * else 0 (a wake, which may be spurious). */
int now_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ns);

#endif
