/* One thread per stream; a list of them under one lock, reaped as they
 * end. Shutting down a stream's sockets is how it is told to stop: every
 * blocking call on them returns. */
#include "streamset.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "xalloc.h"

struct stream {
    struct stream *next;
    struct streamset *set;
    pthread_t thread;
    int64_t user;
    int fds[2];
    int done;     /* fn returned: its sockets are about to close */
    int finished; /* cleanup ran: the thread can be joined */
    void (*fn)(void *);
    void (*cleanup)(void *);
    void *arg;
};

struct streamset {
    pthread_mutex_t lock;
    struct stream *list;
    size_t running, seats, max_total, max_per_user;
    struct user_seats {
        int64_t user;
        size_t n;
    } *per_user;
    size_t n_users;
    int closing;
};

struct streamset *streamset_new(size_t max_total, size_t max_per_user)
{
    struct streamset *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->max_total = max_total;
    s->max_per_user = max_per_user;
    return s;
}

/* The count of user's seats and streams (lock held); created at 0. */
static size_t *user_count(struct streamset *s, int64_t user)
{
    for (size_t i = 0; i < s->n_users; i++)
        if (s->per_user[i].user == user)
            return &s->per_user[i].n;
    s->per_user = xrealloc(s->per_user, (s->n_users + 1) * sizeof(*s->per_user));
    s->per_user[s->n_users] = (struct user_seats){user, 0};
    return &s->per_user[s->n_users++].n;
}

/* Joins and frees streams that ended (lock held; dropped while joining). */
static void reap(struct streamset *s)
{
    for (struct stream **pp = &s->list; *pp;) {
        struct stream *st = *pp;
        if (!st->finished) {
            pp = &st->next;
            continue;
        }
        *pp = st->next;
        pthread_mutex_unlock(&s->lock);
        pthread_join(st->thread, NULL);
        pthread_mutex_lock(&s->lock);
        free(st);
        pp = &s->list; /* the list may have changed while unlocked */
    }
}

int streamset_reserve(struct streamset *s, int64_t user)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    reap(s);
    size_t *mine = user_count(s, user);
    if (s->closing || s->seats >= s->max_total)
        rc = -1;
    else if (s->max_per_user && *mine >= s->max_per_user)
        rc = -2;
    if (rc == 0) {
        s->seats++;
        (*mine)++;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* lock held */
static void unseat(struct streamset *s, int64_t user)
{
    size_t *mine = user_count(s, user);
    if (*mine)
        (*mine)--;
    if (s->seats)
        s->seats--;
}

void streamset_unreserve(struct streamset *s, int64_t user)
{
    pthread_mutex_lock(&s->lock);
    unseat(s, user);
    pthread_mutex_unlock(&s->lock);
}

static void *stream_main(void *arg)
{
    struct stream *st = arg;
    st->fn(st->arg);
    /* done before the sockets close, so that streamset_free never shuts
     * down a descriptor number already reused by someone else */
    pthread_mutex_lock(&st->set->lock);
    st->done = 1;
    pthread_mutex_unlock(&st->set->lock);
    if (st->cleanup)
        st->cleanup(st->arg);
    pthread_mutex_lock(&st->set->lock);
    unseat(st->set, st->user);
    st->set->running--;
    st->finished = 1;
    pthread_mutex_unlock(&st->set->lock);
    return NULL;
}

int streamset_run(struct streamset *s, int64_t user, void (*fn)(void *), void (*cleanup)(void *),
                  void *arg, int fd1, int fd2)
{
    struct stream *st = xcalloc(1, sizeof(*st));
    *st = (struct stream){.set = s, .user = user, .fds = {fd1, fd2}, .fn = fn, .cleanup = cleanup, .arg = arg};
    pthread_mutex_lock(&s->lock);
    if (s->closing || pthread_create(&st->thread, NULL, stream_main, st) != 0) {
        unseat(s, user);
        pthread_mutex_unlock(&s->lock);
        free(st);
        return -1;
    }
    st->next = s->list;
    s->list = st;
    s->running++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int streamset_closing(struct streamset *s)
{
    pthread_mutex_lock(&s->lock);
    int c = s->closing;
    pthread_mutex_unlock(&s->lock);
    return c;
}

size_t streamset_count(struct streamset *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->running;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void streamset_close(struct streamset *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    for (struct stream *st = s->list; st; st = st->next)
        for (int i = 0; i < 2; i++)
            if (!st->done && st->fds[i] >= 0)
                shutdown(st->fds[i], SHUT_RDWR);
    while (s->list) {
        struct stream *st = s->list;
        s->list = st->next;
        pthread_mutex_unlock(&s->lock);
        pthread_join(st->thread, NULL);
        pthread_mutex_lock(&s->lock);
        free(st);
    }
    pthread_mutex_unlock(&s->lock);
}

void streamset_free(struct streamset *s)
{
    if (!s)
        return;
    streamset_close(s);
    pthread_mutex_destroy(&s->lock);
    free(s->per_user);
    free(s);
}
