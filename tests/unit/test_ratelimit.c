/* Tests for src/server/ratelimit.c: a caller gets its burst at once, then
 * its rate; callers do not share buckets; 0 is no limit. */
#include "testutil.h"

#include "../../src/server/ratelimit.h"

static void buckets(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(10, 5); /* 10/s, 5 at once */
    int64_t wait = 0, now = 1000000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_take(rl, "t:1", now, &wait), 0);
    assert_int_equal(ratelimit_take(rl, "t:1", now, &wait), -1);
    assert_true(wait > 0 && wait <= 101);
    assert_int_equal(ratelimit_take(rl, "t:2", now, &wait), 0); /* another caller */
    assert_int_equal(ratelimit_take(rl, "t:1", now + 100, &wait), 0); /* one back after 100 ms */
    assert_int_equal(ratelimit_take(rl, "t:1", now + 100, &wait), -1);
    /* a long quiet spell refills to the burst, not beyond */
    int ok = 0;
    for (int i = 0; i < 20; i++)
        ok += ratelimit_take(rl, "t:1", now + 60000, &wait) == 0;
    assert_int_equal(ok, 5);
    ratelimit_free(rl);
    rl = ratelimit_new(0, 1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ratelimit_take(rl, "a:x", now, &wait), 0);
    ratelimit_free(rl);
}

static void many_callers(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(1, 2);
    int64_t wait;
    char key[32];
    /* far more callers than buckets: nobody is refused a first request */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "a:10.0.%d.%d", i / 256, i % 256);
        assert_int_equal(ratelimit_take(rl, key, 5000, &wait), 0);
    }
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets),
        cmocka_unit_test(many_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
