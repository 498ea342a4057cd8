/* Tests for src/lib/httpd.c: routing, JSON errors, body bounds, parsing of
 * listen addresses and Accept-Encoding. Requests go over loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/lib/httpd.h"
#include "../../src/lib/now.h"
#include <pthread.h>

static void echo_param(void *app, struct http_request *req, struct http_response *resp)
{
    (void)app;
    resp->content_type = "text/plain";
    buf_printf(&resp->body, "id=%s len=%zu", req->params[0], req->body.len);
}

static const struct http_route routes[] = {
    {"GET", "/things/{id}", echo_param, 0, NULL, NULL, 0},
    {"POST", "/things/{id}/body", echo_param, 0, NULL, "thing.post", 0},
};

/* Sends raw and returns the whole response (malloc'd). */
static char *roundtrip(unsigned port, const char *raw)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct buf out;
    char chunk[4096];
    ssize_t n;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_true(write(fd, raw, strlen(raw)) == (ssize_t)strlen(raw));
    buf_init(&out, 0);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        buf_append(&out, chunk, (size_t)n);
    close(fd);
    return buf_detach(&out, NULL);
}

static void routes_and_errors(void **state)
{
    char err[128];
    struct http_config cfg = {.listen = "127.0.0.1:0", .routes = routes, .nroutes = 2,
                              .max_body_bytes = 16};
    struct http_server *srv = http_start(&cfg, err, sizeof(err));
    char *r;

    (void)state;
    assert_non_null(srv);
    unsigned port = http_port(srv);
    assert_true(port > 0);
    r = roundtrip(port, "GET /things/gpu-7 HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(r, "200 OK"));
    assert_non_null(strstr(r, "id=gpu-7 len=0"));
    free(r);
    r = roundtrip(port, "GET /things/ HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(r, "404"));
    assert_non_null(strstr(r, "\"code\":\"not_found\""));
    free(r);
    r = roundtrip(port, "DELETE /things/x HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(r, "405"));
    free(r);
    r = roundtrip(port, "POST /things/x/body HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
    assert_non_null(strstr(r, "id=x len=5"));
    free(r);
    r = roundtrip(port, "POST /things/x/body HTTP/1.0\r\nContent-Length: 40\r\n\r\n"
                        "0123456789012345678901234567890123456789");
    assert_non_null(strstr(r, "413"));
    assert_non_null(strstr(r, "body_too_large"));
    free(r);
    http_stop(srv);
}

static int slow_started; /* handlers entered; read with __atomic */

/* A handler that waits on "another host" for 2 s. */
static void slow(void *app, struct http_request *req, struct http_response *resp)
{
    (void)app;
    __atomic_add_fetch(&slow_started, 1, __ATOMIC_SEQ_CST);
    usleep(2000 * 1000);
    resp->content_type = "text/plain";
    buf_printf(&resp->body, "slow %s len=%zu", req->params[0], req->body.len);
}

static const struct http_route slow_routes[] = {
    {"GET", "/fast/{id}", echo_param, 0, NULL, NULL, 0},
    {"POST", "/slow/{id}", slow, 0, NULL, NULL, 1},
};

static unsigned slow_port;

static void *slow_client(void *arg)
{
    char *r = roundtrip(slow_port, "POST /slow/s HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    *(int *)arg = strstr(r, "200 OK") && strstr(r, "slow s len=3");
    free(r);
    return NULL;
}

/* Waits (up to 10 s) until n slow handlers have begun: a fixed sleep lost
 * the race on a loaded CI machine, where the last request had not reached
 * the server when it was stopped. */
static void wait_slow_started(int n)
{
    for (int i = 0; i < 1000 && __atomic_load_n(&slow_started, __ATOMIC_SEQ_CST) < n; i++)
        usleep(10 * 1000);
    assert_true(__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST) >= n);
}

/* Offload routes wait on their own threads: with one server thread and
 * eight slow requests in flight, a fast request still answers at once,
 * and every slow one gets its answer (and its body). */
static void offload_keeps_threads_free(void **state)
{
    char err[128];
    struct http_config cfg = {.listen = "127.0.0.1:0", .routes = slow_routes, .nroutes = 2, .threads = 1,
                              .offload_threads = 8};
    struct http_server *srv = http_start(&cfg, err, sizeof(err));
    pthread_t t[8];
    int ok[8] = {0};

    (void)state;
    assert_non_null(srv);
    slow_port = http_port(srv);
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, slow_client, &ok[i]);
    wait_slow_started(8);
    int64_t t0 = now_mono_ns();
    char *r = roundtrip(slow_port, "GET /fast/f HTTP/1.0\r\n\r\n");
    int64_t fast_ms = (now_mono_ns() - t0) / 1000000;
    assert_non_null(strstr(r, "id=f"));
    free(r);
    if (fast_ms > 1000) /* behind a slow one it would wait ~1.9 s */
        fail_msg("a fast request waited %lld ms behind slow ones", (long long)fast_ms);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_true(ok[i]);
    }
    /* a stop with a slow request in flight answers it first */
    int last = 0;
    pthread_t tl;
    pthread_create(&tl, NULL, slow_client, &last);
    wait_slow_started(9);
    http_stop(srv);
    pthread_join(tl, NULL);
    assert_true(last);
}

static void listen_addresses(void **state)
{
    char host[64], err[128];
    unsigned port;

    (void)state;
    assert_int_equal(http_parse_listen("127.0.0.1:9445", host, sizeof(host), &port, err, 128), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9445);
    assert_int_equal(http_parse_listen("[::1]:80", host, sizeof(host), &port, err, 128), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(http_parse_listen(":9445", host, sizeof(host), &port, err, 128), 0);
    assert_string_equal(host, "");
    assert_int_equal(http_parse_listen("127.0.0.1", host, sizeof(host), &port, err, 128), -1);
    assert_non_null(strstr(err, "listen"));
    assert_int_equal(http_parse_listen("h:70000", host, sizeof(host), &port, err, 128), -1);
    assert_int_equal(http_parse_listen("h:", host, sizeof(host), &port, err, 128), -1);
    assert_int_equal(http_parse_listen("[::1:80", host, sizeof(host), &port, err, 128), -1);
    struct http_config cfg = {.listen = "not-an-ip:1", .routes = routes, .nroutes = 2};
    assert_null(http_start(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "not-an-ip"));
}

static void accept_encoding(void **state)
{
    (void)state;
    assert_true(http_gzip_acceptable("gzip"));
    assert_true(http_gzip_acceptable("deflate, gzip;q=0.5"));
    assert_true(http_gzip_acceptable("*"));
    assert_true(http_gzip_acceptable("GZIP"));
    assert_false(http_gzip_acceptable("gzip;q=0"));
    assert_false(http_gzip_acceptable("gzip; q=0.0"));
    assert_false(http_gzip_acceptable("identity"));
    assert_false(http_gzip_acceptable(NULL));
    assert_false(http_gzip_acceptable(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_and_errors),
        cmocka_unit_test(offload_keeps_threads_free),
        cmocka_unit_test(listen_addresses),
        cmocka_unit_test(accept_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
