/* The collector table: exposition order, one row per source. */
#include "collector.h"

extern const struct collector collect_proc_stat;
extern const struct collector collect_meminfo;
extern const struct collector collect_loadavg;
extern const struct collector collect_netdev;
extern const struct collector collect_diskstats;
extern const struct collector collect_filesystem;
extern const struct collector collect_uname;
extern const struct collector collect_nvml;
extern const struct collector collect_containers;

const struct collector *const collector_table[] = {
    &collect_proc_stat,  &collect_meminfo, &collect_loadavg, &collect_netdev,
    &collect_diskstats,  &collect_filesystem, &collect_uname, &collect_nvml,
    &collect_containers, /* after nvml: it reads the GPU process list */
};
const size_t collector_count = sizeof(collector_table) / sizeof(collector_table[0]);
