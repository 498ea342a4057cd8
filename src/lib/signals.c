/* Termination signals, waited for synchronously by the main thread. */
#include "signals.h"

#include <pthread.h>

#include "log.h"

void signals_block_termination(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void signals_wait(const sigset_t *set)
{
    int sig;

    if (sigwait(set, &sig) == 0)
        log_info("signal %d: shutting down", sig);
}
