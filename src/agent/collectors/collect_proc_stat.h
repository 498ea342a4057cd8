/* /proc/stat: CPU time per CPU and mode, boot time, kernel counters. */
#ifndef GF_COLLECT_PROC_STAT_H
#define GF_COLLECT_PROC_STAT_H

#include <stddef.h>

enum cpu_mode {
    CPU_USER, CPU_NICE, CPU_SYSTEM, CPU_IDLE, CPU_IOWAIT, CPU_IRQ, CPU_SOFTIRQ, CPU_STEAL,
    CPU_GUEST, CPU_GUEST_NICE, CPU_MODES
};

struct cpu_times {
    int cpu;                   /* -1 for the "cpu" total line */
    double seconds[CPU_MODES]; /* in seconds */
};

struct proc_stat {
    struct cpu_times total;
    struct cpu_times *cpus;
    size_t ncpus;
    double boot_time_s, context_switches, interrupts, forks, procs_running, procs_blocked;
    int have_boot_time;
};

/* Parses /proc/stat text (modified in place) with ticks of 1/user_hz s.
 * out->cpus is malloc'd: free with proc_stat_free. Returns 0, or -1 when no
 * cpu line is found. */
int proc_stat_parse(char *text, size_t len, double user_hz, struct proc_stat *out);
void proc_stat_free(struct proc_stat *ps);

/* node_exporter's mode names, indexed by enum cpu_mode. */
extern const char *const cpu_mode_names[CPU_MODES];

#endif
