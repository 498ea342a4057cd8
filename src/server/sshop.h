/* SSH to the fleet's hosts (libssh): the fleet key, host keys pinned on
 * first contact, commands run and files written over one session. Every
 * failure is said in plain words (authentication refused, host key
 * changed with both fingerprints, nothing answers). Commands are fixed
 * strings of the caller's; what comes from input travels as file content
 * on stdin, never inside a command line. */
#ifndef GF_SSHOP_H
#define GF_SSHOP_H

#include <stddef.h>
#include <sys/types.h>

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

/* As sshop_run, as root: the command itself when the SSH user is root,
 * else through `sudo -n sh -c` (the user needs passwordless sudo; sudo's
 * own refusal, "a password is required", is the command's output). */
int sshop_run_root(struct sshop *s, const char *cmd, const void *stdin_data, size_t stdin_len, struct buf *out,
                   char *err, size_t errlen);

/* An interactive shell with a PTY (term xterm-256color, rows x cols) on s,
 * which it takes over (closed with it, or at once on failure). NULL with
 * err. One thread at a time uses a shell. */
struct sshop_shell;
struct sshop_shell *sshop_shell_open(struct sshop *s, int rows, int cols, char *err, size_t errlen);
/* The socket to poll for the shell's output (libssh may also hold bytes
 * already read: sshop_shell_pending says so). */
int sshop_shell_fd(struct sshop_shell *sh);
int sshop_shell_pending(struct sshop_shell *sh);
/* Up to n bytes of output: > 0, 0 when the shell ended, -1 on an error,
 * -2 when nothing is there now. */
ssize_t sshop_shell_read(struct sshop_shell *sh, char *buf, size_t n);
/* Types n bytes. 0, or -1 when the shell is gone. */
int sshop_shell_write(struct sshop_shell *sh, const char *p, size_t n);
void sshop_shell_resize(struct sshop_shell *sh, int rows, int cols);
void sshop_shell_close(struct sshop_shell *sh);

/* Forgets the pinned key of host:port (an operator who knows why it
 * changed). 0, or -1 when none was pinned. */
int sshop_unpin(const char *pins_dir, const char *host, int port);

#endif
