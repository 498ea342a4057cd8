/* A browser's WebSocket relayed to a stream from a container's agent
 * (agentstream.h): a log follow (the engine's frames turned into batches
 * of text, stdout and stderr told apart) or a terminal (a TTY's bytes both
 * ways, resizes passed on); or to a shell on a host over SSH (sshop.h). A thread per session in a bounded set; the
 * session ends with the container's stream, the browser, the credential
 * that opened it (checked every second) or the server's stop. */
#ifndef GF_CTRSESSION_H
#define GF_CTRSESSION_H

#include <stdint.h>

#include "../lib/buf.h"
#include "auth.h"
#include "registry.h"

struct streamset;
struct audit;

#define CTRSESSION_LOGS 1
#define CTRSESSION_TERMINAL 2
#define CTRSESSION_SHELL 3 /* a host's shell over SSH (shell, not agent_fd) */

struct sshop_shell;

struct ctrsession {
    int kind;
    int agent_fd;          /* the stream's connection (the session closes it) */
    struct buf rest;       /* stream bytes that came with the agent's hello */
    char exec_id[130];     /* terminal: the engine's exec, for resizes */
    struct sshop_shell *shell; /* shell: the host's (the session closes it) */
    char server[65];       /* shell: the host's name, for the audit */
    struct reg_target agent;
    struct auth *auth;     /* the credential's checks */
    struct auth_identity who;
    uint64_t auth_gen;
    struct audit *audit;   /* terminal: its end is audited */
    char source[64];
    int64_t container_id;
    int running;           /* logs: the container ran when the follow began */
    const char *ended;     /* logs: the end's words when the stream ends (static); NULL: the container's */
    /* set by ctrsession_start */
    struct streamset *set;
    int browser_fd;
    void *urh;
};

/* A session of kind for who (fields above filled by the caller; agent_fd
 * and rest empty). Free with ctrsession_free unless started. */
struct ctrsession *ctrsession_new(int kind);
void ctrsession_free(struct ctrsession *s);

/* Runs s on the upgraded browser connection (sock, libmicrohttpd's handle
 * mhd_urh) in a seat of set reserved for s->who.user_id; s is the
 * session's from here, whatever happens. 0, or -1 (the set is closing:
 * the connection is closed). */
int ctrsession_start(struct streamset *set, struct ctrsession *s, int sock, void *mhd_urh);


/* Appends n bytes of text at p as the inside of a JSON string (invalid
 * UTF-8 as U+FFFD). An incomplete UTF-8 sequence at the end is left
 * unless final: the count of bytes consumed. Exposed for the tests. */
size_t ctrsession_json_text(struct buf *b, const unsigned char *p, size_t n, int final);

#endif
