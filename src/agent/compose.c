/* An app's compose file and labels (see compose.h). */
#include "compose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* A JSON string: YAML 1.2 reads it as the same string. */
static void quoted(struct buf *out, const char *s)
{
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    buf_puts(out, t ? t : "\"\"");
    free(t);
    json_decref(j);
}

static void line(struct buf *out, const char *indent, const char *key, const char *value)
{
    buf_printf(out, "%s%s: ", indent, key);
    quoted(out, value);
    buf_putc(out, '\n');
}

void compose_text(const struct ctrspec *s, const char *dir, struct buf *out)
{
    char bind[4400], num[64];
    const char *k;
    json_t *v;
    size_t i;

    buf_printf(out, "# Written by gpufleet for the app %s: the container it runs. `docker compose up -d`\n"
                    "# (or docker-compose) in this folder makes the same one; gpufleet rewrites this file\n"
                    "# when the app is reinstalled or updated.\n",
               s->app);
    buf_puts(out, "services:\n  " COMPOSE_SERVICE ":\n");
    line(out, "    ", "image", s->image);
    line(out, "    ", "container_name", s->name);
    line(out, "    ", "working_dir", "/app");
    if (s->user[0])
        line(out, "    ", "user", s->user);
    if (json_array_size(s->command)) { /* as the engine call: the image's entrypoint replaced */
        buf_puts(out, "    entrypoint:\n");
        json_array_foreach(s->command, i, v) {
            buf_puts(out, "      - ");
            quoted(out, json_string_value(v));
            buf_putc(out, '\n');
        }
    }
    /* as the engine call: without GPUs, a CUDA image's own
     * NVIDIA_VISIBLE_DEVICES=all would see every GPU where nvidia is the
     * default runtime */
    if (json_object_size(s->env) || !s->ngpus) {
        buf_puts(out, "    environment:\n");
        json_object_foreach(s->env, k, v) {
            if (!s->ngpus && !strcmp(k, "NVIDIA_VISIBLE_DEVICES"))
                continue;
            buf_puts(out, "      ");
            quoted(out, k);
            buf_puts(out, ": ");
            quoted(out, json_string_value(v));
            buf_putc(out, '\n');
        }
        if (!s->ngpus)
            buf_puts(out, "      NVIDIA_VISIBLE_DEVICES: \"void\"\n");
    }
    snprintf(bind, sizeof(bind), "%s:/app", dir);
    buf_puts(out, "    volumes:\n      - ");
    quoted(out, bind);
    buf_putc(out, '\n');
    if (s->nports) {
        buf_puts(out, "    ports:\n");
        for (i = 0; i < s->nports; i++) {
            char p[128];
            snprintf(p, sizeof(p), "%s:%u:%u/%s", s->host_ip[0] ? s->host_ip : "127.0.0.1", s->ports[i].host,
                     s->ports[i].container, s->ports[i].proto);
            buf_puts(out, "      - ");
            quoted(out, p);
            buf_putc(out, '\n');
        }
    }
    buf_puts(out, "    restart: unless-stopped\n    init: true\n");
    if (s->nano_cpus) {
        snprintf(num, sizeof(num), "%.3f", (double)s->nano_cpus / 1e9);
        line(out, "    ", "cpus", num);
    }
    if (s->memory_bytes)
        buf_printf(out, "    mem_limit: %lld\n", (long long)s->memory_bytes);
    if (s->ngpus) {
        buf_puts(out, "    deploy:\n      resources:\n        reservations:\n          devices:\n"
                      "            - driver: nvidia\n              capabilities: [gpu]\n"
                      "              device_ids:\n");
        for (i = 0; i < s->ngpus; i++) {
            buf_puts(out, "                - ");
            quoted(out, s->gpus[i]);
            buf_putc(out, '\n');
        }
    }
    buf_puts(out, "    labels:\n");
    snprintf(num, sizeof(num), "%lld", (long long)s->gf_id);
    line(out, "      ", ENGINE_LABEL_MANAGED, "true");
    line(out, "      ", ENGINE_LABEL_OWNER, s->owner);
    line(out, "      ", ENGINE_LABEL_ID, num);
    line(out, "      ", ENGINE_LABEL_APP, s->app);
}

int compose_write(const struct ctrspec *s, const char *dir, struct errinfo *e)
{
    char path[4400], tmp[4450];
    struct buf text;
    FILE *f = NULL;
    int rc = -1;

    buf_init(&text, 0);
    compose_text(s, dir, &text);
    snprintf(path, sizeof(path), "%s/" COMPOSE_FILE, dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    if (!(f = fopen(tmp, "w")) || fwrite(text.data, 1, text.len, f) != text.len || fclose(f) != 0) {
        f = NULL;
        errinfo_set(e, 500, "compose", "app", "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) < 0) {
        errinfo_set(e, 500, "compose", "app", "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    if (rc < 0)
        unlink(tmp);
    buf_free(&text);
    return rc;
}

void compose_labels(json_t *labels, const struct ctrspec *s, const char *dir)
{
    char files[4450];

    snprintf(files, sizeof(files), "%s/" COMPOSE_FILE, dir);
    json_object_set_new(labels, "com.docker.compose.project", json_string(s->app));
    json_object_set_new(labels, "com.docker.compose.service", json_string(COMPOSE_SERVICE));
    json_object_set_new(labels, "com.docker.compose.oneoff", json_string("False"));
    json_object_set_new(labels, "com.docker.compose.container-number", json_string("1"));
    json_object_set_new(labels, "com.docker.compose.project.working_dir", json_string(dir));
    json_object_set_new(labels, "com.docker.compose.project.config_files", json_string(files));
    json_object_set_new(labels, ENGINE_LABEL_APP, json_string(s->app));
}
