/* `gpufleet backup` and `gpufleet restore`: every database of a data
 * folder copied with SQLite's online backup (consistent while the server
 * runs), checked, and listed with checksums in a manifest. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/now.h"
#include "cli.h"
#include "datalock.h"
#include "server.h"
#include "store/db.h"

static const char *const databases[] = {"gpufleet.db", "auth.db", "audit.db", "alerts.db",
                                        "containers.db", "tsdb.db"};
#define NDB (sizeof(databases) / sizeof(databases[0]))

/* SHA-256 of a file as hex; 0 or -1. */
static int file_sha256(const char *path, char hex[65], int64_t *bytes)
{
    unsigned char buf[65536], h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f)
        return -1;
    crypto_hash_sha256_init(&st);
    *bytes = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        crypto_hash_sha256_update(&st, buf, n);
        *bytes += (int64_t)n;
    }
    int bad = ferror(f);
    fclose(f);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 65, h, sizeof(h));
    return bad ? -1 : 0;
}

/* One database copied page by page through SQLite's backup API (readers
 * and the server's writer go on meanwhile). 0, or -1 with err. */
static int copy_db(const char *from, const char *to, char *err, size_t errlen)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = -1;

    if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(to, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s or %s", from, to);
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        snprintf(err, errlen, "%s: %s", to, sqlite3_errmsg(dst));
        goto out;
    }
    int r;
    while ((r = sqlite3_backup_step(b, 1024)) == SQLITE_OK || r == SQLITE_BUSY || r == SQLITE_LOCKED)
        if (r != SQLITE_OK)
            sqlite3_sleep(50);
    sqlite3_backup_finish(b);
    if (r != SQLITE_DONE) {
        snprintf(err, errlen, "%s: %s", from, sqlite3_errstr(r));
        goto out;
    }
    char ok[256];
    db_integrity(dst, ok, sizeof(ok));
    if (strcmp(ok, "ok")) {
        snprintf(err, errlen, "%s: integrity_check: %s", to, ok);
        goto out;
    }
    rc = 0;
out:
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

static int user_version(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* Asks a running server to put what it holds in memory into its files
 * first. 1 done, 0 no server answering (the files are all there is), -1
 * it answered with an error. */
static int checkpoint(const char *base)
{
    char url[2048], auth[300];
    const char *token = getenv("GPUFLEET_TOKEN");
    struct curl_slist *h = NULL;
    long status = 0;
    CURL *e = curl_easy_init();

    snprintf(url, sizeof(url), "%s/api/v1/admin/checkpoint", base);
    if (token && *token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    if (cc == CURLE_COULDNT_CONNECT)
        return 0;
    if (status != 200) {
        fprintf(stderr, "gpufleet backup: the server at %s refused a checkpoint (%s%ld): an admin"
                        " token in $GPUFLEET_TOKEN is needed\n",
                base, cc != CURLE_OK ? "no answer, " : "HTTP ", status);
        return -1;
    }
    return 1;
}

static int backup(const char *data, const char *dest, const char *server)
{
    char from[4200], to[4200], err[512];
    json_t *files = json_array();
    int rc = 1;

    if (mkdir(dest, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "gpufleet backup: %s: %s\n", dest, strerror(errno));
        goto out;
    }
    int cp = checkpoint(server);
    if (cp < 0)
        goto out;
    for (size_t i = 0; i < NDB; i++) {
        snprintf(from, sizeof(from), "%s/%s", data, databases[i]);
        snprintf(to, sizeof(to), "%s/%s", dest, databases[i]);
        if (access(from, R_OK) < 0)
            continue;
        unlink(to);
        if (copy_db(from, to, err, sizeof(err)) < 0) {
            fprintf(stderr, "gpufleet backup: %s\n", err);
            goto out;
        }
        chmod(to, 0600);
        char hex[65];
        int64_t bytes;
        if (file_sha256(to, hex, &bytes) < 0)
            goto out;
        json_array_append_new(files, json_pack("{s:s, s:I, s:s, s:i}", "name", databases[i], "bytes",
                                               (json_int_t)bytes, "sha256", hex, "schema",
                                               user_version(to)));
        printf("backup: %s (%lld bytes)\n", databases[i], (long long)bytes);
    }
    json_t *m = json_pack("{s:s, s:I, s:s, s:b, s:o}", "gpufleet", GPUFLEET_VERSION, "created_ms",
                          (json_int_t)now_wall_ms(), "data_dir", data, "checkpointed", cp == 1,
                          "files", json_incref(files));
    snprintf(to, sizeof(to), "%s/manifest.json", dest);
    if (json_dump_file(m, to, JSON_INDENT(2) | JSON_SORT_KEYS) < 0) {
        json_decref(m);
        fprintf(stderr, "gpufleet backup: cannot write %s\n", to);
        goto out;
    }
    json_decref(m);
    printf("backup: %zu databases and manifest.json in %s%s\n", json_array_size(files), dest,
           cp == 1 ? " (the running server checkpointed first)" : "");
    rc = 0;
out:
    json_decref(files);
    return rc;
}

/* Checks a backup against its manifest: every file present with its
 * checksum. 0, or -1 (said). */
static int verify(const char *src, json_t **files)
{
    char path[4200];
    json_error_t jerr;
    snprintf(path, sizeof(path), "%s/manifest.json", src);
    json_t *m = json_load_file(path, 0, &jerr);
    size_t i;
    json_t *f;

    *files = m ? json_incref(json_object_get(m, "files")) : NULL;
    json_decref(m);
    if (!json_is_array(*files)) {
        fprintf(stderr, "gpufleet restore: %s is not a backup's manifest\n", path);
        return -1;
    }
    json_array_foreach(*files, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        int known = 0;
        for (size_t k = 0; name && k < NDB; k++)
            known |= !strcmp(name, databases[k]);
        char hex[65];
        int64_t bytes;
        snprintf(path, sizeof(path), "%s/%s", src, name ? name : "");
        if (!known || file_sha256(path, hex, &bytes) < 0 ||
            strcmp(hex, json_string_value(json_object_get(f, "sha256")) ? json_string_value(json_object_get(f, "sha256")) : "")) {
            fprintf(stderr, "gpufleet restore: %s does not match the manifest (damaged or changed)\n", path);
            return -1;
        }
    }
    return 0;
}

/* The store's sample log (DB-samples/) belongs to the database replaced:
 * replayed onto the backup it would add samples the backup never had. */
static void drop_sample_log(const char *db)
{
    char dir[4300], path[4600];
    DIR *d;
    struct dirent *e;

    snprintf(dir, sizeof(dir), "%s-samples", db);
    if (!(d = opendir(dir)))
        return;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static int restore(const char *src, const char *data, int force)
{
    char to[4200], from[4200], err[512];
    json_t *files, *f;
    size_t i;
    int rc = 1, lock = -1;

    if (verify(src, &files) < 0)
        goto out;
    if (mkdir(data, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "gpufleet restore: %s: %s\n", data, strerror(errno));
        goto out;
    }
    /* never under a running server, --force or not (its lock goes at exit) */
    if ((lock = datalock_take(data, 0, err, sizeof(err))) < 0) {
        fprintf(stderr, "gpufleet restore: %s\n", err);
        goto out;
    }
    for (size_t k = 0; k < NDB && !force; k++) {
        snprintf(to, sizeof(to), "%s/%s", data, databases[k]);
        if (access(to, F_OK) == 0) {
            fprintf(stderr, "gpufleet restore: %s holds databases already; stop its server and"
                            " pass --force to replace them\n", data);
            goto out;
        }
    }
    json_array_foreach(files, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        snprintf(from, sizeof(from), "%s/%s", src, name);
        snprintf(to, sizeof(to), "%s/%s", data, name);
        for (const char *sfx = "-wal"; sfx; sfx = strcmp(sfx, "-wal") ? NULL : "-shm") {
            char side[4300];
            snprintf(side, sizeof(side), "%s%s", to, sfx);
            unlink(side); /* a stale WAL of the replaced database must not be replayed */
        }
        unlink(to);
        drop_sample_log(to);
        drop_sample_log(to);
        if (copy_db(from, to, err, sizeof(err)) < 0) {
            fprintf(stderr, "gpufleet restore: %s\n", err);
            goto out;
        }
        chmod(to, 0600);
        printf("restore: %s\n", name);
    }
    printf("restore: %zu databases into %s; start the server on it\n", json_array_size(files), data);
    rc = 0;
out:
    if (lock >= 0)
        close(lock);
    json_decref(files);
    return rc;
}

int cli_backup(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = getenv("GPUFLEET_DATA") ? getenv("GPUFLEET_DATA") : "data";
    const char *server = getenv("GPUFLEET_URL") ? getenv("GPUFLEET_URL") : "http://127.0.0.1:8470";
    int opt, force = 0, is_restore = !strcmp(argv[0], "restore");

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'd')
            data = optarg;
        else if (opt == 's')
            server = optarg;
        else if (opt == 'f')
            force = 1;
        else {
            fprintf(opt == 'h' ? stdout : stderr,
                    "usage: gpufleet backup DEST [--data DIR] [--server URL]\n"
                    "       gpufleet restore SRC --data DIR [--force]\n"
                    "backup copies every database of DIR (default ./data) while its server runs,\n"
                    "after asking the server at URL ($GPUFLEET_URL, an admin $GPUFLEET_TOKEN) to\n"
                    "write out what it holds in memory; restore checks a backup against its\n"
                    "manifest and copies it into a stopped server's DIR.\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "gpufleet %s: which folder? (gpufleet %s --help)\n", argv[0], argv[0]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    return is_restore ? restore(argv[optind], data, force) : backup(data, argv[optind], server);
}
