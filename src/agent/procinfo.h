/* What /proc says about a process: its name, its user and, when it runs in
 * a container, the container's id. */
#ifndef GF_AGENT_PROCINFO_H
#define GF_AGENT_PROCINFO_H

#include <stddef.h>
#include <sys/types.h>

struct procinfo {
    char name[64];          /* comm; "" when the process is gone or hidden */
    char user[64];          /* user name, or the numeric uid */
    char container_id[65];  /* 64 hex digits, or "" outside containers */
};

/* Finds the container id in /proc/PID/cgroup text: the 64-hex-digit id in
 * docker, podman (libpod), containerd and CRI-O cgroup paths, for cgroup v1
 * and v2. Writes "" when there is none. */
void procinfo_container_id(const char *cgroup_text, char out[65]);

/* Fills info for pid from root's /proc. Never fails: unknown parts are "". */
void procinfo_read(const char *root, pid_t pid, struct procinfo *info);

#endif
