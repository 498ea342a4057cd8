/* Tests for the /proc collectors' parsers (src/agent/collectors/collect_*.c)
 * against files captured on a real Debian 12 VM, plus lines real machines
 * print that this VM lacks (partitions, NVMe, escaped mount points). */
#include <math.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/agent/collectors/collect_diskstats.h"
#include "../../src/agent/collectors/collect_filesystem.h"
#include "../../src/agent/collectors/collect_meminfo.h"
#include "../../src/agent/collectors/collect_netdev.h"
#include "../../src/agent/collectors/collect_proc_stat.h"
#include "../../src/agent/procinfo.h"

#define VM "proc/debian12-vm/proc/"

static void proc_stat_per_cpu_and_mode(void **state)
{
    size_t len;
    char *text = fixture(VM "stat", &len);
    struct proc_stat ps;

    (void)state;
    assert_int_equal(proc_stat_parse(text, len, 100.0, &ps), 0);
    assert_int_equal(ps.ncpus, 2);
    assert_int_equal(ps.cpus[0].cpu, 0);
    assert_int_equal(ps.cpus[1].cpu, 1);
    assert_true(ps.have_boot_time);
    assert_true(ps.boot_time_s > 1.5e9);
    /* the total line is the sum of the per-CPU lines */
    for (int m = 0; m < CPU_MODES; m++)
        assert_true(fabs(ps.total.seconds[m] - ps.cpus[0].seconds[m] - ps.cpus[1].seconds[m]) <
                    0.02 + 1e-9);
    assert_true(ps.cpus[0].seconds[CPU_IDLE] > 0);
    assert_true(ps.context_switches > 0);
    proc_stat_free(&ps);
    free(text);
}

static void proc_stat_scales_ticks(void **state)
{
    char text[] = "cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\nbtime 1700000000\n";
    struct proc_stat ps;

    (void)state;
    assert_int_equal(proc_stat_parse(text, strlen(text), 100.0, &ps), 0);
    assert_true(ps.cpus[0].seconds[CPU_USER] == 1.0);
    assert_true(ps.cpus[0].seconds[CPU_IDLE] == 10.0);
    assert_true(ps.boot_time_s == 1700000000.0);
    proc_stat_free(&ps);
    char bad[] = "intr 1 2 3\nnonsense\n";
    assert_int_equal(proc_stat_parse(bad, strlen(bad), 100.0, &ps), -1);
    proc_stat_free(&ps);
}

static void meminfo_names_like_node_exporter(void **state)
{
    size_t len;
    char *text = fixture(VM "meminfo", &len);
    struct meminfo_field f[128];
    size_t n;

    (void)state;
    n = meminfo_parse(text, len, f, 128);
    assert_true(n > 40);
    double total = meminfo_get(f, n, "MemTotal");
    assert_true(total > 1e9);
    assert_true(fmod(total, 1024.0) == 0); /* kB scaled to bytes */
    assert_true(meminfo_get(f, n, "Active_anon") >= 0); /* "Active(anon)" */
    assert_true(meminfo_get(f, n, "MemAvailable") <= total);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, "HugePages_Total"))
            assert_false(f[i].has_unit); /* a count: no _bytes suffix */
    free(text);
}

static void netdev_columns(void **state)
{
    size_t len;
    char *text = fixture(VM "net/dev", &len);
    struct netdev d[16];
    size_t n;

    (void)state;
    n = netdev_parse(text, len, d, 16);
    assert_true(n >= 2);
    int lo = -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(d[i].name, "lo"))
            lo = (int)i;
    assert_true(lo >= 0);
    assert_true(d[lo].v[0] == d[lo].v[8]); /* loopback: received = sent */
    char crafted[] = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n"
                     "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                     "  bad: 1 2 3\n";
    n = netdev_parse(crafted, strlen(crafted), d, 16);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].name, "eth0");
    assert_true(d[0].v[8] == 9 && d[0].v[15] == 16);
    free(text);
}

static void diskstats_skip_partitions(void **state)
{
    size_t len;
    char *text = fixture(VM "diskstats", &len);
    struct diskstat d[32];
    size_t n;

    (void)state;
    n = diskstats_parse(text, len, d, 32);
    for (size_t i = 0; i < n; i++)
        assert_null(strstr(d[i].name, "loop"));
    int vda = -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(d[i].name, "vda"))
            vda = (int)i;
    assert_true(vda >= 0);
    assert_true(d[vda].v[0] > 0 && d[vda].nfields >= 11);
    assert_true(diskstats_ignored("sda1"));
    assert_true(diskstats_ignored("nvme0n1p2"));
    assert_true(diskstats_ignored("ram0"));
    assert_false(diskstats_ignored("sda"));
    assert_false(diskstats_ignored("nvme0n1"));
    assert_false(diskstats_ignored("dm-0"));
    free(text);
}

static void mounts_filtered_and_unescaped(void **state)
{
    size_t len;
    char *text = fixture(VM "1/mounts", &len);
    struct mount_entry m[64];
    size_t n;

    (void)state;
    n = mounts_parse(text, len, m, 64);
    assert_int_equal(n, 1); /* only / on /dev/vda is a real filesystem there */
    assert_string_equal(m[0].mountpoint, "/");
    assert_string_equal(m[0].device, "/dev/vda");
    assert_string_equal(m[0].fstype, "ext4");
    char crafted[] = "/dev/nvme0n1p1 /data\\040set ext4 ro,relatime 0 0\n"
                     "/dev/nvme0n1p1 /data\\040set ext4 ro,relatime 0 0\n"
                     "overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n"
                     "tmpfs /run tmpfs rw,nosuid 0 0\n"
                     "short line\n";
    n = mounts_parse(crafted, strlen(crafted), m, 64);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].mountpoint, "/data set");
    assert_true(m[0].readonly);
    assert_string_equal(m[1].mountpoint, "/run");
    assert_false(m[1].readonly);
    free(text);
}

static void container_ids_from_cgroups(void **state)
{
    const char *with[] = {"docker-v1", "docker-v2-systemd", "podman-v2", "k8s-containerd-v2"};
    const char *without[] = {"host-v1-no-container", "host-v2-no-container"};
    char id[65], rel[64];

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        snprintf(rel, sizeof(rel), "cgroup/%s", with[i]);
        char *text = fixture(rel, NULL);
        procinfo_container_id(text, id);
        assert_string_equal(id, "3f1c2b7a9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c");
        free(text);
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(rel, sizeof(rel), "cgroup/%s", without[i]);
        char *text = fixture(rel, NULL);
        procinfo_container_id(text, id);
        assert_string_equal(id, "");
        free(text);
    }
    /* 65 hex digits is not an id */
    procinfo_container_id("0::/x/3f1c2b7a9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c0", id);
    assert_string_equal(id, "");
}

static void procinfo_of_self(void **state)
{
    struct procinfo pi;

    (void)state;
    procinfo_read("/", getpid(), &pi);
    assert_string_equal(pi.name, "test_collect_ho"); /* comm is cut at 15 */
    assert_true(pi.user[0] != '\0');
    procinfo_read("/", 999999999, &pi);
    assert_string_equal(pi.name, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proc_stat_per_cpu_and_mode),
        cmocka_unit_test(proc_stat_scales_ticks),
        cmocka_unit_test(meminfo_names_like_node_exporter),
        cmocka_unit_test(netdev_columns),
        cmocka_unit_test(diskstats_skip_partitions),
        cmocka_unit_test(mounts_filtered_and_unescaped),
        cmocka_unit_test(container_ids_from_cgroups),
        cmocka_unit_test(procinfo_of_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
