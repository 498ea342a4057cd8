/* Tests for src/lib/websocket.c's handshake and hub bookkeeping: the
 * accept key of RFC 6455's own example, keys that are not 16-byte nonces
 * refused, SHA-1 on FIPS 180's vectors, a hub with nobody on it. */
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/lib/websocket.h"

static void accept_key(void **state)
{
    (void)state;
    char out[32];
    /* RFC 6455 section 1.3 */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out, sizeof(out)), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    static const char *bad[] = {NULL, "", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=",
                                "dGhlIHNhbXBsZSBub25jZ!==", "dGhlIHNhbXBsZSBub25jZQ==x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ws_accept_key(bad[i], out, sizeof(out)), -1);
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out, 28), -1); /* no room */
}

static void sha1(void **state)
{
    (void)state;
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        unsigned char d[20];
        char hex[41];
        ws_sha1(v[i].in, strlen(v[i].in), d);
        for (int k = 0; k < 20; k++)
            snprintf(hex + 2 * k, 3, "%02x", d[k]);
        assert_string_equal(hex, v[i].hex);
    }
}

static void empty_hub(void **state)
{
    (void)state;
    struct ws_hub *h = ws_hub_new(4, 2);
    assert_int_equal(ws_hub_reserve(h, 7), 0);
    assert_int_equal(ws_hub_clients(h), 0);
    ws_hub_unreserve(h, 7);
    ws_hub_broadcast(h, "{}", 2); /* nobody to queue for */
    ws_hub_close(h);
    ws_hub_close(h); /* twice is fine */
    ws_hub_free(h);
}

/* Handshakes that passed the check hold their seats until the upgrade:
 * a third concurrent one of a user allowed two is refused before its 101,
 * not closed after it (the live test's "3 opened, 0 refused" flake). */
static void seats_held(void **state)
{
    (void)state;
    int sv[2];
    struct ws_hub *h = ws_hub_new(3, 2);
    assert_int_equal(ws_hub_reserve(h, 5), 0);
    assert_int_equal(ws_hub_reserve(h, 5), 0);
    assert_int_equal(ws_hub_reserve(h, 5), -2); /* both seats held, none attached yet */
    assert_int_equal(ws_hub_reserve(h, 6), 0);
    assert_int_equal(ws_hub_reserve(h, 8), -1); /* the hub counts seats too */
    ws_hub_unreserve(h, 6);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(ws_hub_attach(h, sv[0], NULL, NULL, 5, 0, NULL, NULL, NULL), 0); /* takes a seat */
    assert_int_equal(ws_hub_reserve(h, 5), -2);
    ws_hub_unreserve(h, 5); /* the other handshake went away */
    assert_int_equal(ws_hub_reserve(h, 5), 0);
    ws_hub_unreserve(h, 5);
    assert_int_equal(ws_hub_clients(h), 1);
    ws_hub_free(h);
    close(sv[1]);
}

static int alive_calls, alive_answer = 1;
static int alive(void *arg)
{
    (void)arg;
    alive_calls++;
    return alive_answer;
}

static int wait_clients(struct ws_hub *h, size_t want, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (ws_hub_clients(h) == want)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* A client that never reads is closed once it is 4 MiB behind: what it
 * was sent is bounded here and in the framing layer together (issue 18,
 * defect 10: the bound was reset whenever messages went to wslay). */
static void slow_reader_closed(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct ws_hub *h = ws_hub_new(4, 4);
    assert_int_equal(ws_hub_attach(h, sv[0], NULL, NULL, 1, 0, NULL, NULL, NULL), 0);
    char *msg = malloc(64 * 1024);
    memset(msg, 'x', 64 * 1024);
    for (int i = 0; i < 400 && ws_hub_clients(h) == 1; i++) { /* up to 25 MiB */
        ws_hub_broadcast(h, msg, 64 * 1024);
        usleep(2000);
    }
    free(msg);
    assert_true(wait_clients(h, 0, 3000));
    close(sv[1]); /* never read */
    ws_hub_free(h);
}

/* A client whose credential ends is closed within about a second, however
 * busy its stream (issue 18, defect 4). */
static void revoked_closed(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct ws_hub *h = ws_hub_new(4, 1);
    alive_answer = 1;
    assert_int_equal(ws_hub_attach(h, sv[0], NULL, "{}", 9, 0, alive, NULL, NULL), 0);
    assert_int_equal(ws_hub_reserve(h, 9), -2); /* one per user here */
    assert_int_equal(ws_hub_reserve(h, 10), 0);
    ws_hub_unreserve(h, 10);
    usleep(1200000);
    assert_true(alive_calls >= 1);
    assert_int_equal(ws_hub_clients(h), 1);
    alive_answer = 0;
    for (int i = 0; i < 150 && ws_hub_clients(h); i++) { /* messages keep coming */
        ws_hub_broadcast(h, "{\"type\":\"fleet\"}", 16);
        char drop[4096];
        while (recv(sv[1], drop, sizeof(drop), MSG_DONTWAIT) > 0)
            ;
        usleep(10000);
    }
    assert_int_equal(ws_hub_clients(h), 0);
    close(sv[1]);
    ws_hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_key),
        cmocka_unit_test(sha1),
        cmocka_unit_test(empty_hub),
        cmocka_unit_test(seats_held),
        cmocka_unit_test(slow_reader_closed),
        cmocka_unit_test(revoked_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
