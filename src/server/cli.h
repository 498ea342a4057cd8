/* The command line: `gpufleet servers ...` through the API; `gpufleet user`
 * and `gpufleet token` on the database. */
#ifndef GF_CLI_H
#define GF_CLI_H

/* argv[0] is "servers". Returns the process exit status. */
int cli_servers(int argc, char **argv);

/* `gpufleet user ...` and `gpufleet token ...`, on DATA/auth.db directly.
 * argv[0] is the command word. Return the process exit status. */
int cli_user(int argc, char **argv);
int cli_token(int argc, char **argv);

/* `gpufleet backup DEST` and `gpufleet restore SRC` (argv[0] says which).
 * Returns the process exit status. */
int cli_backup(int argc, char **argv);

#endif
