/* The command line: `gpufleet servers ...` through the API; `gpufleet user`
 * and `gpufleet token` on the database. */
#ifndef GF_CLI_H
#define GF_CLI_H

#include "../lib/buf.h"

/* A request to the server at base (a URL), with $GPUFLEET_TOKEN as the
 * bearer token; the answer's body into out. The HTTP status, or -1 (the
 * error printed). */
long cli_request(const char *base, const char *method, const char *path, const char *body,
                 struct buf *out);

/* The flags every API command takes first: --server URL (else
 * $GPUFLEET_URL, else the local default) and --json. Consumes them from
 * argc and argv (argv[0], the command word, first). The base URL. */
const char *cli_api_flags(int *argc, char ***argv, int *as_json);

/* Prints an error answer's field and message to stderr (exit status 1),
 * else the body to stdout (0). */
int cli_report(long status, struct buf *out);

/* `gpufleet containers ...` and `gpufleet gpus` through the API. argv[0]
 * is the command word. Returns the process exit status. */
int cli_containers(int argc, char **argv);

/* `gpufleet images ...` through the API. Returns the exit status. */
int cli_images(int argc, char **argv);

/* argv[0] is "servers". Returns the process exit status. */
int cli_servers(int argc, char **argv);

/* `gpufleet user ...` and `gpufleet token ...`, on DATA/auth.db directly.
 * argv[0] is the command word. Return the process exit status. */
int cli_user(int argc, char **argv);
int cli_token(int argc, char **argv);

/* `gpufleet backup DEST` and `gpufleet restore SRC` (argv[0] says which).
 * Returns the process exit status. */
int cli_backup(int argc, char **argv);

/* `gpufleet prometheus-config`: a scrape configuration for the fleet, read
 * from DATA/gpufleet.db. Returns the exit status. */
int cli_prometheus_config(int argc, char **argv);

/* `gpufleet fleet plan ...` through the API. argv[0] is the command word.
 * Returns the process exit status. */
int cli_fleet(int argc, char **argv);

/* `gpufleet ssh-key [--data DIR]`: the fleet key's public half. */
int cli_ssh_key(int argc, char **argv);

#endif
