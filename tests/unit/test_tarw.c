/* Tests for src/lib/tarw.c: a tree written as a tar is what GNU tar reads
 * back (names over 100 bytes, links kept as links, .git left out, sorted),
 * and headers that cannot hold a name are refused. */
#include "testutil.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/lib/tarw.h"

static void run(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

static void tree_reads_back(void **state)
{
    char dir[] = "/tmp/tarw-XXXXXX", cmd[600], err[200], tarpath[300];
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "cd %s && mkdir -p src/.git/objects 'src/b dir' && echo x > src/.git/HEAD && printf 'FROM a\\n' > src/Dockerfile"
             " && printf 'hi' > 'src/b dir/été.txt' && ln -s ../../etc/passwd src/escape && chmod 755 src/Dockerfile"
             " && head -c 70000 /dev/urandom > src/big.bin",
             dir);
    run(cmd);
    /* a path of 140 bytes: ustar's prefix holds the folders */
    snprintf(cmd, sizeof(cmd), "cd %s/src && mkdir -p %0100d && echo deep > %0100d/%039d", dir, 0, 0, 0);
    run(cmd);
    snprintf(cmd, sizeof(cmd), "%s/src", dir);
    snprintf(tarpath, sizeof(tarpath), "%s/out.tar", dir);
    FILE *f = fopen(tarpath, "w");
    assert_int_equal(tarw_tree(f, cmd, ".git", 0, err, sizeof(err)), 0);
    assert_int_equal(tarw_end(f), 0);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd %s && tar -tf out.tar > list && mkdir x && tar -xf out.tar -C x", dir);
    run(cmd);
    snprintf(cmd, sizeof(cmd),
             "cd %s && ! grep -q .git list && cmp src/big.bin x/big.bin && [ \"$(cat 'x/b dir/été.txt')\" = hi ]"
             " && [ \"$(readlink x/escape)\" = ../../etc/passwd ] && [ -x x/Dockerfile ]"
             " && [ \"$(cat x/%0100d/%039d)\" = deep ] && LC_ALL=C sort -c list",
             dir, 0, 0);
    run(cmd);
    /* a bound: the archive stops past it, saying so */
    f = tmpfile();
    snprintf(cmd, sizeof(cmd), "%s/src", dir);
    assert_int_equal(tarw_tree(f, cmd, ".git", 1000, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "over"));
    fclose(f);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    run(cmd);
}

static void headers_refuse_what_does_not_fit(void **state)
{
    char h[TARW_BLOCK], name[400];
    (void)state;
    assert_int_equal(tarw_header(h, "a/b.txt", TARW_FILE, 0644, 12, 1700000000, NULL), 0);
    assert_string_equal(h, "a/b.txt");
    assert_int_equal(h[156], '0');
    assert_memory_equal(h + 257, "ustar", 6);
    /* one name of 120 bytes without a '/': nowhere to cut */
    memset(name, 'n', 120);
    name[120] = 0;
    assert_int_equal(tarw_header(h, name, TARW_FILE, 0644, 1, 0, NULL), -1);
    assert_int_equal(tarw_header(h, "", TARW_FILE, 0644, 1, 0, NULL), -1);
    assert_int_equal(tarw_header(h, "x", TARW_FILE, 0644, -1, 0, NULL), -1);
    memset(name, 'l', 101);
    name[101] = 0;
    assert_int_equal(tarw_header(h, "x", TARW_SYMLINK, 0777, 0, 0, name), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_reads_back),
        cmocka_unit_test(headers_refuse_what_does_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
