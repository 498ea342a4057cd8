/* Live push over WebSocket (RFC 6455) on libmicrohttpd's upgraded
 * connections, framed by libwslay: a hub of connected clients, each on its
 * own thread, to which any thread broadcasts text messages. Clients'
 * messages are read and ignored (pings are answered by wslay). */
#ifndef GF_WEBSOCKET_H
#define GF_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

struct ws_hub;

/* A hub for at most max_clients clients, max_per_user of one user. */
struct ws_hub *ws_hub_new(size_t max_clients, size_t max_per_user);

/* Closes every client (a close frame, then the socket) and waits for their
 * threads; later attaches are turned away. Call before stopping the HTTP
 * server (the sockets belong to it). */
void ws_hub_close(struct ws_hub *hub);

/* Closes (when not yet) and frees the hub. */
void ws_hub_free(struct ws_hub *hub);

/* Queues a text message for every client (copied). A client that falls
 * more than 4 MiB behind (queued here and in the framing layer together)
 * is disconnected rather than slowing the rest or growing without bound. */
void ws_hub_broadcast(struct ws_hub *hub, const char *text, size_t len);

/* As ws_hub_broadcast, for the clients of user owner and those attached
 * as seeing everyone's (an event about one user's things). */
void ws_hub_broadcast_owned(struct ws_hub *hub, const char *text, size_t len, int64_t owner);

/* Clients connected now (not those ending). */
size_t ws_hub_clients(struct ws_hub *hub);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out holds at least 29 bytes. Returns 0, or -1 when key is not a valid
 * 16-byte base64 nonce. */
int ws_accept_key(const char *key, char *out, size_t outlen);

/* Holds a seat for a client of user, checked before upgrading: 0, -1 when
 * the hub is full, -2 when that user has max_per_user clients and seats
 * already. The seat is taken by ws_hub_attach for that user, or given back
 * with ws_hub_unreserve when the upgrade does not happen. */
int ws_hub_reserve(struct ws_hub *hub, int64_t user);
void ws_hub_unreserve(struct ws_hub *hub, int64_t user);

/* Is the client's credential still good? Called on the client's thread
 * about once a second; 0 closes it (1008, policy). */
typedef int (*ws_alive_fn)(void *arg);

/* Takes over an upgraded connection's socket (libmicrohttpd's upgrade
 * handler arguments; mhd_urh NULL: a socket of the caller's, closed when
 * the client ends) for user (sees_all: it gets every owner's events of
 * ws_hub_broadcast_owned); first sends hello (copied) when not NULL.
 * alive (may be NULL) is asked about once a second; alive_free(alive_arg)
 * runs when the client ends (also when refused). A seat reserved for user
 * is taken; without one the limits are checked here. Returns 0, or -1 when
 * the hub is full or closing (the connection is closed). */
int ws_hub_attach(struct ws_hub *hub, int sock, void *mhd_urh, const char *hello, int64_t user, int sees_all,
                  ws_alive_fn alive, void *alive_arg, void (*alive_free)(void *));

/* SHA-1 of data (20 bytes to out), for the handshake only. */
void ws_sha1(const void *data, size_t len, unsigned char out[20]);

#endif
