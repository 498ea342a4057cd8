/* Helpers shared by the unit tests. */
#ifndef GF_TESTUTIL_H
#define GF_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Reads FIXTURES/rel into a malloc'd, NUL-terminated buffer; fails the test
 * when it cannot. */
static inline char *fixture(const char *rel, size_t *len)
{
    char path[1024];
    FILE *f;
    char *data;
    long n;

    snprintf(path, sizeof(path), "%s/%s", FIXTURES, rel);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n)
        fail_msg("short read of %s", path);
    data[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return data;
}


/* A fresh folder for a group's files: cmocka's group setup and teardown
 * (tmpdir_setup, tmpdir_teardown), its path in tmpdir. */
static char tmpdir[64];

static inline int tmpdir_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gf-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static inline int tmpdir_teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd);
}

#endif
