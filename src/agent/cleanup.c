/* Cleanup from the engine's own accounting (/system/df: sizes and how
 * many containers use each image and volume), so the plan's bytes are the
 * engine's and "unused" means what the engine means. */
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/buf.h"
#include "gitclone.h"
#include "engine.h"

#define MAX_ITEMS 10000

static const struct {
    const char *name;
    int bit;
} kinds[] = {{"containers", CLEANUP_CONTAINERS}, {"dangling", CLEANUP_DANGLING},
             {"images", CLEANUP_IMAGES}, {"volumes", CLEANUP_VOLUMES}, {"cache", CLEANUP_CACHE},
             {"apps", CLEANUP_APPS}};

int cleanup_kinds(const char *text, int *mask, struct errinfo *e)
{
    char word[32];
    *mask = 0;
    if (!text || !*text) {
        *mask = CLEANUP_CONTAINERS | CLEANUP_DANGLING;
        return 0;
    }
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, ",");
        int found = 0;
        snprintf(word, sizeof(word), "%.*s", (int)(n < sizeof(word) - 1 ? n : sizeof(word) - 1), p);
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (n == strlen(kinds[i].name) && !strncmp(p, kinds[i].name, n)) {
                *mask |= kinds[i].bit;
                found = 1;
            }
        if (!found) {
            errinfo_set(e, 400, "invalid_field", "kinds", "'%.30s' is not containers, dangling, images, volumes, cache or apps", word);
            return -1;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static json_int_t int_of(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : json_is_real(v) ? (json_int_t)json_real_value(v) : -1;
}

static void add(json_t *items, json_int_t *total, const char *kind, const char *id, const char *name, json_int_t bytes)
{
    if (bytes < 0)
        bytes = 0; /* the engine did not count it */
    json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:I}", "kind", kind, "id", id, "name", name, "bytes", bytes));
    *total += bytes;
}

/* Podman's /system/df writes an untagged image's tag as "<none>",
 * Docker's as "<none>:<none>". */
static int untagged(const char *tag)
{
    size_t n = strlen(tag);
    return n >= 6 && !strcmp(tag + n - 6, "<none>");
}

/* The engine's container list (engine_list's form) says whether an image
 * id (with or without "sha256:") is any container's, running or not. */
static int image_used(const json_t *containers, const char *id)
{
    const char *bare = !strncmp(id, "sha256:", 7) ? id + 7 : id;
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const char *used = json_string_value(json_object_get(c, "image_id"));
        if (used && !strcmp(!strncmp(used, "sha256:", 7) ? used + 7 : used, bare))
            return 1;
    }
    return 0;
}

/* Whether container id is one gpufleet made (its label, from the list:
 * Podman's /system/df gives no labels). */
static int container_managed(const json_t *containers, const char *id)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const char *cid = json_string_value(json_object_get(c, "id"));
        if (cid && !strcmp(cid, id))
            return json_is_true(json_object_get(c, "managed"));
    }
    return 1; /* not in the list: not known to be safe */
}

/* An image's name: its first tag, else "<none>" (untagged: dangling).
 * Tags from the engine's image list where it has the image (Podman's df
 * gives only the part after the colon), else from df. */
static const char *image_name(const json_t *img, const json_t *images, int *dangling)
{
    const char *id = json_string_value(json_object_get(img, "Id"));
    const char *bare = !strncmp(id, "sha256:", 7) ? id + 7 : id;
    json_t *tags = json_object_get(img, "RepoTags");
    size_t k;
    json_t *listed;
    json_array_foreach(images, k, listed) {
        const char *lid = json_string_value(json_object_get(listed, "Id"));
        if (lid && !strcmp(!strncmp(lid, "sha256:", 7) ? lid + 7 : lid, bare))
            tags = json_object_get(listed, "RepoTags");
    }
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        const char *s = json_string_value(t);
        if (s && !untagged(s)) {
            *dangling = 0;
            return s;
        }
    }
    *dangling = 1;
    return "<none>";
}

static void plan_images(const json_t *df, const json_t *containers, const json_t *images, int mask,
                        json_t *items, json_int_t *total)
{
    size_t i;
    json_t *img;
    json_array_foreach(json_object_get(df, "Images"), i, img) {
        const char *id = json_string_value(json_object_get(img, "Id"));
        int dangling;
        if (!id)
            continue;
        const char *name = image_name(img, images, &dangling);
        /* -1: the engine did not count; only a counted 0 is unused */
        if (!id || !engine_valid_id(!strncmp(id, "sha256:", 7) ? id + 7 : id) ||
            int_of(img, "Containers") != 0 || image_used(containers, id))
            continue;
        if (!(mask & CLEANUP_IMAGES) && !(dangling && (mask & CLEANUP_DANGLING)))
            continue;
        json_int_t size = int_of(img, "Size"), shared = int_of(img, "SharedSize");
        char full[160];
        /* one spelling for both engines (Podman's df drops "sha256:") */
        snprintf(full, sizeof(full), "%s%.140s", strncmp(id, "sha256:", 7) ? "sha256:" : "", id);
        /* layers other images share stay: only its own bytes are freed */
        add(items, total, "image", full, name, shared > 0 && shared <= size ? size - shared : size);
    }
}

static void plan_containers(const json_t *df, const json_t *containers, json_t *items, json_int_t *total)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(df, "Containers"), i, c) {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *state = json_string_value(json_object_get(c, "State"));
        const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
        if (!id || !engine_valid_id(id) || !state || container_managed(containers, id))
            continue; /* gpufleet's containers are their owners' to remove */
        if (strcmp(state, "exited") && strcmp(state, "created") && strcmp(state, "dead"))
            continue;
        add(items, total, "container", id, name ? name + (name[0] == '/') : id, int_of(c, "SizeRw"));
    }
}

static void plan_volumes(const json_t *df, json_t *items, json_int_t *total)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(df, "Volumes"), i, v) {
        const char *name = json_string_value(json_object_get(v, "Name"));
        json_t *use = json_object_get(v, "UsageData");
        if (!name || !engine_valid_id(name) || int_of(use, "RefCount") != 0)
            continue;
        add(items, total, "volume", name, name, int_of(use, "Size"));
    }
}

/* BuildKit's records (Docker with buildx; a classic build's layers are
 * images, and Podman's df has none): those not in use. */
static void plan_cache(const json_t *df, json_t *items, json_int_t *total)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(df, "BuildCache"), i, c) {
        const char *id = json_string_value(json_object_get(c, "ID"));
        const char *what = json_string_value(json_object_get(c, "Description"));
        if (!id || !engine_valid_id(id) || json_is_true(json_object_get(c, "InUse")))
            continue;
        add(items, total, "cache", id, what && *what ? what : id, int_of(c, "Size"));
    }
}

json_t *cleanup_plan_from_df(const char *text, size_t len, const json_t *containers,
                             const json_t *images, int mask, struct errinfo *e)
{
    json_t *df = json_loadb(text, len, 0, NULL), *items = json_array();
    json_int_t total = 0;
    if (!json_is_object(df)) {
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's /system/df answer is not a JSON object");
        json_decref(df);
        json_decref(items);
        return NULL;
    }
    if (mask & CLEANUP_CONTAINERS)
        plan_containers(df, containers, items, &total);
    if (mask & (CLEANUP_DANGLING | CLEANUP_IMAGES))
        plan_images(df, containers, images, mask, items, &total);
    if (mask & CLEANUP_VOLUMES)
        plan_volumes(df, items, &total);
    if (mask & CLEANUP_CACHE)
        plan_cache(df, items, &total);
    json_decref(df);
    return json_pack("{s:o,s:I}", "items", items, "bytes", total);
}

/* ---- app folders ---- */

static __thread long long du_bytes; /* nftw's callback takes no argument */

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    du_bytes += (long long)st->st_blocks * 512;
    return 0;
}

/* Whether name is in the comma-separated list. */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list ? list : ""; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && !strncmp(p, name, n))
            return 1;
        p += k + (p[k] == ',');
    }
    return 0;
}

/* The folders under the apps_root no app knows (an app deinstalled with
 * its folder kept, a clone cut off halfway), with their size. */
static void plan_app_folders(struct engine *eng, const char *known, json_t *items, json_int_t *total)
{
    const char *root = engine_apps_root(eng);
    DIR *d = *root ? opendir(root) : NULL;
    struct dirent *de;

    while (d && (de = readdir(d))) {
        char path[4400];
        struct stat st;
        if (de->d_name[0] == '.' || listed(known, de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
        if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        du_bytes = 0;
        nftw(path, du_one, 16, FTW_PHYS);
        add(items, total, "app_folder", de->d_name, path, du_bytes);
    }
    if (d)
        closedir(d);
}

/* The containers labelled as an app's (gpufleet's, or a `docker compose
 * up` by hand in an app's folder: the compose file has the label) whose
 * app no record knows, running or not: with its GPUs and port it is junk
 * nobody sees in the apps page. Their writable layer's size from df. */
static void plan_app_containers(const json_t *df, const json_t *containers, const char *known, json_t *items,
                                json_int_t *total)
{
    size_t i, k;
    json_t *c, *d;
    json_array_foreach(containers, i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *app = json_string_value(json_object_get(c, "app"));
        const char *name = json_string_value(json_object_get(c, "name"));
        json_int_t bytes = 0;
        if (!id || !engine_valid_id(id) || !app || !*app || listed(known, app))
            continue;
        json_array_foreach(json_object_get(df, "Containers"), k, d)
            if (!strcmp(json_string_value(json_object_get(d, "Id")) ?: "", id))
                bytes = int_of(d, "SizeRw");
        add(items, total, "app_container", id, name && *name ? name : id, bytes);
    }
}

json_t *cleanup_plan(struct engine *eng, int mask, const char *known, struct errinfo *e)
{
    struct buf b;
    json_t *out = NULL;
    /* the list first: a container made after it is in neither, so it is
     * never taken for junk nor its image for unused */
    long status;
    json_t *containers = engine_list(eng, e);
    json_t *images = containers ? engine_call_json(eng, "GET", "/" ENGINE_API "/images/json", NULL, 60, &status, e) : NULL;
    if (!images)
        goto out;
    buf_init(&b, 64u << 20);
    status = engine_call(eng, "GET", "/" ENGINE_API "/system/df", NULL, 120, NULL, &b, e);
    if (status >= 300)
        engine_refused(&b, status, 502, e);
    else if (status > 0)
        out = cleanup_plan_from_df(b.data ? b.data : "", b.len, containers, images, mask, e);
    if (out && (mask & CLEANUP_APPS)) {
        json_int_t total = json_integer_value(json_object_get(out, "bytes"));
        json_t *df = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
        plan_app_containers(df, containers, known, json_object_get(out, "items"), &total);
        json_decref(df);
        plan_app_folders(eng, known, json_object_get(out, "items"), &total);
        json_object_set_new(out, "bytes", json_integer(total));
    }
    buf_free(&b);
out:
    json_decref(containers);
    json_decref(images);
    return out;
}

/* The plan's item of kind and id, or NULL. */
static json_t *planned(const json_t *plan, const char *kind, const char *id)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(plan, "items"), i, it)
        if (!strcmp(json_string_value(json_object_get(it, "kind")), kind) &&
            !strcmp(json_string_value(json_object_get(it, "id")), id))
            return it;
    return NULL;
}

static int remove_one(struct engine *eng, const char *kind, const char *id, struct errinfo *e)
{
    char path[400];
    struct buf b;
    const char *method = "DELETE";
    if (!strcmp(kind, "app_folder")) {
        char dir[4400];
        snprintf(dir, sizeof(dir), "%s/%s", engine_apps_root(eng), id);
        if (!*engine_apps_root(eng) || strchr(id, '/') || id[0] == '.' || gitclone_remove_tree(dir) < 0) {
            errinfo_set(e, 500, "internal", NULL, "cannot remove %s: %s", dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!strcmp(kind, "cache")) { /* by its id: {"id":["ID"]} */
        method = "POST";
        snprintf(path, sizeof(path), "/%s/build/prune?filters=%%7B%%22id%%22%%3A%%5B%%22%s%%22%%5D%%7D", ENGINE_API, id);
    } else if (!strcmp(kind, "container"))
        snprintf(path, sizeof(path), "/%s/containers/%s", ENGINE_API, id);
    else if (!strcmp(kind, "app_container")) /* it may run: stopped and removed */
        snprintf(path, sizeof(path), "/%s/containers/%s?force=1", ENGINE_API, id);
    else if (!strcmp(kind, "image")) /* no force: an image that came into use stays */
        snprintf(path, sizeof(path), "/%s/images/%s", ENGINE_API, id);
    else
        snprintf(path, sizeof(path), "/%s/volumes/%s", ENGINE_API, id);
    buf_init(&b, 1u << 20);
    long status = engine_call(eng, method, path, NULL, 120, NULL, &b, e);
    if (status >= 300)
        engine_refused(&b, status, 409, e);
    buf_free(&b);
    return status >= 200 && status < 300 ? 0 : -1;
}

json_t *cleanup_run(struct engine *eng, const json_t *body, struct errinfo *e)
{
    json_t *want = json_object_get(body, "items"), *removed = json_array(), *skipped = json_array();
    json_int_t freed = 0;
    size_t i;
    json_t *it;

    if (!json_is_array(want) || json_array_size(want) > MAX_ITEMS) {
        errinfo_set(e, 400, "invalid_field", "items", "items is an array of at most %d {\"kind\",\"id\"} (a plan's items)", MAX_ITEMS);
        goto fail;
    }
    json_array_foreach(want, i, it) {
        const char *kind = json_string_value(json_object_get(it, "kind"));
        const char *id = json_string_value(json_object_get(it, "id"));
        if (!kind || !id ||
            (strcmp(kind, "container") && strcmp(kind, "image") && strcmp(kind, "volume") && strcmp(kind, "cache") &&
             strcmp(kind, "app_container") && strcmp(kind, "app_folder"))) {
            errinfo_set(e, 400, "invalid_field", "items",
                        "item %zu needs a kind (container, image, volume, cache, app_container or app_folder) and an id", i);
            goto fail;
        }
    }
    /* what is unused now: an item that came into use since the plan is
     * left, and nothing outside the list is touched */
    const char *known = json_string_value(json_object_get(body, "known"));
    json_t *now = cleanup_plan(eng, CLEANUP_CONTAINERS | CLEANUP_IMAGES | CLEANUP_VOLUMES | CLEANUP_CACHE | CLEANUP_APPS,
                               known, e);
    if (!now)
        goto fail;
    /* containers first: an image they held is not in the plan anyway */
    static const char *order[] = {"container", "app_container", "image", "volume", "cache", "app_folder"};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        json_array_foreach(want, i, it) {
            const char *kind = json_string_value(json_object_get(it, "kind"));
            const char *id = json_string_value(json_object_get(it, "id"));
            struct errinfo err = {0};
            if (strcmp(kind, order[k]))
                continue;
            json_t *p = planned(now, kind, id);
            if (!p) {
                json_array_append_new(skipped, json_pack("{s:s,s:s,s:s}", "kind", kind, "id", id, "reason",
                                                         "gone, or in use since the plan"));
                continue;
            }
            if (remove_one(eng, kind, id, &err) < 0) {
                json_array_append_new(skipped, json_pack("{s:s,s:s,s:s}", "kind", kind, "id", id, "reason", err.message));
                continue;
            }
            freed += json_integer_value(json_object_get(p, "bytes"));
            json_array_append(removed, p);
        }
    json_decref(now);
    return json_pack("{s:o,s:o,s:I}", "removed", removed, "skipped", skipped, "bytes", freed);
fail:
    json_decref(removed);
    json_decref(skipped);
    return NULL;
}
