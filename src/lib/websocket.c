/* WebSocket hub: one thread per client, a bounded queue each, wslay for
 * the framing, an eventfd to wake a client's thread when a message waits. */
#include "websocket.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "base64.h"
#include "log.h"
#include "now.h"
#include "xalloc.h"

#define MAX_BEHIND (4u << 20)
#define PING_MS 30000

/* ---- SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept ---- */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    unsigned char block[64];
    size_t n = len;

    for (; n >= 64; n -= 64, p += 64)
        sha1_block(h, p);
    memset(block, 0, sizeof(block));
    memcpy(block, p, n);
    block[n] = 0x80;
    if (n >= 56) {
        sha1_block(h, block);
        memset(block, 0, sizeof(block));
    }
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        block[63 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, block);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

int ws_accept_key(const char *key, char *out, size_t outlen)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[64];
    unsigned char d[20];

    /* a 16-byte nonce in base64 is 24 characters ending in "==" */
    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=' || outlen < 29)
        return -1;
    for (int i = 0; i < 22; i++)
        if (!base64_is_letter(key[i]))
            return -1;
    snprintf(buf, sizeof(buf), "%s%s", key, guid);
    ws_sha1(buf, strlen(buf), d);
    return base64_encode(d, sizeof(d), BASE64_PAD, out, outlen) < 0 ? -1 : 0;
}

/* ---- the hub ---- */

struct msg {
    struct msg *next;
    size_t len;
    char data[];
};

struct client {
    struct client *next;
    struct ws_hub *hub;
    int fd, wake;
    void *urh;
    pthread_t thread;
    int64_t user;
    int sees_all;
    ws_alive_fn alive;
    void *alive_arg;
    void (*alive_free)(void *);
    struct msg *head, *tail; /* under hub->lock */
    size_t behind;           /* bytes queued here, under hub->lock */
    int slow, done;
};

/* A seat held between the handshake's check and the upgrade, so that
 * handshakes racing each other cannot all pass the check and then be
 * closed after 101 at attach (they are told 429/503 instead). */
struct seat {
    int64_t user;
    struct seat *next;
};

struct ws_hub {
    pthread_mutex_t lock;
    struct client *clients;
    struct seat *seats;
    size_t n, n_seats, max, max_per_user;
    int closing;
};

struct ws_hub *ws_hub_new(size_t max_clients, size_t max_per_user)
{
    struct ws_hub *h = xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
    h->max = max_clients;
    h->max_per_user = max_per_user ? max_per_user : max_clients;
    return h;
}

static void wake(struct client *c)
{
    uint64_t one = 1;
    if (write(c->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("ws: wake: %s", strerror(errno));
}

static void enqueue(struct client *c, const char *text, size_t len)
{
    if (c->slow || c->done)
        return;
    if (c->behind + len > MAX_BEHIND) {
        c->slow = 1; /* its thread closes it */
        wake(c);
        return;
    }
    struct msg *m = xmalloc(sizeof(*m) + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, text, len);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->behind += len;
    wake(c);
}

void ws_hub_broadcast(struct ws_hub *hub, const char *text, size_t len)
{
    pthread_mutex_lock(&hub->lock);
    for (struct client *c = hub->clients; c; c = c->next)
        enqueue(c, text, len);
    pthread_mutex_unlock(&hub->lock);
}

void ws_hub_broadcast_owned(struct ws_hub *hub, const char *text, size_t len, int64_t owner)
{
    pthread_mutex_lock(&hub->lock);
    for (struct client *c = hub->clients; c; c = c->next)
        if (c->sees_all || c->user == owner)
            enqueue(c, text, len);
    pthread_mutex_unlock(&hub->lock);
}

size_t ws_hub_clients(struct ws_hub *hub)
{
    size_t n = 0;
    pthread_mutex_lock(&hub->lock);
    for (struct client *c = hub->clients; c; c = c->next)
        n += !c->done;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
    struct client *c = arg;
    (void)flags;
    ssize_t r = recv(c->fd, buf, len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else if (r <= 0)
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return r > 0 ? r : -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct client *c = arg;
    (void)flags;
    ssize_t r = send(c->fd, data, len, MSG_NOSIGNAL);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else if (r < 0)
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return r >= 0 ? r : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ctx;
    (void)arg;
    (void)user; /* the push is one-way; control frames are wslay's */
}

/* Moves queued messages into wslay while what it holds unsent stays under
 * a quarter of MAX_BEHIND; the rest waits here, where enqueue counts it,
 * so a client that reads slowly falls behind and is closed instead of
 * growing wslay's queue without bound. Returns -1 when the client must go. */
static int drain(struct client *c, wslay_event_context_ptr ctx)
{
    pthread_mutex_lock(&c->hub->lock);
    int slow = c->slow, closing = c->hub->closing;
    while (c->head && wslay_event_get_queued_msg_length(ctx) < MAX_BEHIND / 4) {
        struct msg *m = c->head;
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        c->behind -= m->len;
        struct wslay_event_msg wm = {WSLAY_TEXT_FRAME, (const uint8_t *)m->data, m->len};
        wslay_event_queue_msg(ctx, &wm); /* wslay copies the message */
        free(m);
    }
    if (c->head && c->behind + wslay_event_get_queued_msg_length(ctx) > MAX_BEHIND)
        slow = c->slow = 1;
    pthread_mutex_unlock(&c->hub->lock);
    if (slow || closing) {
        wslay_event_queue_close(ctx, slow ? 1008 : 1001, NULL, 0);
        return -1;
    }
    return 0;
}

/* Whether the client's credential ended; asked at most once a second,
 * however busy the stream. */
static int revoked(struct client *c, int64_t *checked_ns)
{
    int64_t now = now_mono_ns();
    if (!c->alive || now - *checked_ns < 1000000000LL)
        return 0;
    *checked_ns = now;
    return !c->alive(c->alive_arg);
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    wslay_event_context_ptr ctx;
    struct wslay_event_callbacks cb = {on_recv, on_send, NULL, NULL, NULL, NULL, on_msg};
    int going = 0, idle_ms = 0;
    int64_t checked_ns = now_mono_ns();

    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    if (wslay_event_context_server_init(&ctx, &cb, c) != 0)
        goto out;
    wslay_event_config_set_max_recv_msg_length(ctx, 64 * 1024);
    while (wslay_event_want_read(ctx) || wslay_event_want_write(ctx)) {
        struct pollfd p[2] = {{c->fd, (short)((wslay_event_want_read(ctx) ? POLLIN : 0) |
                                              (wslay_event_want_write(ctx) ? POLLOUT : 0)), 0},
                              {c->wake, POLLIN, 0}};
        int r = poll(p, going ? 1 : 2, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (!going && revoked(c, &checked_ns)) {
            /* the session or token was revoked, the user disabled or
             * logged out: the stream ends with the credential */
            wslay_event_queue_close(ctx, 1008, (const uint8_t *)"credential revoked", 18);
            going = 1;
        }
        if (r == 0 && (idle_ms += 1000) >= PING_MS) {
            struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
            wslay_event_queue_msg(ctx, &ping);
            idle_ms = 0;
        }
        if (going && r == 0)
            break; /* a close frame the peer never answers */
        if (!going && (p[1].revents & POLLIN)) {
            uint64_t v;
            if (read(c->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
                break;
            going = drain(c, ctx) < 0;
        }
        if ((p[0].revents & POLLIN) && wslay_event_recv(ctx) != 0)
            break;
        if ((p[0].revents & (POLLOUT | POLLIN)) && wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0)
            break;
        if (!going && (p[0].revents & POLLOUT))
            going = drain(c, ctx) < 0; /* room again in wslay: what waited here */
        if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
            break;
        if (going && !wslay_event_want_write(ctx))
            break;
    }
    wslay_event_context_free(ctx);
out:
    pthread_mutex_lock(&c->hub->lock);
    c->done = 1;
    for (struct msg *m = c->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->hub->lock);
    if (c->alive_free)
        c->alive_free(c->alive_arg);
    /* hands the socket back to libmicrohttpd, which closes it (a socket
     * of its own, as the unit tests give, is closed here) */
    if (c->urh)
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    else
        close(c->fd);
    return NULL;
}

/* Joins and frees clients that ended. Called with the lock held. */
static void reap(struct ws_hub *hub, int all)
{
    for (struct client **pp = &hub->clients; *pp;) {
        struct client *c = *pp;
        if (!c->done && !all) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        hub->n--;
        pthread_mutex_unlock(&hub->lock);
        pthread_join(c->thread, NULL);
        pthread_mutex_lock(&hub->lock);
        close(c->wake);
        free(c);
    }
}

/* Clients and held seats of user (lock held). */
static size_t of_user(struct ws_hub *hub, int64_t user)
{
    size_t n = 0;
    for (struct client *c = hub->clients; c; c = c->next)
        n += !c->done && c->user == user;
    for (struct seat *s = hub->seats; s; s = s->next)
        n += s->user == user;
    return n;
}

/* 0 when one more client of user fits, else -1 (hub) or -2 (user). */
static int room_for(struct ws_hub *hub, int64_t user)
{
    if (hub->closing || hub->n + hub->n_seats >= hub->max)
        return -1;
    return of_user(hub, user) >= hub->max_per_user ? -2 : 0;
}

/* Gives back one seat of user; 1 when there was one (lock held). */
static int take_seat(struct ws_hub *hub, int64_t user)
{
    for (struct seat **pp = &hub->seats; *pp; pp = &(*pp)->next) {
        if ((*pp)->user != user)
            continue;
        struct seat *s = *pp;
        *pp = s->next;
        hub->n_seats--;
        free(s);
        return 1;
    }
    return 0;
}

int ws_hub_reserve(struct ws_hub *hub, int64_t user)
{
    pthread_mutex_lock(&hub->lock);
    reap(hub, 0);
    int rc = room_for(hub, user);
    if (rc == 0) {
        struct seat *s = xmalloc(sizeof(*s));
        *s = (struct seat){.user = user, .next = hub->seats};
        hub->seats = s;
        hub->n_seats++;
    }
    pthread_mutex_unlock(&hub->lock);
    return rc;
}

void ws_hub_unreserve(struct ws_hub *hub, int64_t user)
{
    pthread_mutex_lock(&hub->lock);
    take_seat(hub, user);
    pthread_mutex_unlock(&hub->lock);
}

/* A client refused at attach: its connection closed and its alive
 * argument freed, as the hub would have at its end. */
static int turn_away(int sock, void *urh, void *alive_arg, void (*alive_free)(void *))
{
    if (alive_free)
        alive_free(alive_arg);
    if (urh)
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    else
        close(sock);
    return -1;
}

int ws_hub_attach(struct ws_hub *hub, int sock, void *urh, const char *hello, int64_t user, int sees_all,
                  ws_alive_fn alive, void *alive_arg, void (*alive_free)(void *))
{
    pthread_mutex_lock(&hub->lock);
    reap(hub, 0);
    /* a reserved seat becomes the client; without one the limits apply */
    int seated = take_seat(hub, user);
    if (hub->closing || (!seated && room_for(hub, user) < 0)) {
        pthread_mutex_unlock(&hub->lock);
        log_warn("ws: %s; a client turned away", hub->closing ? "closing" : "too many clients");
        return turn_away(sock, urh, alive_arg, alive_free);
    }
    struct client *c = xcalloc(1, sizeof(*c));
    c->hub = hub;
    c->fd = sock;
    c->urh = urh;
    c->user = user;
    c->sees_all = sees_all;
    c->alive = alive;
    c->alive_arg = alive_arg;
    c->alive_free = alive_free;
    c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->next = hub->clients;
    hub->clients = c;
    hub->n++;
    if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
        hub->clients = c->next;
        hub->n--;
        pthread_mutex_unlock(&hub->lock);
        close(c->wake);
        free(c);
        return turn_away(sock, urh, alive_arg, alive_free);
    }
    /* queued after the start so a failed start has nothing queued to free;
     * the thread reads the queue under hub->lock, still held here */
    if (hello)
        enqueue(c, hello, strlen(hello));
    pthread_mutex_unlock(&hub->lock);
    return 0;
}

void ws_hub_close(struct ws_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->closing = 1;
    for (struct client *c = hub->clients; c; c = c->next)
        wake(c);
    reap(hub, 1);
    while (hub->seats)
        take_seat(hub, hub->seats->user);
    pthread_mutex_unlock(&hub->lock);
}

void ws_hub_free(struct ws_hub *hub)
{
    if (!hub)
        return;
    ws_hub_close(hub);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}
