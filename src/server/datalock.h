/* One server per data folder: two would write the same store and
 * databases. `serve` holds an flock on DATA/serve.lock for its lifetime;
 * a restore takes it too, so it never replaces what a server has open. */
#ifndef GF_DATALOCK_H
#define GF_DATALOCK_H

#include <stddef.h>

/* Takes the lock of data folder dir (which must exist), waiting up to
 * wait_s seconds for a holder to let go: a restart (systemd, a test) may
 * start the next server before the last one has closed its store. The
 * lock's file descriptor (kept open: the lock goes with it, and with the
 * process), or -1 with err naming the holder's pid. */
int datalock_take(const char *dir, int wait_s, char *err, size_t errlen);

#endif
