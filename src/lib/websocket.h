/* Live push over WebSocket (RFC 6455) on libmicrohttpd's upgraded
 * connections, framed by libwslay: a hub of connected clients, each on its
 * own thread, to which any thread broadcasts text messages. Clients'
 * messages are read and ignored (pings are answered by wslay). */
#ifndef GF_WEBSOCKET_H
#define GF_WEBSOCKET_H

#include <stddef.h>

struct ws_hub;

/* A hub for at most max_clients clients. */
struct ws_hub *ws_hub_new(size_t max_clients);

/* Closes every client (a close frame, then the socket) and waits for their
 * threads; later attaches are turned away. Call before stopping the HTTP
 * server (the sockets belong to it). */
void ws_hub_close(struct ws_hub *hub);

/* Closes (when not yet) and frees the hub. */
void ws_hub_free(struct ws_hub *hub);

/* Queues a text message for every client (copied). A client that falls
 * more than 4 MiB behind is disconnected rather than slowing the rest. */
void ws_hub_broadcast(struct ws_hub *hub, const char *text, size_t len);

/* Clients connected now. */
size_t ws_hub_clients(struct ws_hub *hub);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out holds at least 29 bytes. Returns 0, or -1 when key is not a valid
 * 16-byte base64 nonce. */
int ws_accept_key(const char *key, char *out, size_t outlen);

/* Takes over an upgraded connection's socket (libmicrohttpd's upgrade
 * handler arguments); first sends hello (copied) when not NULL. Returns 0,
 * or -1 when the hub is full or closing (the connection is closed). */
int ws_hub_attach(struct ws_hub *hub, int sock, void *mhd_urh, const char *hello);

/* SHA-1 of data (20 bytes to out), for the handshake only. */
void ws_sha1(const void *data, size_t len, unsigned char out[20]);

#endif
