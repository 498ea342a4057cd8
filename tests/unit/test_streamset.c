/* Tests for src/lib/streamset.c: seats bounded in total and per user,
 * and closing ends streams blocked on their sockets. */
#include "testutil.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/lib/streamset.h"

struct blocked {
    int fd, other, ended, cleaned;
};

static void wait_on_socket(void *arg)
{
    struct blocked *b = arg;
    char c;
    /* blocks until the peer writes or the set shuts the socket down */
    b->ended = recv(b->fd, &c, 1, 0) <= 0;
}

static void clean(void *arg)
{
    struct blocked *b = arg;
    close(b->fd);
    close(b->other);
    b->cleaned = 1;
}

static void bounds_and_close(void **state)
{
    struct streamset *s = streamset_new(3, 2);
    struct blocked b[3];
    (void)state;

    assert_int_equal(streamset_reserve(s, 7), 0);
    assert_int_equal(streamset_reserve(s, 7), 0);
    assert_int_equal(streamset_reserve(s, 7), -2); /* a user's bound */
    assert_int_equal(streamset_reserve(s, 8), 0);
    assert_int_equal(streamset_reserve(s, 9), -1); /* the total */
    for (int i = 0; i < 3; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        b[i] = (struct blocked){sv[0], sv[1], 0, 0};
        assert_int_equal(streamset_run(s, i < 2 ? 7 : 8, wait_on_socket, clean, &b[i], sv[0], -1), 0);
    }
    assert_int_equal(streamset_count(s), 3);
    /* one ends by itself: its seat comes back */
    assert_int_equal(write(b[2].other, "x", 1), 1);
    for (int i = 0; i < 200 && streamset_count(s) > 2; i++)
        usleep(5000);
    assert_int_equal(streamset_count(s), 2);
    assert_int_equal(streamset_reserve(s, 8), 0);
    streamset_unreserve(s, 8);
    /* closing ends the others, blocked as they are */
    streamset_close(s);
    for (int i = 0; i < 3; i++)
        assert_true(b[i].cleaned);
    assert_true(b[0].ended && b[1].ended);
    assert_int_equal(streamset_reserve(s, 1), -1);
    assert_int_equal(streamset_run(s, 1, wait_on_socket, NULL, &b[0], -1, -1), -1);
    streamset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounds_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
