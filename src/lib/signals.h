/* Process signals for the daemons: termination is handled by one thread. */
#ifndef GF_SIGNALS_H
#define GF_SIGNALS_H

#include <signal.h>

/* Blocks SIGINT and SIGTERM in the calling thread (threads created after
 * inherit the mask) and ignores SIGPIPE. Call before starting threads. */
void signals_block_termination(sigset_t *set);

/* Waits for a signal of set and logs it. */
void signals_wait(const sigset_t *set);

#endif
