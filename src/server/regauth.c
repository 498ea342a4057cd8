/* One small JSON file, rewritten whole (temp + rename, mode 0600) under a
 * lock: registries are few and change seldom. */
#include "regauth.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void path_of(const char *dir, char *out, size_t len)
{
    snprintf(out, len, "%s/registry_auth.json", dir);
}

static json_t *load(const char *dir)
{
    char p[4200];
    path_of(dir, p, sizeof(p));
    json_t *j = json_load_file(p, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

static int save(const char *dir, json_t *all, struct errinfo *e)
{
    char p[4200], tmp[4300];
    path_of(dir, p, sizeof(p));
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    mode_t old = umask(077);
    int rc = json_dump_file(all, tmp, JSON_COMPACT | JSON_SORT_KEYS);
    umask(old);
    if (rc != 0 || chmod(tmp, 0600) != 0 || rename(tmp, p) != 0) {
        errinfo_set(e, 500, "internal", NULL, "cannot write %s", p);
        return -1;
    }
    return 0;
}

/* host[:port]: letters, digits, '.', '-', then an optional port. */
static int valid_registry(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (!n || n > 253)
        return 0;
    const char *colon = strchr(r, ':');
    for (const char *p = r; *p && p != colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            return 0;
    if (colon) {
        if (!colon[1] || strlen(colon + 1) > 5)
            return 0;
        for (const char *p = colon + 1; *p; p++)
            if (*p < '0' || *p > '9')
                return 0;
    }
    return r[0] != '.' && r[0] != '-' && r[0] != ':';
}

static int printable(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

json_t *regauth_list(const char *data_dir)
{
    json_t *out = json_array(), *v;
    const char *k;
    pthread_mutex_lock(&lock);
    json_t *all = load(data_dir);
    json_object_foreach(all, k, v)
        json_array_append_new(out, json_pack("{s:s,s:s,s:b}", "registry", k, "user",
                                             json_string_value(json_object_get(v, "user")) ?: "",
                                             "has_password", json_string_value(json_object_get(v, "password")) != NULL));
    json_decref(all);
    pthread_mutex_unlock(&lock);
    return out;
}

int regauth_set(const char *data_dir, const char *registry, const char *user, const char *password,
                struct errinfo *e)
{
    if (!valid_registry(registry)) {
        errinfo_set(e, 400, "invalid_field", "registry", "a registry is host or host:port");
        return -1;
    }
    if (!printable(user, 256)) {
        errinfo_set(e, 400, "invalid_field", "user", "user is 1..256 printable bytes");
        return -1;
    }
    if (!printable(password, 1024)) {
        errinfo_set(e, 400, "invalid_field", "password", "password is 1..1024 printable bytes");
        return -1;
    }
    pthread_mutex_lock(&lock);
    json_t *all = load(data_dir);
    json_object_set_new(all, registry, json_pack("{s:s,s:s}", "user", user, "password", password));
    int rc = save(data_dir, all, e);
    json_decref(all);
    pthread_mutex_unlock(&lock);
    return rc;
}

int regauth_delete(const char *data_dir, const char *registry, struct errinfo *e)
{
    pthread_mutex_lock(&lock);
    json_t *all = load(data_dir);
    int rc = -1;
    if (!registry || !json_object_get(all, registry))
        errinfo_set(e, 404, "not_found", "registry", "no credentials for %.200s", registry ? registry : "");
    else if (json_object_del(all, registry) == 0)
        rc = save(data_dir, all, e);
    json_decref(all);
    pthread_mutex_unlock(&lock);
    return rc;
}

void regauth_registry_of(const char *image, char *out, size_t outlen)
{
    size_t n = strcspn(image, "/");
    if (image[n] == '/' && (memchr(image, '.', n) || memchr(image, ':', n) || (n == 9 && !strncmp(image, "localhost", 9))))
        snprintf(out, outlen, "%.*s", (int)n, image);
    else
        snprintf(out, outlen, "docker.io");
}

json_t *regauth_for_image(const char *data_dir, const char *image)
{
    char reg[300];
    json_t *out = NULL;
    regauth_registry_of(image ? image : "", reg, sizeof(reg));
    pthread_mutex_lock(&lock);
    json_t *all = load(data_dir), *v = json_object_get(all, reg);
    if (v)
        out = json_pack("{s:s,s:s,s:s}", "username", json_string_value(json_object_get(v, "user")) ?: "",
                        "password", json_string_value(json_object_get(v, "password")) ?: "", "serveraddress", reg);
    json_decref(all);
    pthread_mutex_unlock(&lock);
    return out;
}
