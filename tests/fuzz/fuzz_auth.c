/* Fuzzes what a caller sends to authenticate: the Cookie and Authorization
 * headers, the login body, user names and passwords against the policy,
 * and audit filters into an in-memory audit log. The first byte picks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/audit.h"
#include "../../src/server/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct audit *au;
    char err[256], out[AUTH_SECRET_MAX + 1];
    char user[AUTH_USERNAME_MAX + 1], pass[AUTH_PASSWORD_MAX + 1];
    struct errinfo re;

    if (!au && !(au = audit_open(":memory:", 30, err, sizeof(err))))
        abort();
    if (size < 1)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 5) {
    case 0:
        if (auth_cookie_get(s, "gf_session", out, sizeof(out)) == 0 && strlen(out) >= sizeof(out))
            abort();
        break;
    case 1:
        if (auth_bearer_get(s, out, sizeof(out)) == 0 && (strchr(out, ' ') || !*out))
            abort();
        break;
    case 2:
        if (auth_parse_login(s, size - 1, user, pass, &re) == 0 && !auth_valid_username(user))
            abort();
        break;
    case 3: {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        auth_valid_username(s);
        auth_password_policy(s, nl ? nl + 1 : "", 10, err, sizeof(err));
        break;
    }
    default: {
        /* three NUL-free fields separated by '\n': user, action, target */
        char *f[3] = {s, NULL, NULL};
        for (int i = 1; i < 3 && f[i - 1]; i++) {
            char *nl = strchr(f[i - 1], '\n');
            if (nl) {
                *nl = '\0';
                f[i] = nl + 1;
            }
        }
        struct audit_entry e = {.ts_ms = 1, .username = f[0], .action = f[1] ? f[1] : "",
                                .target = f[2] ? f[2] : "", .result = "ok"};
        audit_write(au, &e);
        struct audit_filter q = {.username = f[0], .action = f[1], .target = f[2], .limit = 5};
        json_decref(audit_query(au, &q));
        break;
    }
    }
    free(s);
    return 0;
}
