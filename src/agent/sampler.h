/* The sampler thread: runs every collector on a fixed schedule, renders the
 * sample once (text, JSON) and publishes it as the current snapshot. */
#ifndef GF_AGENT_SAMPLER_H
#define GF_AGENT_SAMPLER_H

#include "history.h"
#include "options.h"
#include "snapshot.h"

struct sampler;

/* Initialises the collectors (those whose init fails are left out) and,
 * unless start_thread is 0, starts sampling every opts->interval_ms.
 * Returns NULL only if the thread cannot be created. opts, store and hist
 * must outlive the sampler. */
struct sampler *sampler_start(const struct agent_options *opts, struct snapshot_store *store,
                              struct history *hist, int start_thread);

/* Takes one sample now on the calling thread (tests; the thread must not be
 * running). */
void sampler_sample_once(struct sampler *s);

/* Stops the thread, shuts the collectors down and frees the sampler. */
void sampler_stop(struct sampler *s);

#endif
