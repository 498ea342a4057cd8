/* Pseudo-files report size 0, so they are read until EOF into a bounded
 * buffer rather than by their stat size. */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int procfs_path(char *dst, size_t cap, const char *root, const char *rel)
{
    int n;

    if (!root || !*root || !strcmp(root, "/"))
        n = snprintf(dst, cap, "/%s", rel[0] == '/' ? rel + 1 : rel);
    else
        n = snprintf(dst, cap, "%s/%s", root, rel[0] == '/' ? rel + 1 : rel);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int procfs_read(const char *root, const char *rel, struct buf *out)
{
    char path[4096], chunk[16384];
    int fd;

    buf_reset(out);
    if (procfs_path(path, sizeof(path), root, rel) < 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > PROCFS_MAX_BYTES) {
            close(fd);
            errno = E2BIG;
            return -1;
        }
        buf_append(out, chunk, (size_t)n);
    }
    close(fd);
    if (!out->data)
        buf_append(out, "", 0);
    return 0;
}

char *procfs_next_line(char *text, size_t len, size_t *pos)
{
    char *line, *nl;

    if (*pos >= len)
        return NULL;
    line = text + *pos;
    nl = memchr(line, '\n', len - *pos);
    if (nl) {
        *nl = '\0';
        *pos = (size_t)(nl - text) + 1;
    } else {
        *pos = len;
    }
    return line;
}
