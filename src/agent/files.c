/* Listing with `stat` in the container instead of the archive API: a
 * folder of datasets is listed without the engine tarring every byte of it. */
#include "files.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/ctrspec.h"
#include "../lib/muxframe.h"
#include "engine.h"

#define OUT_MAX (8u << 20)
/* the path is $1; records end "\n\0" (stat's newline, then a NUL no name has) */
#define LIST_SCRIPT                                                                     \
    "cd -- \"$1\" 2>/dev/null || exit 3; command -v stat >/dev/null 2>&1 || exit 4; " \
    "for f in .[!.]* ..?* *; do [ -e \"$f\" ] || [ -L \"$f\" ] || continue; "        \
    "stat -c '%s %f %Y %n' -- \"$f\" && printf '\\0'; done"

static int check_path(const char *path, int allow_root, struct errinfo *e)
{
    if (ctrspec_valid_path(path, allow_root))
        return 0;
    errinfo_set(e, 400, "invalid_field", "path",
                "path is absolute, without . or .. segments%s", allow_root ? "" : ", and not /");
    return -1;
}

/* ---- running a small program in the container ---- */

struct split {
    struct buf *out, *err;
};

static int split_frame(void *arg, int stream, const char *data, size_t len)
{
    struct split *s = arg;
    buf_append(stream == MUX_STDERR ? s->err : s->out, data, len);
    return 0;
}

/* argv (stolen) in container id; its stdout into out. The exit code, or
 * -1 with e. */
static long exec_run(struct engine *eng, const char *id, json_t *argv, struct buf *out, struct errinfo *e)
{
    char path[400];
    long status, code = -1;
    struct buf raw, err;
    struct mux_reader mux;
    struct split sp = {out, &err};

    json_t *body = json_pack("{s:b,s:b,s:b,s:o}", "AttachStdout", 1, "AttachStderr", 1, "Tty", 0, "Cmd", argv);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(path, sizeof(path), "/%s/containers/%s/exec", ENGINE_API, id);
    json_t *made = engine_call_json(eng, "POST", path, text, 30, &status, e);
    free(text);
    const char *id_of = json_string_value(json_object_get(made, "Id"));
    char xid[130];
    if (!id_of || !engine_valid_id(id_of)) {
        if (made)
            errinfo_set(e, 502, "engine_answer", NULL, "the engine's exec answer has no Id");
        json_decref(made);
        return -1;
    }
    snprintf(xid, sizeof(xid), "%s", id_of);
    json_decref(made);
    snprintf(path, sizeof(path), "/%s/exec/%s/start", ENGINE_API, xid);
    buf_init(&raw, OUT_MAX);
    buf_init(&err, 4096);
    status = engine_call(eng, "POST", path, "{\"Detach\":false,\"Tty\":false}", 120, NULL, &raw, e);
    if (status >= 300)
        engine_refused(&raw, status, 409, e);
    if (status < 200 || status >= 300)
        goto out;
    mux_reader_init(&mux);
    mux_reader_feed(&mux, raw.data ? raw.data : "", raw.len, split_frame, &sp);
    snprintf(path, sizeof(path), "/%s/exec/%s/json", ENGINE_API, xid);
    json_t *st = engine_call_json(eng, "GET", path, NULL, 30, &status, e);
    if (st)
        code = (long)json_integer_value(json_object_get(st, "ExitCode"));
    json_decref(st);
out:
    buf_free(&raw);
    buf_free(&err);
    return code;
}

/* ---- the listing ---- */

static const char *type_of(unsigned long mode)
{
    switch (mode & 0170000) {
    case 0040000: return "dir";
    case 0100000: return "file";
    case 0120000: return "link";
    default: return "other";
    }
}

json_t *files_parse_listing(const char *text, size_t len, const char *path)
{
    json_t *entries = json_array();
    int truncated = 0;
    for (size_t i = 0; i < len;) {
        const char *rec = text + i;
        const char *nul = memchr(rec, '\0', len - i);
        size_t n = nul ? (size_t)(nul - rec) : len - i;
        i += n + 1;
        if (n && rec[n - 1] == '\n')
            n--;
        char *line = strndup(rec, n);
        char *name = NULL;
        long long size = strtoll(line, &name, 10);
        unsigned long mode = name && *name == ' ' ? strtoul(name + 1, &name, 16) : 0;
        long long mtime = name && *name == ' ' ? strtoll(name + 1, &name, 10) : 0;
        if (name && *name == ' ' && name[1] && size >= 0) {
            if (json_array_size(entries) >= FILES_MAX_ENTRIES) {
                truncated = 1;
            } else {
                /* a name that is not UTF-8 cannot be JSON: shown replaced */
                json_t *nm = json_string(name + 1);
                char perm[8];
                if (!nm)
                    nm = json_string("(a name that is not UTF-8)");
                snprintf(perm, sizeof(perm), "%04lo", mode & 07777);
                json_array_append_new(entries, json_pack("{s:o,s:s,s:I,s:s,s:I}", "name", nm, "type",
                                                         type_of(mode), "size", (json_int_t)size, "mode",
                                                         perm, "mtime", (json_int_t)mtime));
            }
        }
        free(line);
    }
    return json_pack("{s:s,s:o,s:b}", "path", path, "entries", entries, "truncated", truncated);
}

json_t *files_list(struct engine *eng, const char *id, const char *path, struct errinfo *e)
{
    struct buf out;
    json_t *res = NULL;
    if (check_path(path, 1, e) < 0)
        return NULL;
    buf_init(&out, OUT_MAX);
    long code = exec_run(eng, id, json_pack("[s,s,s,s,s]", "sh", "-c", LIST_SCRIPT, "sh", path), &out, e);
    if (code == 3)
        errinfo_set(e, 404, "not_found", "path", "no folder %.200s in the container", path);
    else if (code == 4 || code == 126 || code == 127)
        errinfo_set(e, 409, "no_tools", NULL, "the image has no sh and stat to list files with (downloads and uploads still work)");
    else if (code >= 0)
        res = files_parse_listing(out.data ? out.data : "", out.len, path);
    buf_free(&out);
    return res;
}

static int simple(struct engine *eng, const char *id, const char *path, const char *what, json_t *argv,
                  struct errinfo *e)
{
    struct buf out;
    buf_init(&out, 64 * 1024);
    long code = exec_run(eng, id, argv, &out, e);
    buf_free(&out);
    if (code > 0)
        errinfo_set(e, 409, "failed", "path", "%s %.200s failed in the container (exit %ld)", what, path, code);
    return code == 0 ? 0 : -1;
}

int files_mkdir(struct engine *eng, const char *id, const char *path, struct errinfo *e)
{
    if (check_path(path, 0, e) < 0)
        return -1;
    return simple(eng, id, path, "mkdir", json_pack("[s,s,s]", "mkdir", "-p", path), e);
}

int files_delete(struct engine *eng, const char *id, const char *path, struct errinfo *e)
{
    if (check_path(path, 0, e) < 0)
        return -1;
    return simple(eng, id, path, "rm", json_pack("[s,s,s,s]", "rm", "-rf", "--", path), e);
}

int files_upload(struct engine *eng, const char *id, const char *dir, FILE *f, long long size,
                 struct errinfo *e)
{
    char path[9000], enc[8800];
    struct buf b;
    if (check_path(dir, 1, e) < 0)
        return -1;
    ctrspec_url_path(dir, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/%s/containers/%s/archive?path=%s", ENGINE_API, id, enc);
    buf_init(&b, 1u << 20);
    long status = engine_put_file(eng, path, f, size, &b, e);
    if (status >= 300)
        engine_refused(&b, status, 409, e);
    buf_free(&b);
    return status >= 200 && status < 300 ? 0 : -1;
}
