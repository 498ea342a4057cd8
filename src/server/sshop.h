/* SSH to the fleet's hosts (libssh): the fleet key, host keys pinned on
 * first contact, commands run and files written over one session. Every
 * failure is said in plain words (authentication refused, host key
 * changed with both fingerprints, nothing answers). Commands are fixed
 * strings of the caller's; what comes from input travels as file content
 * on stdin, never inside a command line. */
#ifndef GF_SSHOP_H
#define GF_SSHOP_H

#include <stddef.h>

#include "../lib/buf.h"

struct sshop;

/* The fleet key (ed25519) at dir/fleet_ed25519, made (mode 0600) when
 * missing; its public half ("ssh-ed25519 AAAA... gpufleet") into pub. 0,
 * or -1 with err. */
int sshop_fleet_key(const char *dir, char *pub, size_t publen, char *err, size_t errlen);

struct sshop_target {
    const char *host, *user;
    int port;
    const char *key_file; /* NULL: the fleet key of pins_dir */
    const char *password; /* instead of a key (deploying the key); never stored */
    const char *pins_dir; /* where ssh_known_hosts (the pinned host keys) lives */
    int timeout_ms;
};

/* Connects, checks the host key against the pin (pinning it on first
 * contact) and authenticates. NULL with err in words: "nothing answers on
 * H:P (connection refused)", "host key changed: pinned SHA256:A, the host
 * offers SHA256:B", "authentication refused for USER (key FILE)". */
struct sshop *sshop_connect(const struct sshop_target *t, char *err, size_t errlen);
void sshop_close(struct sshop *s);

/* Runs cmd (a fixed string: no input in it) with stdin_data (may be NULL)
 * on its stdin; its stdout and stderr together into out (bounded). The
 * exit status, or -1 with err when the command could not be run or timed
 * out. */
int sshop_run(struct sshop *s, const char *cmd, const void *stdin_data, size_t stdin_len, struct buf *out,
              char *err, size_t errlen);

/* Forgets the pinned key of host:port (an operator who knows why it
 * changed). 0, or -1 when none was pinned. */
int sshop_unpin(const char *pins_dir, const char *host, int port);

#endif
