/* Mounted filesystems: size, free and available space per real mount. */
#ifndef GF_COLLECT_FILESYSTEM_H
#define GF_COLLECT_FILESYSTEM_H

#include <stddef.h>

struct mount_entry {
    char device[256];
    char mountpoint[512];
    char fstype[64];
    int readonly;
};

/* Parses /proc/mounts text (modified in place), decoding \040-style escapes,
 * keeping only mounts node_exporter's defaults keep and dropping repeats of
 * the same device, mountpoint and type. Returns the number stored. */
size_t mounts_parse(char *text, size_t len, struct mount_entry *out, size_t max);

/* node_exporter 1.5's default exclusions. */
int mount_point_excluded(const char *mountpoint);
int fs_type_excluded(const char *fstype);

#endif
