/*
 * lookout_plugin.h: the lookout plugin ABI for C authors.
 *
 * This header declares, with C names, exactly the types and constants of the
 * Rust crate `lookout-abi` (sdk/abi/src/lib.rs). A test
 * (sdk/abi/tests/header_sync.rs) compiles it and checks that every size,
 * alignment, field offset and constant matches the Rust side.
 *
 * Shape
 *   A plugin is a shared library exporting one symbol, `lookout_plugin_v1`,
 *   declared at the end of this file. It is called once after loading and
 *   returns a pointer to a static lk_plugin_t descriptor that must stay valid
 *   for the life of the process (the host never unloads a plugin).
 *
 * Growth
 *   lk_plugin_t, lk_fns_t, lk_host_t and lk_container_info_t begin with
 *   `struct_size` and only ever grow at the end (append-only). Set
 *   struct_size to sizeof() of the structure you fill in; before reading a
 *   field of a structure the host gives you, check that its struct_size
 *   covers the field (see LK_HAS_FIELD).
 *
 * Memory
 *   - Everything that crosses the boundary is borrowed: lk_bytes_t slices
 *     and the arrays passed to a call point into the caller's memory and are
 *     valid only during that call. Copy what you keep.
 *   - Whoever allocates frees: instances (init) are freed by the plugin in
 *     shutdown, streams (start) by the plugin in stop.
 *   - Error messages are copied by the plugin into the host-owned
 *     lk_err_buf_t: at most `cap` bytes at `buf`, then set `len`; cut longer
 *     messages (preferably at a UTF-8 boundary). Never keep the pointer.
 *   - Bytes are not NUL-terminated and not necessarily UTF-8.
 *
 * Threading
 *   The instance may be used from several threads at once; one stream is
 *   never called concurrently. Calls come from dedicated threads and may
 *   block.
 */
#ifndef LOOKOUT_PLUGIN_H
#define LOOKOUT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ versions */

/* Major version of this ABI: the host loads a plugin only when the majors
 * are equal. */
#define LOOKOUT_ABI_MAJOR 1
/* Minor version of this ABI: the host accepts a plugin whose minor is at
 * most its own. */
#define LOOKOUT_ABI_MINOR 0

/* Name of the one symbol every plugin exports (major version in the name). */
#define LOOKOUT_ENTRY_SYMBOL "lookout_plugin_v1"

/* True when a structure that starts with `struct_size` (pointed to by `p`)
 * is large enough to contain `field`. */
#define LK_HAS_FIELD(type, p, field)                                          \
    ((p)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* -------------------------------------------------------------- status */

/* Outcome of every fallible call. */
typedef uint32_t lk_status_t;
/* Everything was done. */
#define LK_OK UINT32_C(0)
/* A transient failure: the host retries the records from *written after a
 * back-off. */
#define LK_RETRY UINT32_C(1)
/* The records from *written on were dropped by the plugin; the host counts
 * them as dropped and goes on. */
#define LK_DROP UINT32_C(2)
/* The plugin cannot go on: the host disables this stream, counts everything
 * sent to it from now on as dropped and reports the message. */
#define LK_FATAL UINT32_C(3)

/* ---------------------------------------------------------------- kind */

/* What a plugin does. */
typedef uint32_t lk_kind_t;
/* A log driver: receives container output records. */
#define LK_KIND_LOG UINT32_C(1)
/* A metrics sink: receives samples of container and engine counters. */
#define LK_KIND_METRICS UINT32_C(2)

/* Capability bit: the driver understands partial records and keeps their
 * metadata. */
#define LK_CAP_PARTIAL_METADATA (UINT64_C(1) << 0)
/* Capability bit: the driver writes files the host's reader can read back,
 * so no dual-logging cache is needed. */
#define LK_CAP_READABLE (UINT64_C(1) << 1)

/* Stream a record came from (lk_log_record_t.stream). */
#define LK_STREAM_STDIN UINT32_C(0)
#define LK_STREAM_STDOUT UINT32_C(1)
#define LK_STREAM_STDERR UINT32_C(2)

/* Record flag: this record is one chunk of a line longer than the host's
 * max-line-size. */
#define LK_REC_PARTIAL (UINT32_C(1) << 0)
/* Record flag: with LK_REC_PARTIAL, this is the last chunk of the line. */
#define LK_REC_PARTIAL_LAST (UINT32_C(1) << 1)

/* Metric sample kind: a monotonically increasing counter. */
#define LK_METRIC_COUNTER UINT32_C(1)
/* Metric sample kind: a value that goes up and down. */
#define LK_METRIC_GAUGE UINT32_C(2)

/* A message severity for lk_host_t.log. */
typedef uint32_t lk_log_level_t;
#define LK_LEVEL_ERROR UINT32_C(1)
#define LK_LEVEL_WARN UINT32_C(2)
#define LK_LEVEL_INFO UINT32_C(3)
#define LK_LEVEL_DEBUG UINT32_C(4)

/* ---------------------------------------------------------- structures */

/* A borrowed run of bytes, valid only during the call that lent it. Not
 * NUL-terminated; not necessarily UTF-8. `ptr` may be NULL only when `len`
 * is 0. */
typedef struct lk_bytes {
    const uint8_t *ptr;
    size_t len;
} lk_bytes_t;

/* A borrowed key/value pair (log-opts, labels, environment, metric
 * labels). */
typedef struct lk_kv {
    lk_bytes_t key;
    lk_bytes_t value;
} lk_kv_t;

/* A host-owned buffer into which a plugin copies an error message: write at
 * most `cap` bytes at `buf` and set `len`. */
typedef struct lk_err_buf {
    uint8_t *buf;
    size_t cap;
    size_t len;
} lk_err_buf_t;

/* One log record: a line (with its own '\n' when it had one) or a chunk of a
 * long line. `line` points into host memory valid only during write_logs. */
typedef struct lk_log_record {
    /* The bytes, including the line's '\n' when it had one; invalid UTF-8,
     * NUL, '\r' and escape sequences are passed through untouched. */
    lk_bytes_t line;
    /* When the host read the bytes, nanoseconds since the Unix epoch, UTC. */
    int64_t time_unix_nano;
    /* One of the LK_STREAM_* values. */
    uint32_t stream;
    /* LK_REC_* flags. */
    uint32_t flags;
    /* Identifies the line a partial chunk belongs to; 0 when not partial. */
    uint64_t partial_id;
    /* 1-based position of a partial chunk in its line; 0 when not partial. */
    uint32_t partial_ordinal;
    /* Reserved, zero. */
    uint32_t reserved;
} lk_log_record_t;

/* One metric sample; every pointer is borrowed for the write call. */
typedef struct lk_metric_sample {
    lk_bytes_t name;
    lk_bytes_t help;
    lk_bytes_t unit;
    /* LK_METRIC_COUNTER or LK_METRIC_GAUGE. */
    uint32_t kind;
    /* Reserved, zero. */
    uint32_t reserved;
    double value;
    /* When the value was read, nanoseconds since the Unix epoch. */
    int64_t time_unix_nano;
    const lk_kv_t *labels;
    size_t n_labels;
} lk_metric_sample_t;

/* What the host tells a log stream about its container (borrowed for the
 * start call). */
typedef struct lk_container_info {
    /* Size of this structure as the host knows it. */
    size_t struct_size;
    /* Full container id (64 hex characters). */
    lk_bytes_t id;
    /* Container name, without the leading '/'. */
    lk_bytes_t name;
    /* Full image id ("sha256:..."). */
    lk_bytes_t image_id;
    /* Image name as the user gave it. */
    lk_bytes_t image_name;
    /* Entrypoint and arguments joined by spaces. */
    lk_bytes_t command;
    /* The container's hostname. */
    lk_bytes_t hostname;
    /* Name of the engine (the daemon's hostname). */
    lk_bytes_t daemon_name;
    /* Directory the driver may write its files to (created by the host). */
    lk_bytes_t log_dir;
    /* Container creation time, nanoseconds since the Unix epoch. */
    int64_t created_unix_nano;
    const lk_kv_t *labels;
    size_t n_labels;
    /* Environment, split at the first '='. */
    const lk_kv_t *env;
    size_t n_env;
} lk_container_info_t;

/* What the host offers a plugin; valid for the life of the process. */
typedef struct lk_host {
    /* Size of this structure as the host knows it. */
    size_t struct_size;
    /* The host's ABI version. */
    uint16_t abi_major;
    uint16_t abi_minor;
    /* Reserved, zero. */
    uint32_t reserved;
    /* Host name and version, e.g. "lookout 0.1.0". */
    lk_bytes_t host_version;
    /* Writes a diagnostic message to the host's log; may be NULL. `msg` is
     * borrowed for the call. Thread-safe. */
    void (*log)(void *ctx, lk_log_level_t level, lk_bytes_t msg);
    /* First argument of `log`. */
    void *log_ctx;
} lk_host_t;

/* ---------------------------------------------------- function table */

/* Validates options without side effects. Unknown keys are an error naming
 * the key (and the driver). */
typedef lk_status_t (*lk_validate_fn_t)(const lk_kv_t *opts, size_t n_opts,
                                        lk_err_buf_t *err);
/* Creates an instance from validated options; on LK_OK stores it in *out.
 * The plugin allocates it and frees it in shutdown. */
typedef lk_status_t (*lk_init_fn_t)(const lk_host_t *host,
                                    const lk_kv_t *opts, size_t n_opts,
                                    void **out, lk_err_buf_t *err);
/* Starts a stream for one container (log drivers) or for the engine
 * (metrics sinks, where `info` may be NULL); on LK_OK stores it in *out.
 * The plugin allocates it and frees it in stop. */
typedef lk_status_t (*lk_start_fn_t)(void *instance,
                                     const lk_container_info_t *info,
                                     void **out, lk_err_buf_t *err);
/* Writes `n` records (borrowed for the call). Sets *written to how many were
 * fully handled (all `n` on LK_OK). */
typedef lk_status_t (*lk_write_logs_fn_t)(void *stream,
                                          const lk_log_record_t *records,
                                          size_t n, size_t *written,
                                          lk_err_buf_t *err);
/* Writes `n` metric samples; *written as for lk_write_logs_fn_t. */
typedef lk_status_t (*lk_write_metrics_fn_t)(
    void *stream, const lk_metric_sample_t *samples, size_t n,
    size_t *written, lk_err_buf_t *err);
/* Makes everything written so far durable or delivered. */
typedef lk_status_t (*lk_flush_fn_t)(void *stream, lk_err_buf_t *err);
/* Drains, closes and frees a stream. The stream pointer is invalid after
 * this call, whatever it returns. */
typedef lk_status_t (*lk_stop_fn_t)(void *stream, lk_err_buf_t *err);
/* Frees an instance. Called only after every stream of it was stopped. */
typedef void (*lk_shutdown_fn_t)(void *instance);

/* The function table (static). An entry may be NULL when the plugin's kind
 * does not use it (write_metrics in a log driver, write_logs in a metrics
 * sink). */
typedef struct lk_fns {
    /* sizeof(lk_fns_t) as the plugin knows it. */
    size_t struct_size;
    lk_validate_fn_t validate;
    lk_init_fn_t init;
    lk_start_fn_t start;
    lk_write_logs_fn_t write_logs;
    lk_write_metrics_fn_t write_metrics;
    lk_flush_fn_t flush;
    lk_stop_fn_t stop;
    lk_shutdown_fn_t shutdown;
} lk_fns_t;

/* The plugin descriptor returned by the entry point (static). */
typedef struct lk_plugin {
    /* sizeof(lk_plugin_t) as the plugin knows it. */
    size_t struct_size;
    /* LOOKOUT_ABI_MAJOR / LOOKOUT_ABI_MINOR the plugin was built against. */
    uint16_t abi_major;
    uint16_t abi_minor;
    /* LK_KIND_LOG or LK_KIND_METRICS. */
    lk_kind_t kind;
    /* LK_CAP_* bits. */
    uint64_t caps;
    /* Driver name users type in --log-driver (NUL-terminated, static). */
    const char *name;
    /* Plugin version (NUL-terminated, static). */
    const char *version;
    /* Free-form build information (NUL-terminated, static; may be NULL). */
    const char *build_info;
    /* The function table (static). */
    const lk_fns_t *fns;
} lk_plugin_t;

/* -------------------------------------------------------------- entry */

/* The entry point's type: called once, right after loading. */
typedef const lk_plugin_t *(*lk_entry_fn_t)(const lk_host_t *host);

/* The entry point every plugin defines (and exports). `host` is valid for
 * the life of the process; the returned descriptor must be too. */
const lk_plugin_t *lookout_plugin_v1(const lk_host_t *host);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOOKOUT_PLUGIN_H */
