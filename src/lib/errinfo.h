/* The outcome of a call that takes outside input (an API body, a rules
 * file, a setting): an HTTP status, a code, the field at fault and a
 * message for people. Every subsystem that validates input fills one; the
 * HTTP layer turns it into {"error":{"code","field","message"}}. */
#ifndef GF_ERRINFO_H
#define GF_ERRINFO_H

struct errinfo {
    int status;       /* HTTP status: 400, 404, 409, 500 ... */
    const char *code; /* static: "invalid_field", "not_found", "conflict", "internal" */
    char field[64];   /* the field at fault, "" when none */
    char message[256];
};

/* Fills e (when not NULL); field may be NULL. */
void errinfo_set(struct errinfo *e, int status, const char *code, const char *field,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
