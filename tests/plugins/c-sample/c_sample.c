/*
 * c-sample: a lookout log driver written in C against lookout_plugin.h only
 * (plus the C library). It exists to keep the header honest: the host's
 * tests compile it with a C compiler and load it like any plugin.
 *
 * Options (log-opts)
 *   path=<file>  where to append the records. Optional: by default the
 *                stream writes <log_dir>/c-sample.log, log_dir being the
 *                directory the host gives in the container info. An empty
 *                value is an error. Any other key is LK_FATAL with
 *                "unknown log opt '<key>' for c-sample log driver".
 *
 * Output: one line per record,
 *   <stream>\t<time_unix_nano>\t<flags>\t<bytes>
 * where <stream> is "stdin", "stdout" or "stderr" (the number for any other
 * value), <time_unix_nano> and <flags> are decimal, and <bytes> are the
 * record's bytes, untouched; a '\n' is added when they do not end with one
 * (so a partial chunk or a last line without newline still ends its output
 * line).
 *
 * Lifecycle: validate checks keys; init mallocs an instance holding a copy
 * of the path; start opens the file for appending (one FILE per stream;
 * an error names the path); write_logs writes each record with stdio;
 * flush is fflush; stop is fflush + fclose + free; shutdown frees the
 * instance. A failed write or flush is LK_FATAL, naming the path.
 *
 * Error messages are copied into the host's buffer and cut at its capacity
 * (at a UTF-8 boundary).
 *
 * c_bad_abi.c includes this file with other values for the macros below.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookout_plugin.h"

#ifndef C_SAMPLE_NAME
#define C_SAMPLE_NAME "c-sample"
#endif
#ifndef C_SAMPLE_ABI_MAJOR
#define C_SAMPLE_ABI_MAJOR LOOKOUT_ABI_MAJOR
#endif
#ifndef C_SAMPLE_ABI_MINOR
#define C_SAMPLE_ABI_MINOR LOOKOUT_ABI_MINOR
#endif

#define DEFAULT_FILE "c-sample.log"

/* ---------------------------------------------------------- messages */

/* Builds a message in the host's error buffer, piece by piece, cutting it
 * at the buffer's capacity. */
typedef struct {
    lk_err_buf_t *err;
    int full;
} msg_t;

static msg_t msg_start(lk_err_buf_t *err)
{
    msg_t m;
    m.err = err;
    m.full = err == NULL || err->buf == NULL || err->cap == 0;
    if (err != NULL)
        err->len = 0;
    return m;
}

static void msg_bytes(msg_t *m, const void *p, size_t n)
{
    lk_err_buf_t *e = m->err;
    const uint8_t *s = p;
    size_t room;

    if (m->full || n == 0)
        return;
    room = e->cap - e->len;
    if (n <= room) {
        memcpy(e->buf + e->len, s, n);
        e->len += n;
        return;
    }
    memcpy(e->buf + e->len, s, room);
    e->len += room;
    m->full = 1;
    /* The first byte left out continues a UTF-8 sequence: drop the start of
     * that sequence too. */
    if ((s[room] & 0xC0) == 0x80) {
        while (e->len > 0 && (e->buf[e->len - 1] & 0xC0) == 0x80)
            e->len--;
        if (e->len > 0 && (e->buf[e->len - 1] & 0xC0) == 0xC0)
            e->len--;
    }
}

static void msg_str(msg_t *m, const char *s)
{
    msg_bytes(m, s, strlen(s));
}

/* Sets the whole message to `s`; returns `status` for brevity. */
static lk_status_t fail(lk_err_buf_t *err, lk_status_t status, const char *s)
{
    msg_t m = msg_start(err);
    msg_str(&m, s);
    return status;
}

/* "<what> <path>: <strerror(errnum)>" */
static lk_status_t fail_path(lk_err_buf_t *err, const char *what,
                             const char *path, int errnum)
{
    msg_t m = msg_start(err);
    msg_str(&m, C_SAMPLE_NAME ": ");
    msg_str(&m, what);
    msg_str(&m, " ");
    msg_str(&m, path);
    msg_str(&m, ": ");
    msg_str(&m, strerror(errnum));
    return LK_FATAL;
}

static int bytes_eq(lk_bytes_t b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* ----------------------------------------------------------- options */

/* Checks the options; on success sets *path to the last `path` value given
 * (or leaves it empty). */
static lk_status_t check_opts(const lk_kv_t *opts, size_t n, lk_bytes_t *path,
                              lk_err_buf_t *err)
{
    size_t i;

    path->ptr = NULL;
    path->len = 0;
    if (n > 0 && opts == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": null options");
    for (i = 0; i < n; i++) {
        if (!bytes_eq(opts[i].key, "path")) {
            msg_t m = msg_start(err);
            msg_str(&m, "unknown log opt '");
            msg_bytes(&m, opts[i].key.ptr, opts[i].key.len);
            msg_str(&m, "' for " C_SAMPLE_NAME " log driver");
            return LK_FATAL;
        }
        if (opts[i].value.len == 0)
            return fail(err, LK_FATAL,
                        C_SAMPLE_NAME ": log opt 'path' must not be empty");
        if (memchr(opts[i].value.ptr, '\0', opts[i].value.len) != NULL)
            return fail(err, LK_FATAL,
                        C_SAMPLE_NAME ": log opt 'path' contains a NUL byte");
        *path = opts[i].value;
    }
    return LK_OK;
}

/* A NUL-terminated copy of `a` followed by `b` (either may be empty), or
 * NULL when out of memory. */
static char *concat(lk_bytes_t a, const char *b)
{
    size_t bl = strlen(b);
    char *s = malloc(a.len + bl + 1);

    if (s == NULL)
        return NULL;
    if (a.len > 0)
        memcpy(s, a.ptr, a.len);
    memcpy(s + a.len, b, bl + 1);
    return s;
}

/* ---------------------------------------------------------- plugin */

/* The instance: the configured path, or NULL for <log_dir>/c-sample.log. */
typedef struct {
    char *path;
} instance_t;

/* A stream: one open file. */
typedef struct {
    FILE *f;
    char *path;
} stream_t;

static lk_status_t cs_validate(const lk_kv_t *opts, size_t n_opts,
                               lk_err_buf_t *err)
{
    lk_bytes_t path;
    return check_opts(opts, n_opts, &path, err);
}

static lk_status_t cs_init(const lk_host_t *host, const lk_kv_t *opts,
                           size_t n_opts, void **out, lk_err_buf_t *err)
{
    lk_bytes_t path;
    instance_t *inst;
    lk_status_t st;

    (void)host;
    if (out == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": init: null out pointer");
    st = check_opts(opts, n_opts, &path, err);
    if (st != LK_OK)
        return st;
    inst = calloc(1, sizeof *inst);
    if (inst == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": out of memory");
    if (path.len > 0) {
        inst->path = concat(path, "");
        if (inst->path == NULL) {
            free(inst);
            return fail(err, LK_FATAL, C_SAMPLE_NAME ": out of memory");
        }
    }
    *out = inst;
    return LK_OK;
}

static lk_status_t cs_start(void *instance, const lk_container_info_t *info,
                            void **out, lk_err_buf_t *err)
{
    instance_t *inst = instance;
    stream_t *s;

    if (inst == NULL || out == NULL)
        return fail(err, LK_FATAL,
                    C_SAMPLE_NAME ": start: null instance or out pointer");
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": out of memory");
    if (inst->path != NULL) {
        lk_bytes_t p;
        p.ptr = (const uint8_t *)inst->path;
        p.len = strlen(inst->path);
        s->path = concat(p, "");
    } else {
        /* A host structure: read a field only when struct_size covers it. */
        if (info == NULL ||
            !LK_HAS_FIELD(lk_container_info_t, info, log_dir) ||
            info->log_dir.len == 0) {
            free(s);
            return fail(err, LK_FATAL,
                        C_SAMPLE_NAME ": no log opt 'path' and no log_dir "
                                      "from the host");
        }
        s->path = concat(info->log_dir, "/" DEFAULT_FILE);
    }
    if (s->path == NULL) {
        free(s);
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": out of memory");
    }
    s->f = fopen(s->path, "ab");
    if (s->f == NULL) {
        lk_status_t st = fail_path(err, "cannot open", s->path, errno);
        free(s->path);
        free(s);
        return st;
    }
    *out = s;
    return LK_OK;
}

static const char *stream_name(uint32_t stream, char *buf, size_t cap)
{
    switch (stream) {
    case LK_STREAM_STDIN:
        return "stdin";
    case LK_STREAM_STDOUT:
        return "stdout";
    case LK_STREAM_STDERR:
        return "stderr";
    default:
        snprintf(buf, cap, "%lu", (unsigned long)stream);
        return buf;
    }
}

static lk_status_t cs_write_logs(void *stream, const lk_log_record_t *records,
                                 size_t n, size_t *written, lk_err_buf_t *err)
{
    stream_t *s = stream;
    size_t i;

    if (written != NULL)
        *written = 0;
    if (s == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": null stream");
    if (n > 0 && records == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": null records");
    for (i = 0; i < n; i++) {
        const lk_log_record_t *r = &records[i];
        char num[16];
        int ok;

        ok = fprintf(s->f, "%s\t%lld\t%lu\t",
                     stream_name(r->stream, num, sizeof num),
                     (long long)r->time_unix_nano,
                     (unsigned long)r->flags) >= 0;
        if (ok && r->line.len > 0)
            ok = fwrite(r->line.ptr, 1, r->line.len, s->f) == r->line.len;
        if (ok && (r->line.len == 0 || r->line.ptr[r->line.len - 1] != '\n'))
            ok = fputc('\n', s->f) != EOF;
        if (!ok)
            return fail_path(err, "cannot write", s->path, errno);
        if (written != NULL)
            *written = i + 1;
    }
    return LK_OK;
}

static lk_status_t cs_flush(void *stream, lk_err_buf_t *err)
{
    stream_t *s = stream;

    if (s == NULL)
        return fail(err, LK_FATAL, C_SAMPLE_NAME ": null stream");
    if (fflush(s->f) != 0)
        return fail_path(err, "cannot flush", s->path, errno);
    return LK_OK;
}

static lk_status_t cs_stop(void *stream, lk_err_buf_t *err)
{
    stream_t *s = stream;
    lk_status_t st = LK_OK;

    if (s == NULL)
        return LK_OK;
    /* fclose flushes; the stream is freed whatever happens. */
    if (fclose(s->f) != 0)
        st = fail_path(err, "cannot close", s->path, errno);
    free(s->path);
    free(s);
    return st;
}

static void cs_shutdown(void *instance)
{
    instance_t *inst = instance;

    if (inst == NULL)
        return;
    free(inst->path);
    free(inst);
}

/* ------------------------------------------------------- descriptor */

static const lk_fns_t FNS = {
    sizeof(lk_fns_t), /* struct_size */
    cs_validate,
    cs_init,
    cs_start,
    cs_write_logs,
    NULL, /* write_metrics: not a metrics sink */
    cs_flush,
    cs_stop,
    cs_shutdown,
};

static const lk_plugin_t PLUGIN = {
    sizeof(lk_plugin_t), /* struct_size */
    C_SAMPLE_ABI_MAJOR,
    C_SAMPLE_ABI_MINOR,
    LK_KIND_LOG,
    0, /* caps */
    C_SAMPLE_NAME,
    "0.1.0",
    C_SAMPLE_NAME " (C, lookout_plugin.h)",
    &FNS,
};

const lk_plugin_t *lookout_plugin_v1(const lk_host_t *host)
{
    (void)host;
    return &PLUGIN;
}
