/* Making the fleet match a fleet file: each server installed, updated or
 * removed over SSH (upload, configure, start, verify, register), hosts in
 * parallel with a bound, one failing host never stopping the others, the
 * progress of every host and step readable while it runs. One apply at a
 * time. */
#ifndef GF_FLEETOPS_H
#define GF_FLEETOPS_H

#include <jansson.h>

#include "../lib/errinfo.h"

struct server_app;
struct fleetops;

struct fleetops *fleetops_new(struct server_app *app);
/* Waits for a running apply to end. */
void fleetops_free(struct fleetops *f);

/* Starts applying fleet (from fleetfile_parse; reference stolen): with
 * prune, registered servers the file does not name are uninstalled and
 * removed. The job's id, or -1 with err (409 while another runs). */
long fleetops_start(struct fleetops *f, json_t *fleet, int prune, struct errinfo *err);

/* The newest apply: {"id","state":"running"|"done","started_ms",
 * "finished_ms","hosts":[{"server","action","state","step","detail",
 * "ms"}],"summary":{"ok","unchanged","failed","kept","removed"}}, host
 * state waiting|running|ok|unchanged|failed|kept|removed. NULL when none
 * ran. New reference. */
json_t *fleetops_status(struct fleetops *f);

/* How server name is reached over SSH: as the apply that installed it did
 * (DATA/fleet_ssh.json: user, port, key file), else root on port 22; key
 * "" is the fleet key. */
void fleetops_ssh_of(struct fleetops *f, const char *name, char *user, size_t userlen, int *port,
                     char *key, size_t keylen);

/* The embedded systemd unit the install writes (deploy/gpufleet-agent.service). */
extern const char gf_agent_unit[];

#endif
