/* The data folder's lock (see datalock.h). */
#include "datalock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/now.h"

/* The pid the holder wrote, or "?" */
static void holder(int fd, char *pid, size_t len)
{
    ssize_t n = pread(fd, pid, len - 1, 0);
    pid[n > 0 ? n : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    if (!pid[0])
        snprintf(pid, len, "?");
}

int datalock_take(const char *dir, int wait_s, char *err, size_t errlen)
{
    char path[4200], pid[32];
    int said = 0;

    snprintf(path, sizeof(path), "%s/serve.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int64_t deadline = now_mono_ns() + (int64_t)wait_s * 1000000000LL;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        holder(fd, pid, sizeof(pid));
        if (now_mono_ns() >= deadline) {
            snprintf(err, errlen, "a gpufleet server (pid %s) serves %s%s", pid, dir,
                     wait_s ? ": it did not stop in time" : ": stop it first");
            goto fail;
        }
        if (!said++)
            log_info("waiting for the server still serving %s (pid %s) to stop", dir, pid);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (ftruncate(fd, 0) == 0)
        dprintf(fd, "%d\n", (int)getpid());
    return fd;
fail:
    close(fd);
    return -1;
}
