/* The fleet file (fleet.yaml): the servers a site should have, with their
 * SSH and BMC access, read and checked (every error names the key and its
 * line), and the plan that makes the registry match it. */
#ifndef GF_FLEETFILE_H
#define GF_FLEETFILE_H

#include <jansson.h>
#include <stddef.h>

#include "../lib/errinfo.h"

#define FLEETFILE_MAX_BYTES (4u << 20)
#define FLEETFILE_MAX_SERVERS 2000

/* Reads a fleet file (YAML or JSON text) and, when secrets is not NULL,
 * its secrets file (admin_password, bmc_password, ssh_password, servers:
 * {NAME: {bmc_password, ssh_password}}). Returns
 * the fleet with every default applied:
 *   {"site","admin_user","admin_password" (when given),"agent":{"port","interval_ms"},
 *    "ssh":{"user","port","key"} (the site's defaults),
 *    "servers":[{"name","address","agent_port","labels","gpu",
 *                "ssh":{"user","port","key","password"},
 *                "bmc":{"address","user","password"} (absent without an address)}]}
 * (passwords included: never print it). NULL with err (400, field the key's
 * path, the message starting "line N: ") when the text is not a fleet. */
json_t *fleetfile_parse(const char *text, size_t len, const char *secrets, size_t secrets_len,
                        struct errinfo *err);

/* What applying fleet (from fleetfile_parse) to the registry's servers
 * (reg_list) would do: {"site", "changes":[{"server","action","fields"}],
 * "summary":{"install","update","unchanged","remove"}}: install (not
 * registered), update (fields: what differs, as [registered, file]),
 * unchanged, remove (registered, not in the file: done only when asked).
 * Never a password. New reference. */
json_t *fleetfile_plan(const json_t *fleet, const json_t *registered);

#endif
