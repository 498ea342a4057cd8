/* The health of the host's apps, probed from the host: each app's
 * container as the engine says, and whether its port answers HTTP (and its
 * health path says 2xx or 3xx). All probes of a call run at once, so one
 * app that hangs costs the timeout once, not once per app. */
#ifndef GF_APPPROBE_H
#define GF_APPPROBE_H

#include <jansson.h>

#include "../lib/errinfo.h"
#include "engine.h"

#define APPPROBE_MAX 1000 /* apps in one call */

/* apps: [{"name","container" (engine id),"port" (the host port, 0: none),
 * "host_ip" (where it is published, "" for loopback),"path" ("" : any
 * HTTP answer on the port counts; else it must be 2xx or 3xx),"tail"
 * (log lines to add, 0..200)}]. Returns [{"name","state","running",
 * "exit_code","started_at","finished_at","restart_count","up","http_status",
 * "error","log_tail"}] in the same order, or NULL with e (400 naming the field). */
json_t *appprobe_run(struct engine *eng, const json_t *apps, int timeout_ms, struct errinfo *e);

#endif
