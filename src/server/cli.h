/* `gpufleet servers ...`: the registry from a shell, through the API. */
#ifndef GF_CLI_H
#define GF_CLI_H

/* argv[0] is "servers". Returns the process exit status. */
int cli_servers(int argc, char **argv);

#endif
