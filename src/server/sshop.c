/* SSH sessions to fleet hosts over libssh, with our own pin file of host
 * keys (DATA/ssh_known_hosts: "host:port SHA256:..." per line) so that what
 * is pinned is the server's, not the user's ~/.ssh. */
#include "sshop.h"

#include <errno.h>
#include <libssh/libssh.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/now.h"
#include "../lib/xalloc.h"

#define OUT_MAX (256u << 10)

struct sshop {
    ssh_session session;
    char fingerprint[128];
    char user[64];
    int timeout_ms;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t pins_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_libssh(void)
{
    ssh_init();
}

int sshop_fleet_key(const char *dir, char *pub, size_t publen, char *err, size_t errlen)
{
    char path[4200];
    ssh_key key = NULL;
    char *b64 = NULL;
    int rc = -1;

    pthread_once(&init_once, init_libssh);
    snprintf(path, sizeof(path), "%s/fleet_ed25519", dir);
    if (access(path, F_OK) == 0) {
        if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
            snprintf(err, errlen, "%s: not a private key libssh can read", path);
            goto done;
        }
    } else {
        mode_t old = umask(077);
        int ok = ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) == SSH_OK &&
                 ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path) == SSH_OK;
        umask(old);
        if (!ok) {
            snprintf(err, errlen, "%s: cannot make the fleet key: %s", path, strerror(errno));
            goto done;
        }
        chmod(path, 0600);
    }
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
        snprintf(err, errlen, "%s: cannot export its public half", path);
        goto done;
    }
    snprintf(pub, publen, "%s %s gpufleet", ssh_key_type_to_char(ssh_key_type(key)), b64);
    rc = 0;
done:
    ssh_string_free_char(b64);
    ssh_key_free(key);
    return rc;
}

/* The pinned fingerprint of id ("host:port") into out, or "" when none. */
static void pin_get(const char *dir, const char *id, char *out, size_t cap)
{
    char path[4200], line[600];
    size_t idlen = strlen(id);
    snprintf(path, sizeof(path), "%s/ssh_known_hosts", dir);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, id, idlen) && line[idlen] == ' ') {
            snprintf(out, cap, "%.*s", (int)strcspn(line + idlen + 1, "\r\n"), line + idlen + 1);
            break;
        }
    if (f)
        fclose(f);
}

/* Rewrites the pin file without id, then with id -> fp when fp is given. */
static int pin_set(const char *dir, const char *id, const char *fp)
{
    char path[4200], tmp[4300], line[600];
    size_t idlen = strlen(id);
    int found = 0;
    snprintf(path, sizeof(path), "%s/ssh_known_hosts", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    mode_t old = umask(077);
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    umask(old);
    if (!out) {
        if (in)
            fclose(in);
        return -1;
    }
    while (in && fgets(line, sizeof(line), in)) {
        if (!strncmp(line, id, idlen) && line[idlen] == ' ') {
            found = 1;
            continue;
        }
        fputs(line, out);
    }
    if (fp)
        fprintf(out, "%s %s\n", id, fp);
    if (in)
        fclose(in);
    int bad = fclose(out) != 0 || rename(tmp, path) != 0;
    return bad ? -1 : found;
}

int sshop_unpin(const char *pins_dir, const char *host, int port)
{
    char id[300];
    snprintf(id, sizeof(id), "%s:%d", host, port);
    pthread_mutex_lock(&pins_lock);
    int rc = pin_set(pins_dir, id, NULL);
    pthread_mutex_unlock(&pins_lock);
    return rc == 1 ? 0 : -1;
}

/* The host key against the pin: first contact pins it. */
static int check_host_key(struct sshop *s, const struct sshop_target *t, char *err, size_t errlen)
{
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char id[300], pinned[200];

    if (ssh_get_server_publickey(s->session, &key) != SSH_OK ||
        ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK) {
        ssh_key_free(key);
        snprintf(err, errlen, "%s:%d offered no host key we can read", t->host, t->port);
        return -1;
    }
    char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", fp ? fp : "");
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(key);
    snprintf(id, sizeof(id), "%s:%d", t->host, t->port);
    pthread_mutex_lock(&pins_lock);
    pin_get(t->pins_dir, id, pinned, sizeof(pinned));
    if (!pinned[0])
        pin_set(t->pins_dir, id, s->fingerprint);
    pthread_mutex_unlock(&pins_lock);
    if (pinned[0] && strcmp(pinned, s->fingerprint)) {
        snprintf(err, errlen, "host key changed: pinned %s, the host offers %s (if that is expected: gpufleet ssh-key unpin %s)",
                 pinned, s->fingerprint, id);
        return -1;
    }
    return 0;
}

static int authenticate(struct sshop *s, const struct sshop_target *t, char *err, size_t errlen)
{
    char path[4200];
    ssh_key key = NULL;
    int rc;

    if (t->password) {
        rc = ssh_userauth_password(s->session, NULL, t->password);
        if (rc != SSH_AUTH_SUCCESS)
            snprintf(err, errlen, "authentication refused for %s (password)", t->user);
        return rc == SSH_AUTH_SUCCESS ? 0 : -1;
    }
    if (t->key_file)
        snprintf(path, sizeof(path), "%s", t->key_file);
    else
        snprintf(path, sizeof(path), "%s/fleet_ed25519", t->pins_dir);
    if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
        snprintf(err, errlen, "cannot read the key %s", path);
        return -1;
    }
    rc = ssh_userauth_publickey(s->session, NULL, key);
    ssh_key_free(key);
    if (rc != SSH_AUTH_SUCCESS)
        snprintf(err, errlen, "authentication refused for %s (key %s)", t->user, path);
    return rc == SSH_AUTH_SUCCESS ? 0 : -1;
}

/* libssh's connect errors, in the words the rest of gpufleet uses. */
static void connect_error(const struct sshop_target *t, const char *why, char *err, size_t errlen)
{
    if (strstr(why, "refused"))
        snprintf(err, errlen, "nothing answers on %s:%d (connection refused): is sshd running, on this port?",
                 t->host, t->port);
    else if (strstr(why, "imeout") || strstr(why, "timed out"))
        snprintf(err, errlen, "%s:%d did not answer within %d s", t->host, t->port, t->timeout_ms / 1000);
    else
        snprintf(err, errlen, "cannot connect to %s:%d: %s", t->host, t->port, why);
}

struct sshop *sshop_connect(const struct sshop_target *t, char *err, size_t errlen)
{
    struct sshop *s = xcalloc(1, sizeof(*s));
    unsigned int port = (unsigned int)t->port;
    long timeout_s = t->timeout_ms > 0 ? (t->timeout_ms + 999) / 1000 : 10;
    int no = 0;

    pthread_once(&init_once, init_libssh);
    s->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : 10000;
    snprintf(s->user, sizeof(s->user), "%s", t->user ? t->user : "root");
    s->session = ssh_new();
    if (!s->session) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    /* only what we say: no ~/.ssh/config, no agent */
    ssh_options_set(s->session, SSH_OPTIONS_PROCESS_CONFIG, &no);
    ssh_options_set(s->session, SSH_OPTIONS_HOST, t->host);
    ssh_options_set(s->session, SSH_OPTIONS_PORT, &port);
    ssh_options_set(s->session, SSH_OPTIONS_USER, t->user);
    ssh_options_set(s->session, SSH_OPTIONS_TIMEOUT, &timeout_s);
    if (ssh_connect(s->session) != SSH_OK) {
        connect_error(t, ssh_get_error(s->session), err, errlen);
        goto fail;
    }
    if (check_host_key(s, t, err, errlen) < 0 || authenticate(s, t, err, errlen) < 0)
        goto fail;
    return s;
fail:
    sshop_close(s);
    return NULL;
}

void sshop_close(struct sshop *s)
{
    if (!s)
        return;
    if (ssh_is_connected(s->session))
        ssh_disconnect(s->session);
    ssh_free(s->session);
    free(s);
}

static int write_all(ssh_channel c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        uint32_t n = len > 65536 ? 65536 : (uint32_t)len;
        int w = ssh_channel_write(c, p, n);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int sshop_run(struct sshop *s, const char *cmd, const void *stdin_data, size_t stdin_len, struct buf *out,
              char *err, size_t errlen)
{
    ssh_channel c = ssh_channel_new(s->session);
    char chunk[4096];
    int rc = -1;

    if (!c || ssh_channel_open_session(c) != SSH_OK || ssh_channel_request_exec(c, cmd) != SSH_OK) {
        snprintf(err, errlen, "cannot run a command: %s", ssh_get_error(s->session));
        goto done;
    }
    if ((stdin_len && write_all(c, stdin_data, stdin_len) < 0) || ssh_channel_send_eof(c) != SSH_OK) {
        snprintf(err, errlen, "the host stopped reading: %s", ssh_get_error(s->session));
        goto done;
    }
    /* both streams as they come (a command may write to stderr alone: a
     * read of stdout then returns early without EOF), until EOF; silent
     * for timeout_ms is a hung command */
    int64_t quiet_since = now_mono_ns();
    for (;;) {
        int got = 0;
        for (int is_err = 0; is_err < 2; is_err++) {
            int n = ssh_channel_read_timeout(c, chunk, sizeof(chunk), is_err, is_err ? 0 : 100);
            if (n == SSH_ERROR) {
                snprintf(err, errlen, "the session broke: %s", ssh_get_error(s->session));
                goto done;
            }
            if (n > 0 && out && out->len + (size_t)n <= OUT_MAX)
                buf_append(out, chunk, (size_t)n);
            got |= n > 0;
        }
        if (got) {
            quiet_since = now_mono_ns();
            continue;
        }
        if (ssh_channel_is_eof(c))
            break;
        if (now_mono_ns() - quiet_since > (int64_t)s->timeout_ms * 1000000) {
            snprintf(err, errlen, "the command gave nothing for %d s", s->timeout_ms / 1000);
            goto done;
        }
    }
    rc = ssh_channel_get_exit_status(c);
    if (rc < 0)
        snprintf(err, errlen, "the command ended without an exit status");
done:
    if (c) {
        ssh_channel_close(c);
        ssh_channel_free(c);
    }
    return rc;
}

/* ---- an interactive shell (a host's terminal) ---- */

struct sshop_shell {
    struct sshop *s;
    ssh_channel c;
};

struct sshop_shell *sshop_shell_open(struct sshop *s, int rows, int cols, char *err, size_t errlen)
{
    ssh_channel c = ssh_channel_new(s->session);
    if (!c || ssh_channel_open_session(c) != SSH_OK ||
        ssh_channel_request_pty_size(c, "xterm-256color", cols > 0 ? cols : 80, rows > 0 ? rows : 24) != SSH_OK ||
        ssh_channel_request_shell(c) != SSH_OK) {
        snprintf(err, errlen, "the host did not open a shell: %s", ssh_get_error(s->session));
        if (c)
            ssh_channel_free(c);
        sshop_close(s);
        return NULL;
    }
    struct sshop_shell *sh = xcalloc(1, sizeof(*sh));
    sh->s = s;
    sh->c = c;
    return sh;
}

int sshop_shell_fd(struct sshop_shell *sh)
{
    return ssh_get_fd(sh->s->session);
}

int sshop_shell_pending(struct sshop_shell *sh)
{
    return ssh_channel_poll(sh->c, 0) > 0 || ssh_channel_poll(sh->c, 1) > 0;
}

ssize_t sshop_shell_read(struct sshop_shell *sh, char *buf, size_t n)
{
    /* stderr too: a PTY merges them, but a shell may still write there */
    for (int is_err = 0; is_err < 2; is_err++) {
        int r = ssh_channel_read_nonblocking(sh->c, buf, (uint32_t)n, is_err);
        if (r > 0)
            return r;
        if (r == SSH_ERROR)
            return -1;
    }
    if (ssh_channel_is_eof(sh->c) || !ssh_channel_is_open(sh->c))
        return 0;
    return -2;
}

int sshop_shell_write(struct sshop_shell *sh, const char *p, size_t n)
{
    while (n > 0) {
        int w = ssh_channel_write(sh->c, p, (uint32_t)n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void sshop_shell_resize(struct sshop_shell *sh, int rows, int cols)
{
    ssh_channel_change_pty_size(sh->c, cols, rows);
}

void sshop_shell_close(struct sshop_shell *sh)
{
    if (!sh)
        return;
    ssh_channel_close(sh->c);
    ssh_channel_free(sh->c);
    sshop_close(sh->s);
    free(sh);
}

int sshop_run_root(struct sshop *s, const char *cmd, const void *stdin_data, size_t stdin_len, struct buf *out,
                   char *err, size_t errlen)
{
    if (!strcmp(s->user, "root"))
        return sshop_run(s, cmd, stdin_data, stdin_len, out, err, errlen);
    /* sudo -n: a password prompt would wait forever; cmd is one of our
     * fixed strings, quoted whole for sh -c (a ' closes, \' is one, '
     * opens again) */
    struct buf w;
    buf_init(&w, 0);
    buf_puts(&w, "sudo -n sh -c '");
    for (const char *p = cmd; *p; p++)
        *p == '\'' ? buf_puts(&w, "'\\''") : buf_putc(&w, *p);
    buf_putc(&w, '\'');
    int rc = sshop_run(s, w.data, stdin_data, stdin_len, out, err, errlen);
    buf_free(&w);
    return rc;
}
