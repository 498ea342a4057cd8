/* The marketplace's templates: the built-in ones (seeded once: an admin
 * may edit or delete them), made by operators, promoted from working
 * apps, exported and imported as JSON (ours and Portainer's v2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "appspec.h"
#include "apps_impl.h"
#include "store/db.h"

/* Ports and start commands from each project's own documentation. */
static const char *const builtin[] = {
    "{\"slug\":\"stable-diffusion-webui\",\"title\":\"Stable Diffusion WebUI (AUTOMATIC1111)\","
    "\"summary\":\"The AUTOMATIC1111 web UI for Stable Diffusion: txt2img, img2img, inpainting, extensions. Its first "
    "start makes a Python venv and downloads a model (several GB): give it time.\","
    "\"repository\":\"https://github.com/AUTOMATIC1111/stable-diffusion-webui\",\"ref\":\"master\",\"port\":7860,"
    "\"health_path\":\"/internal/ping\",\"start_command\":\"bash webui.sh --listen --port 7860 --api $WEBUI_ARGS\","
    "\"image\":\"nvcr.io/nvidia/pytorch:24.10-py3\",\"gpus\":{\"count\":1,\"min_memory_mib\":8192},"
    "\"env\":[{\"name\":\"WEBUI_ARGS\",\"default\":\"--xformers\",\"description\":\"more arguments for webui.sh "
    "(e.g. --medvram on small GPUs)\"}],\"categories\":[\"image\",\"diffusion\"]}",
    "{\"slug\":\"comfyui\",\"title\":\"ComfyUI\",\"summary\":\"The node-based Stable Diffusion and video diffusion "
    "UI. Installs its requirements into a venv in the app's folder on first start.\","
    "\"repository\":\"https://github.com/comfyanonymous/ComfyUI\",\"ref\":\"master\",\"port\":8188,"
    "\"health_path\":\"/system_stats\",\"start_command\":\"python -m venv --system-site-packages .venv && . "
    ".venv/bin/activate && pip install -r requirements.txt && python main.py --listen 0.0.0.0 --port 8188\","
    "\"image\":\"nvcr.io/nvidia/pytorch:24.10-py3\",\"gpus\":{\"count\":1,\"min_memory_mib\":8192},"
    "\"categories\":[\"image\",\"diffusion\",\"video\"]}",
    "{\"slug\":\"jupyterlab\",\"title\":\"JupyterLab\",\"summary\":\"JupyterLab with PyTorch and CUDA (the Jupyter "
    "project's pytorch-notebook image); notebooks live in the app's folder. Set a token to sign in with.\","
    "\"port\":8888,\"health_path\":\"/api\",\"start_command\":\"jupyter lab --ip=0.0.0.0 --port=8888 --no-browser "
    "--ServerApp.root_dir=/app --IdentityProvider.token=\\\"$JUPYTER_TOKEN\\\"\","
    "\"image\":\"quay.io/jupyter/pytorch-notebook:cuda12-latest\",\"gpus\":{\"count\":1},"
    "\"env\":[{\"name\":\"JUPYTER_TOKEN\",\"description\":\"the token to sign in with\",\"required\":true}],"
    "\"categories\":[\"notebook\",\"development\"]}",
    "{\"slug\":\"text-generation-webui\",\"title\":\"Text generation web UI (oobabooga)\",\"summary\":\"A web UI "
    "for large language models (Transformers, llama.cpp, ExLlamaV2). Its start script installs Miniconda and the "
    "requirements into the app's folder on first start.\","
    "\"repository\":\"https://github.com/oobabooga/text-generation-webui\",\"port\":7860,\"health_path\":\"/\","
    "\"start_command\":\"bash start_linux.sh --listen --listen-port 7860\","
    "\"image\":\"nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04\",\"gpus\":{\"count\":1,\"min_memory_mib\":8192},"
    "\"env\":[{\"name\":\"GPU_CHOICE\",\"default\":\"A\",\"description\":\"the installer's GPU question (A: "
    "NVIDIA)\",\"options\":[\"A\",\"N\"]},{\"name\":\"LAUNCH_AFTER_INSTALL\",\"default\":\"TRUE\"},"
    "{\"name\":\"INSTALL_EXTENSIONS\",\"default\":\"FALSE\"}],\"categories\":[\"llm\",\"chat\"]}",
    "{\"slug\":\"vllm\",\"title\":\"vLLM OpenAI-compatible server\",\"summary\":\"High-throughput LLM inference "
    "with an OpenAI-compatible API (/v1/chat/completions) for a Hugging Face model.\",\"port\":8000,"
    "\"health_path\":\"/health\",\"start_command\":\"vllm serve \\\"$MODEL\\\" --host 0.0.0.0 --port 8000 "
    "$VLLM_ARGS\",\"image\":\"vllm/vllm-openai:latest\",\"gpus\":{\"count\":1,\"min_memory_mib\":16384},"
    "\"env\":[{\"name\":\"MODEL\",\"default\":\"Qwen/Qwen2.5-1.5B-Instruct\",\"description\":\"the Hugging Face "
    "model to serve\",\"required\":true},{\"name\":\"HF_TOKEN\",\"description\":\"a Hugging Face token, for gated "
    "models\"},{\"name\":\"VLLM_ARGS\",\"description\":\"more arguments (e.g. --max-model-len 8192)\"}],"
    "\"categories\":[\"llm\",\"api\"]}",
    "{\"slug\":\"ollama\",\"title\":\"Ollama\",\"summary\":\"Run open LLMs (Llama, Qwen, Mistral, Gemma) behind "
    "Ollama's API; models are kept in the app's folder.\",\"port\":11434,\"health_path\":\"/api/version\","
    "\"start_command\":\"ollama serve\",\"image\":\"ollama/ollama:latest\",\"gpus\":{\"count\":1},"
    "\"env\":[{\"name\":\"OLLAMA_HOST\",\"default\":\"0.0.0.0:11434\"},{\"name\":\"OLLAMA_MODELS\","
    "\"default\":\"/app/models\"}],\"categories\":[\"llm\",\"api\"]}",
};

static int put(struct apps *a, const json_t *t, int builtin_flag, int create, struct errinfo *e)
{
    const char *slug = json_string_value(json_object_get(t, "slug"));
    char *doc = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
    sqlite3_stmt *st = db_prepare(a->db, create ? "INSERT INTO templates (slug, doc, builtin, updated_ms) VALUES (?1, ?2, ?3, ?4)"
                                                : "UPDATE templates SET doc = ?2, builtin = ?3, updated_ms = ?4 WHERE slug = ?1");
    int rc = -1;

    if (!st || !doc) {
        errinfo_set(e, 500, "internal", NULL, "the apps database failed");
        goto out;
    }
    sqlite3_bind_text(st, 1, slug, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, doc, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, builtin_flag);
    sqlite3_bind_int64(st, 4, now_wall_ms());
    int s = sqlite3_step(st);
    if (s == SQLITE_CONSTRAINT)
        errinfo_set(e, 409, "exists", "slug", "there is a template %.64s already", slug);
    else if (s != SQLITE_DONE)
        errinfo_set(e, 500, "internal", NULL, "the apps database failed: %s", sqlite3_errmsg(a->db));
    else if (!create && sqlite3_changes(a->db) == 0)
        errinfo_set(e, 404, "not_found", "slug", "no template %.64s", slug);
    else
        rc = 0;
out:
    sqlite3_finalize(st);
    free(doc);
    return rc;
}

void apps_seed_templates(struct apps *a)
{
    sqlite3_stmt *st = db_prepare(a->db, "SELECT count(*) FROM seeded");
    int seeded = st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (seeded)
        return;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        struct errinfo e = {0};
        json_t *raw = json_loads(builtin[i], 0, NULL), *t = raw ? appspec_template(raw, &e) : NULL;
        if (!t || put(a, t, 1, 1, &e) < 0)
            log_error("apps: built-in template %zu: %s", i, t ? e.message : raw ? e.message : "not JSON");
        json_decref(raw);
        json_decref(t);
    }
    db_exec(a->db, "INSERT INTO seeded (version) VALUES (1)");
}

static json_t *row_template(sqlite3_stmt *st)
{
    json_t *t = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    if (!t)
        return NULL;
    json_object_set_new(t, "builtin", json_boolean(sqlite3_column_int(st, 1)));
    json_object_set_new(t, "updated_ms", json_integer(sqlite3_column_int64(st, 2)));
    return t;
}

json_t *apps_templates(struct apps *a)
{
    json_t *list = json_array();
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = db_prepare(a->db, "SELECT doc, builtin, updated_ms FROM templates"
                                         " ORDER BY json_extract(doc, '$.title') COLLATE NOCASE");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *t = row_template(st);
        if (t)
            json_array_append_new(list, t);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return json_pack("{s:o}", "templates", list);
}

json_t *apps_template_get(struct apps *a, const char *slug, struct errinfo *e)
{
    json_t *t = NULL;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = db_prepare(a->db, "SELECT doc, builtin, updated_ms FROM templates WHERE slug = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, slug, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            t = row_template(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!t)
        errinfo_set(e, 404, "not_found", "template", "no template %.64s", slug);
    return t;
}

json_t *apps_template_put(struct apps *a, const json_t *body, int create, struct errinfo *e)
{
    json_t *in = json_deep_copy(body), *t;
    /* what the list shows of a stored one may come back in an edit */
    json_object_del(in, "builtin");
    json_object_del(in, "updated_ms");
    t = appspec_template(in, e);
    json_decref(in);
    if (!t)
        return NULL;
    pthread_mutex_lock(&a->lock);
    int rc = put(a, t, 0, create, e);
    pthread_mutex_unlock(&a->lock);
    const char *slug = json_string_value(json_object_get(t, "slug"));
    json_t *out = rc < 0 ? NULL : apps_template_get(a, slug, e);
    json_decref(t);
    return out;
}

int apps_template_delete(struct apps *a, const char *slug, struct errinfo *e)
{
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = db_prepare(a->db, "DELETE FROM templates WHERE slug = ?1");
    int n = 0;
    if (st) {
        sqlite3_bind_text(st, 1, slug, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_DONE)
            n = sqlite3_changes(a->db);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (!n)
        errinfo_set(e, 404, "not_found", "slug", "no template %.64s", slug);
    return n ? 0 : -1;
}

json_t *apps_promote(struct apps *a, const char *name, int64_t owner_id, const json_t *body, struct errinfo *e)
{
    json_t *app = apps_get(a, name, owner_id, e), *t, *v, *out = NULL;
    const char *k;

    if (!app)
        return NULL;
    if (strcmp(json_string_value(json_object_get(app, "health")), "RUNNING")) {
        errinfo_set(e, 409, "not_running", "app", "%s is %s: a template is made from an app that works (RUNNING)",
                    name, json_string_value(json_object_get(app, "health")));
        goto out;
    }
    const char *slug = json_string_value(json_object_get(body, "slug"));
    const char *title = json_string_value(json_object_get(body, "title"));
    t = appspec_template_of(app, slug ? slug : name, title ? title : name);
    /* the body's fields over the app's */
    json_object_foreach((json_t *)body, k, v)
        json_object_set(t, k, v);
    json_object_set(t, "promoted_from", json_object_get(app, "name"));
    out = apps_template_put(a, t, 1, e);
    json_decref(t);
out:
    json_decref(app);
    return out;
}

json_t *apps_templates_export(struct apps *a)
{
    json_t *list = apps_templates(a), *t;
    size_t i;
    json_array_foreach(json_object_get(list, "templates"), i, t) {
        json_object_del(t, "builtin");
        json_object_del(t, "updated_ms");
    }
    json_object_set_new(list, "gpufleet_templates", json_integer(1));
    return list;
}

json_t *apps_templates_import(struct apps *a, const json_t *body, int replace, struct errinfo *e)
{
    json_t *skipped = NULL, *list = appspec_templates_import(body, &skipped, e), *t;
    json_t *imported = json_array(), *replaced = json_array();
    size_t i;

    if (!list) {
        json_decref(imported);
        json_decref(replaced);
        return NULL;
    }
    pthread_mutex_lock(&a->lock);
    db_exec(a->db, "BEGIN");
    json_array_foreach(list, i, t) {
        struct errinfo pe = {0};
        const char *slug = json_string_value(json_object_get(t, "slug"));
        if (put(a, t, 0, 1, &pe) == 0)
            json_array_append_new(imported, json_string(slug));
        else if (pe.status == 409 && replace && put(a, t, 0, 0, &pe) == 0)
            json_array_append_new(replaced, json_string(slug));
        else
            json_array_append_new(skipped, json_pack("{s:O, s:s}", "title", json_object_get(t, "title"), "why",
                                                     pe.status == 409 ? "its slug is taken (import with replace=1)"
                                                                      : pe.message));
    }
    db_exec(a->db, "COMMIT");
    pthread_mutex_unlock(&a->lock);
    json_decref(list);
    return json_pack("{s:o, s:o, s:o}", "imported", imported, "replaced", replaced, "skipped", skipped);
}
