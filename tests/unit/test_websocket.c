/* Tests for src/lib/websocket.c's handshake and hub bookkeeping: the
 * accept key of RFC 6455's own example, keys that are not 16-byte nonces
 * refused, SHA-1 on FIPS 180's vectors, a hub with nobody on it. */
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
    struct ws_hub *h = ws_hub_new(4);
    assert_int_equal(ws_hub_clients(h), 0);
    ws_hub_broadcast(h, "{}", 2); /* nobody to queue for */
    ws_hub_close(h);
    ws_hub_close(h); /* twice is fine */
    ws_hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_key),
        cmocka_unit_test(sha1),
        cmocka_unit_test(empty_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
