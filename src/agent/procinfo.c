/* Process details for GPU processes. Container ids come from cgroup paths
 * because that is where every engine leaves them. */
#include "procinfo.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "procfs.h"

static int is_hex64(const char *p)
{
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
            return 0;
    return !isxdigit((unsigned char)p[64]);
}

void procinfo_container_id(const char *text, char out[65])
{
    out[0] = '\0';
    /* the last 64-hex run on a line is the innermost container; scan every
     * line and keep the last found (v2 has one line, v1 several alike) */
    for (const char *p = text; *p; p++) {
        if (p != text && isxdigit((unsigned char)p[-1]))
            continue;
        if (strlen(p) >= 64 && is_hex64(p)) {
            memcpy(out, p, 64);
            out[64] = '\0';
            p += 63;
        }
    }
}

static void read_small(const char *root, const char *rel, char *dst, size_t cap)
{
    struct buf b;

    dst[0] = '\0';
    buf_init(&b, 0);
    if (procfs_read(root, rel, &b) == 0 && b.len) {
        snprintf(dst, cap, "%s", b.data);
        dst[strcspn(dst, "\n")] = '\0';
    }
    buf_free(&b);
}

void procinfo_read(const char *root, pid_t pid, struct procinfo *info)
{
    char rel[64];
    struct buf b;

    memset(info, 0, sizeof(*info));
    snprintf(rel, sizeof(rel), "proc/%d/comm", (int)pid);
    read_small(root, rel, info->name, sizeof(info->name));

    buf_init(&b, 0);
    snprintf(rel, sizeof(rel), "proc/%d/status", (int)pid);
    if (procfs_read(root, rel, &b) == 0) {
        const char *uid = strstr(b.data, "\nUid:");
        if (uid) {
            unsigned long u = strtoul(uid + 5, NULL, 10);
            struct passwd pw, *res = NULL;
            char pwbuf[1024];
            if (getpwuid_r((uid_t)u, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
                snprintf(info->user, sizeof(info->user), "%s", pw.pw_name);
            else
                snprintf(info->user, sizeof(info->user), "%lu", u);
        }
    }
    snprintf(rel, sizeof(rel), "proc/%d/cgroup", (int)pid);
    if (procfs_read(root, rel, &b) == 0)
        procinfo_container_id(b.data, info->container_id);
    buf_free(&b);
}
