/* What a container is asked to be: name, image, command, environment,
 * GPUs, CPU, memory, ports, host. One parser for the server's API (what a
 * user sends) and the agent's (what the server decided), so both refuse the
 * same things with the same field names. */
#ifndef GF_CTRSPEC_H
#define GF_CTRSPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "errinfo.h"

#define CTRSPEC_MAX_GPUS 16
#define CTRSPEC_MAX_PORTS 32
#define CTRSPEC_MAX_ENV 128
#define CTRSPEC_MAX_ARGS 128
#define CTRSPEC_UUID_LEN 96
#define CTRSPEC_MIN_MEMORY (6LL << 20) /* Docker refuses less than 6 MiB */

struct ctrspec_port {
    unsigned container; /* 1..65535 */
    unsigned host;      /* 0: the server picks one */
    char proto[4];      /* "tcp" or "udp" */
};

struct ctrspec {
    char name[64];   /* "" : the server names it */
    char image[256];
    json_t *command; /* array of strings, or NULL: the image's own */
    json_t *env;     /* object of strings, never NULL */
    /* GPUs: by number (gpu_count, optionally of a model and with at least
     * gpu_min_memory_mib each) or by UUID (gpus). The agent's form has
     * UUIDs only. */
    int gpu_count;
    char gpu_model[64];
    int64_t gpu_min_memory_mib;
    char gpus[CTRSPEC_MAX_GPUS][CTRSPEC_UUID_LEN];
    size_t ngpus;
    int64_t nano_cpus;    /* 0: the default from settings */
    int64_t memory_bytes; /* 0: the default from settings */
    struct ctrspec_port ports[CTRSPEC_MAX_PORTS];
    size_t nports;
    char host[65];        /* a server name, "" : placed automatically */
    int workspace;        /* the owner's workspace at /workspace (default on) */
    int tty;              /* a TTY and an open stdin (default off): its logs are the raw stream */
    /* the agent's form only: who it is for and its id at the server */
    char owner[65];
    int64_t gf_id;
    char host_ip[64];     /* address host ports are bound to */
    /* an app's container (the server's apps module only): its folder
     * <apps_root>/<app> is mounted at /app, a docker-compose.yml is written
     * there, the compose labels set; "" for a plain container */
    char app[64];
    char user[32];        /* "UID[:GID]" it runs as; "" : the image's user */
};

enum ctrspec_form { CTRSPEC_USER, CTRSPEC_AGENT };

/* Parses a create request into s (zeroed first). Returns 0, or -1 with e
 * naming the field (400). Free with ctrspec_free, whatever the result. */
int ctrspec_parse(const json_t *body, enum ctrspec_form form, struct ctrspec *s,
                  struct errinfo *e);
void ctrspec_free(struct ctrspec *s);

/* The agent's form of s as JSON (a new reference): what the server sends. */
json_t *ctrspec_agent_json(const struct ctrspec *s);

/* "512m", "4g", "1.5GiB", "1048576": bytes (units are powers of 1024).
 * 0, or -1 when the text is not one. */
int ctrspec_parse_memory(const char *text, int64_t *bytes);

/* Whether p is a path inside a container the file routes take: absolute,
 * 1..4096 bytes, no NUL, no "." or ".." segment, no empty segment but a
 * final "/" (so nothing climbs out of where it says); "/" itself only
 * when allow_root. */
int ctrspec_valid_path(const char *p, int allow_root);

/* Whether u is a git URL: https://, http://, git://, ssh:// or scp's
 * user@host:path, then 1..1024 printable bytes without spaces, quotes
 * or backslashes, not starting with '-'; "#REF[:FOLDER]" at its end picks
 * a branch or tag (and a folder), as the engines read it. */
int ctrspec_valid_git_url(const char *u);

/* 1 when u is an ssh URL (ssh:// or user@host:path): cloned with a key. */
int ctrspec_git_is_ssh(const char *u);

/* A git URL cut into its parts: url without the fragment, ref ("" for
 * the remote's HEAD: a branch, a tag or a commit's hex), folder ("" for
 * the top). Refs are [A-Za-z0-9._/-] without "..", a leading '-' or '/';
 * the folder is relative, without "." or ".." segments. Returns 0, or -1
 * with e (400 naming field) when u is not a valid git URL or a part is
 * bad or too long for its buffer. */
int ctrspec_git_split(const char *u, const char *field, char *url, size_t urllen, char *ref, size_t reflen,
                      char *folder, size_t folderlen, struct errinfo *e);

/* path with every byte but [A-Za-z0-9/._-] as %XX, for a URL's query. */
void ctrspec_url_path(const char *path, char *out, size_t outlen);

/* Whether s is a container name the engines accept: [A-Za-z0-9] then
 * [A-Za-z0-9_.-], 1..63 bytes. */
int ctrspec_valid_name(const char *s);

/* Whether s is an image reference: [host[:port]/]path[:tag][@sha256:hex]. */
int ctrspec_valid_image(const char *s);

/* Whether s is an image id as engines print it: [sha256:]hex, 12..64
 * lowercase digits (a short id is what `docker images` shows). */
int ctrspec_valid_image_id(const char *s);

/* Whether k is an environment variable's name: a letter or '_', then
 * letters, digits, '_'; at most 128 bytes. */
int ctrspec_valid_env_name(const char *k);

/* Whether r is a git ref a user may name: [A-Za-z0-9._/-], not starting
 * with '-' or '/', without ".." or "//", at most 255 bytes. */
int ctrspec_valid_git_ref(const char *r);

/* Whether s is an app name: a DNS label (1..63 of [a-z0-9-], neither
 * end a '-'), so it can be a folder, a compose project and a host name. */
int ctrspec_valid_app_name(const char *s);

/* Whether s is a user a container runs as: "UID" or "UID:GID", digits. */
int ctrspec_valid_user(const char *s);

/* Whether s looks like a GPU or MIG UUID ("GPU-...", "MIG-..."). */
int ctrspec_valid_uuid(const char *s);

#endif
