/*
 * Outpost plugin ABI, version 1.
 *
 * This header is the whole contract between the Outpost engine (the host) and a plugin. It is
 * plain C (C11 and C++), so a plugin built by another compiler or standard library still loads.
 *
 * Rules:
 *  - A plugin exports exactly one symbol, OUTPOST_ENTRY_SYMBOL, which returns a pointer to a
 *    static descriptor (or NULL when it cannot serve the host's ABI version). It allocates
 *    nothing and starts nothing.
 *  - Minor versions only append members at the end of structs, or give a reserved member a
 *    meaning for which 0 keeps the old behaviour; every struct that may grow is preceded by its
 *    size (struct_size) or travels with an element size (batches). Check a member is present
 *    with OUTPOST_HAS before reading it. A changed signature gets a _v2 name. Producers zero
 *    reserved members.
 *  - Each released version of this header is frozen under sdk/abi/<major>.<minor>/ (1.0, 1.1,
 *    1.2, 1.3, 1.4); the engine loads plugins built against any of them. Members added after 1.0
 * say their version. A change to this header after a release is the next minor's.
 *  - 1.1: outpost_flow.exporter_family (was reserved0).
 *  - 1.2: host timers (outpost_host_api.set_timer, outpost_plugin_descriptor.timer); targets
 *    carry the labels the host built (outpost_target.labels); OUTPOST_E_OVERLOADED; command-line
 *    subcommands (outpost_plugin_descriptor.command, outpost_command_plan).
 *  - 1.3: reads of what a sink stored (outpost_plugin_descriptor.read, outpost_read_request,
 *    outpost_read_row, outpost_column); instances created only to be read
 *    (outpost_host_api.purpose, OUTPOST_PURPOSE_*).
 *  - 1.4: batches out of the disk spool (outpost_plugin_descriptor.write_spooled,
 *    outpost_write_info, outpost_spool_range); a destination's "come back later"
 *    (outpost_host_api.retry_after).
 *  - Strings and buffers are {ptr, len}, not NUL-terminated, and borrowed for the duration of
 *    the call unless a comment says otherwise. The host deep-copies what a plugin emits.
 *  - Ownership is stated on every pointer: "borrowed" (valid during the call), "static" (valid
 *    for the life of the process), "plugin-owned" or "host-owned" (valid until the owner's
 *    matching destroy/stop).
 *  - Nothing may unwind across this boundary: C++ plugins catch everything (sdk.hpp does).
 */
#ifndef OUTPOST_PLUGIN_H
#define OUTPOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------------------- */

#define OUTPOST_PLUGIN_MAGIC 0x4F555450u /* "OUTP" */
#define OUTPOST_ABI_MAJOR 1u
#define OUTPOST_ABI_MINOR 4u
#define OUTPOST_ABI_VERSION ((OUTPOST_ABI_MAJOR << 16) | OUTPOST_ABI_MINOR)
#define OUTPOST_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define OUTPOST_ABI_MINOR_OF(v) ((uint32_t)(v)&0xFFFFu)

/* The one exported symbol's name, as a string for dlsym-style lookups. */
#define OUTPOST_ENTRY_SYMBOL "outpost_plugin_entry"

/* True when a struct whose first member is uint32_t struct_size carries MEMBER. */
#define OUTPOST_HAS(ptr, type, member) \
  ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

#if defined(_WIN32)
#define OUTPOST_EXPORT __declspec(dllexport)
#else
#define OUTPOST_EXPORT __attribute__((visibility("default")))
#endif

/* ---- basic types ---------------------------------------------------------------------- */

/* A borrowed byte string; not NUL-terminated. ptr may be NULL when len is 0. */
typedef struct outpost_str {
  const char* ptr; /* borrowed */
  size_t len;
} outpost_str;

/* A key/value pair: metric labels, event attributes, configuration, target parameters. */
typedef struct outpost_kv {
  outpost_str key;
  outpost_str value;
} outpost_kv;

/* Status codes: fixed width, grouped in classes by their high byte. */
typedef int32_t outpost_status;

#define OUTPOST_OK 0
/* Retry later: the condition may pass by itself. */
#define OUTPOST_CLASS_RETRY 0x100
#define OUTPOST_E_UNAVAILABLE 0x101 /* peer down, refused, unreachable */
#define OUTPOST_E_TIMEOUT 0x102     /* deadline passed */
#define OUTPOST_E_BUSY 0x103        /* back-pressure: queue full, instance busy */
/* 1.2: a target not attempted: the plugin had no capacity (max_concurrent, max_targets) to start
 * it before its deadline. Says nothing about the device: the host counts it as skipped and leaves
 * the device's availability as it was. */
#define OUTPOST_E_OVERLOADED 0x104
/* Tell the operator: needs a change of configuration or credentials. */
#define OUTPOST_CLASS_OPERATOR 0x200
#define OUTPOST_E_AUTH 0x201       /* authentication or authorisation refused */
#define OUTPOST_E_CONFIG 0x202     /* invalid configuration */
#define OUTPOST_E_NOT_FOUND 0x203  /* no such object, secret, file */
#define OUTPOST_E_PERMISSION 0x204 /* the OS refused (raw sockets, privileged ports) */
/* A bug in the plugin or the host. */
#define OUTPOST_CLASS_BUG 0x300
#define OUTPOST_E_INTERNAL 0x301
#define OUTPOST_E_INVALID_ARGUMENT 0x302
#define OUTPOST_E_UNSUPPORTED 0x303

#define OUTPOST_STATUS_CLASS(s) ((int32_t)(s)&0x7F00)

/* Plugin kinds: a mask, one plugin may be several. */
#define OUTPOST_KIND_POLLER 0x1u
#define OUTPOST_KIND_LISTENER 0x2u
#define OUTPOST_KIND_PROCESSOR 0x4u
#define OUTPOST_KIND_SINK 0x8u

/* Log levels. */
#define OUTPOST_LOG_DEBUG 10u
#define OUTPOST_LOG_INFO 20u
#define OUTPOST_LOG_WARN 30u
#define OUTPOST_LOG_ERROR 40u

/* Opaque handles. outpost_host is host-owned; outpost_instance is plugin-owned. */
typedef struct outpost_host outpost_host;
typedef struct outpost_instance outpost_instance;

/* ---- data ----------------------------------------------------------------------------- */

#define OUTPOST_METRIC_GAUGE 0u
#define OUTPOST_METRIC_COUNTER 1u /* monotonically increasing total */

typedef struct outpost_metric {
  outpost_str name;
  const outpost_kv* labels; /* borrowed, label_count entries */
  size_t label_count;
  double value;
  int64_t time_ns; /* Unix epoch nanoseconds; 0 = the host stamps it on emit */
  uint32_t type;   /* OUTPOST_METRIC_* */
  uint32_t reserved0;
} outpost_metric;

#define OUTPOST_SEV_DEBUG 7u
#define OUTPOST_SEV_INFO 6u
#define OUTPOST_SEV_NOTICE 5u
#define OUTPOST_SEV_WARNING 4u
#define OUTPOST_SEV_ERROR 3u
#define OUTPOST_SEV_CRITICAL 2u
#define OUTPOST_SEV_ALERT 1u
#define OUTPOST_SEV_EMERGENCY 0u

typedef struct outpost_event {
  int64_t time_ns;   /* Unix epoch nanoseconds; 0 = the host stamps it */
  uint32_t severity; /* OUTPOST_SEV_* (syslog numbering) */
  uint32_t reserved0;
  outpost_str source; /* device or sender */
  outpost_str kind;   /* "syslog", "trap", "availability", "alert", ... */
  outpost_str message;
  const outpost_kv* attributes; /* borrowed, attribute_count entries */
  size_t attribute_count;
} outpost_event;

/* A flow record: fixed layout, no pointers, for speed. Addresses are in network order;
 * IPv4 uses the first 4 bytes of the 16. */
typedef struct outpost_flow {
  int64_t start_ns;
  int64_t end_ns;
  uint8_t src_addr[16];
  uint8_t dst_addr[16];
  uint8_t exporter_addr[16];
  uint8_t family; /* 4 or 6 */
  uint8_t protocol;
  uint8_t tcp_flags;
  uint8_t tos;
  uint16_t src_port;
  uint16_t dst_port;
  uint32_t input_if;
  uint32_t output_if;
  uint32_t sampling_rate; /* 1 = unsampled; bytes/packets are already scaled */
  /* 1.1: the exporter address's own family, 4 or 6 (an IPv6 exporter may report IPv4 flows);
   * 0 from 1.0 producers: the flow's family. Read it with outpost_flow_exporter_family(). */
  uint8_t exporter_family;
  uint8_t reserved0[3];
  uint64_t bytes;
  uint64_t packets;
} outpost_flow;

static inline uint8_t outpost_flow_exporter_family(const outpost_flow* f) {
  return f->exporter_family == 4 || f->exporter_family == 6 ? f->exporter_family : f->family;
}

/* A batch of data. Element sizes travel with the arrays so the element structs can grow in a
 * minor release: element i of metrics is at (const char*)metrics + i * metric_size. */
typedef struct outpost_batch {
  uint32_t struct_size;
  uint32_t metric_size; /* sizeof(outpost_metric) as the producer compiled it */
  uint32_t event_size;
  uint32_t flow_size;
  const outpost_metric* metrics; /* borrowed */
  size_t metric_count;
  const outpost_event* events; /* borrowed */
  size_t event_count;
  const outpost_flow* flows; /* borrowed */
  size_t flow_count;
} outpost_batch;

/* An empty batch with this header's element sizes: start every batch from it. */
static inline outpost_batch outpost_batch_make(void) {
  outpost_batch b;
  b.struct_size = (uint32_t)sizeof(outpost_batch);
  b.metric_size = (uint32_t)sizeof(outpost_metric);
  b.event_size = (uint32_t)sizeof(outpost_event);
  b.flow_size = (uint32_t)sizeof(outpost_flow);
  b.metrics = NULL;
  b.metric_count = 0;
  b.events = NULL;
  b.event_count = 0;
  b.flows = NULL;
  b.flow_count = 0;
  return b;
}

/* ---- polling -------------------------------------------------------------------------- */

/* One (device, monitor) pair that is due. */
typedef struct outpost_target {
  uint64_t id;              /* host-assigned; pass back to complete() */
  outpost_str device;       /* device name from the inventory */
  outpost_str address;      /* host name or IP literal */
  const outpost_kv* params; /* borrowed: the monitor's settings, validated against target_fields */
  size_t param_count;
  const outpost_kv* tags; /* borrowed: the device's tags */
  size_t tag_count;
  /* 1.2: the labels every metric of this target starts from, built once by the host: device,
   * address (when it has one), then the device's tags (a tag named device or address is left
   * out). Borrowed like params. Present when the request's target_size covers it. */
  const outpost_kv* labels;
  size_t label_count;
} outpost_target;

typedef struct outpost_poll_request {
  uint32_t struct_size;
  uint32_t target_size; /* sizeof(outpost_target) as the host compiled it */
  uint64_t poll_id;
  int64_t deadline_ns;           /* on the host's monotonic clock (host_api->monotonic_ns) */
  const outpost_target* targets; /* borrowed for the call; copy what an async poll keeps */
  size_t target_count;
} outpost_poll_request;

/* ---- listening ------------------------------------------------------------------------ */

typedef struct outpost_sockaddr {
  uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
  uint8_t family;   /* 4 or 6 */
  uint8_t reserved0;
  uint16_t port; /* host order */
  uint32_t reserved1;
} outpost_sockaddr;

typedef struct outpost_datagram {
  const uint8_t* data; /* borrowed */
  size_t len;
  outpost_sockaddr source;
  uint64_t socket_id;   /* the core's socket it arrived on; for reply() */
  int64_t recv_time_ns; /* Unix epoch nanoseconds */
} outpost_datagram;

/* ---- the host's API, handed to create() ------------------------------------------------ */

/* create() receives `api` and `host`. Both are host-owned and stay valid until destroy()
 * returns; keep them. `host` is this instance's handle: pass it back to every call. Every
 * callback may be called from any thread, inside a hook or from a plugin's own thread, unless
 * its comment says otherwise; none of them calls back into the plugin's hooks. */
typedef struct outpost_host_api {
  uint32_t struct_size;
  uint32_t abi_version;
  /* Hand data to the pipeline. The host deep-copies before returning. Returns OUTPOST_E_BUSY
   * when the data was dropped by back-pressure (counted by the host), OUTPOST_E_UNAVAILABLE
   * before create returned or after stop returned (the data is dropped and counted): emits are
   * accepted from create's return until stop returns, stop's own emits included. */
  outpost_status (*emit)(outpost_host* host, const outpost_batch* batch);
  /* Check before formatting an expensive message. */
  int (*log_enabled)(outpost_host* host, uint32_t level);
  void (*log)(outpost_host* host, uint32_t level, outpost_str message);
  /* Errors travel on their own channel, counted per plugin and status. */
  void (*report_error)(outpost_host* host, outpost_status status, outpost_str detail);
  /* Resolve a credential reference ("name" from the credentials section, or ${env:X}).
   * Writes at most cap bytes into buf (plugin-owned) and the full length into *len. */
  outpost_status (*get_secret)(outpost_host* host, outpost_str ref, char* buf, size_t cap,
                               size_t* len);
  /* Wall clock (Unix epoch ns), and the host's monotonic clock (ns). The monotonic clock starts
   * near 0 when the engine starts: 0 is not "long ago". Poll deadlines are on this clock. */
  int64_t (*now_ns)(outpost_host* host);
  int64_t (*monotonic_ns)(outpost_host* host);
  /* Report a polled target's outcome, from poll() or later from any thread, until stop
   * returns. The first report of a target wins; reports after its deadline, repeated reports
   * and reports of unknown targets are counted as late and ignored. */
  void (*complete)(outpost_host* host, uint64_t poll_id, uint64_t target_id, outpost_status status,
                   outpost_str detail);
  /* Listener answer on the socket a datagram came from (e.g. an SNMP inform ack). data is
   * borrowed for the call. */
  outpost_status (*reply)(outpost_host* host, uint64_t socket_id, const outpost_sockaddr* to,
                          const uint8_t* data, size_t len);
  /* 1.2: a periodic timer of this instance. The host calls the descriptor's timer hook with
   * timer_id every period_ns, the first time one period after this call; a call with an id
   * already set replaces its period, period_ns 0 cancels it. A firing that finds the previous
   * one still running is skipped, not queued. Timers fire only between start's return and
   * stop's call, never concurrently with another hook of the instance. Call it from create
   * onwards (timers set before start wait for start); OUTPOST_E_UNSUPPORTED when the plugin has
   * no timer hook, OUTPOST_E_UNAVAILABLE after stop. Check it is present with OUTPOST_HAS. */
  outpost_status (*set_timer)(outpost_host* host, uint64_t timer_id, int64_t period_ns);
  /* 1.3: what the host created this instance for, OUTPOST_PURPOSE_*; the same answer from create
   * until destroy. A host without it (OUTPOST_HAS false) runs every instance it creates. */
  uint32_t (*purpose)(outpost_host* host);
  /* 1.4, sinks: the destination asked to be left alone for delay_ns (HTTP 429/503 Retry-After).
   * Call it from write or write_spooled before returning a retry-class status: the host offers
   * nothing to this sink before then. */
  void (*retry_after)(outpost_host* host, int64_t delay_ns);
} outpost_host_api;

/* 1.3: the answers of host_api->purpose. RUN: the engine's pipeline or a poll; the lifecycle of
 * the descriptor's comment. READ: only to answer read (`outpost query`): the host calls create,
 * read any number of times, then destroy, and nothing else; the plugin leaves its destination as
 * it is (it opens a store read-only, creates no file, starts nothing) and fails create with
 * OUTPOST_E_NOT_FOUND, the reason through report_error, when there is nothing to read. */
#define OUTPOST_PURPOSE_RUN 0u
#define OUTPOST_PURPOSE_READ 1u

/* ---- command-line subcommands (1.2) ---------------------------------------------------- */

/* What a plugin's subcommand (`outpost NAME ARGS...`) asks of the host: one poll of the plugin
 * itself, which the host runs as `outpost poll` does (same loading, settings from --config,
 * credentials, validation of the parameters) and prints: the message of every event of
 * print_kind, one a line, on stdout (the file sink's JSON lines with --json), and each failed
 * target on stderr; the exit status says how the poll went (0 ok, 1 a target failed, 2 a usage
 * or configuration error). Or, for help and usage errors, only text and an exit status. Filled
 * by the command hook; every pointer is plugin-owned and stays valid until the hook is called
 * again or the process ends (the host calls it once). */
typedef struct outpost_command_plan {
  uint32_t struct_size; /* set by the host */
  int32_t exit_code;    /* when run_poll is 0: the process's exit status */
  uint32_t run_poll;    /* 1: run the poll; 0: print text and exit */
  uint32_t reserved0;
  outpost_str text;         /* printed first: on stdout if exit_code is 0, else on stderr */
  const outpost_kv* params; /* the poll's monitor parameters (a list: the key repeated) */
  size_t param_count;
  const outpost_str* targets; /* addresses, one target each (also its device name) */
  size_t target_count;
  outpost_str print_kind; /* the events that are the command's output */
  int64_t timeout_ns;     /* the poll's deadline after it starts; the host's --timeout wins */
} outpost_command_plan;

/* ---- the spool (1.4) ------------------------------------------------------------------- */

/* Records first_seq..last_seq (both included) of one stream of a sink's spool. A stream holds
 * what one source emitted (a plugin instance's name, or "engine" for the engine's own data);
 * sequence numbers of a stream only grow, also across restarts. */
typedef struct outpost_spool_range {
  outpost_str stream;
  uint64_t first_seq;
  uint64_t last_seq;
} outpost_spool_range;

/* Where a batch given to write_spooled comes from. A batch is offered again, with the same
 * ranges and the same items, until the sink returns OUTPOST_OK or a status outside the retry
 * and operator classes; also after the engine restarted, even after a kill -9 while the sink
 * was writing it. So a destination that remembers, per (spool_id, stream), the highest last_seq
 * it accepted can drop a repeat exactly: at most the one batch in flight at a crash is sent
 * twice, and only that. */
typedef struct outpost_write_info {
  uint32_t struct_size;
  uint32_t range_size;               /* sizeof(outpost_spool_range) as the host compiled it */
  outpost_str spool_id;              /* random, made with the spool; kept across restarts */
  const outpost_spool_range* ranges; /* borrowed; one per stream the batch holds records of */
  size_t range_count;
  uint32_t attempt; /* 1 the first time this process offers the batch, then 2, 3, ... */
  uint32_t reserved0;
  int64_t oldest_ns; /* Unix epoch ns the oldest record of the batch was spooled */
} outpost_write_info;

/* ---- reading a sink (1.3) ------------------------------------------------------------- */

/* What a read asks for, and what each row of its answer is. The rows of SERIES, SAMPLES and
 * EVENTS have at least these columns (a sink may add its own after them):
 *   SERIES  (one per metric series seen in the range): name TEXT, labels LABELS, last DOUBLE
 *           (the newest value), last_time_ns TIME, samples INT (how many in the range)
 *   SAMPLES (newest first): time_ns TIME, name TEXT, labels LABELS, value DOUBLE
 *   EVENTS  (newest first): time_ns TIME, severity SEVERITY, kind TEXT, source TEXT,
 *           message TEXT, attributes LABELS
 * SUMMARY asks for the sink's overview in rows of those kinds (a store: its series, then its
 * most recent events). */
#define OUTPOST_READ_SUMMARY 0u
#define OUTPOST_READ_SERIES 1u
#define OUTPOST_READ_SAMPLES 2u
#define OUTPOST_READ_EVENTS 3u

/* Every filter set narrows the answer; a zero filter (empty text, 0) lets everything through. */
typedef struct outpost_read_request {
  uint32_t struct_size;
  uint32_t what;     /* OUTPOST_READ_* */
  outpost_str name;  /* series, samples: this metric name exactly */
  outpost_str match; /* rows whose name or labels (series, samples), or kind, source, message or
                      * attributes (events) contain this text, as the sink stores them */
  int64_t since_ns;  /* data at or after this time (Unix epoch ns) */
  int64_t until_ns;  /* data before this time */
  uint64_t limit;    /* at most this many rows of each kind; 0: the sink's own bound */
} outpost_read_request;

/* A column's value: which member holds it. NULL (0) is a value the row does not have (a stored
 * NaN, an empty field). */
#define OUTPOST_VALUE_NULL 0u
#define OUTPOST_VALUE_TEXT 1u     /* text */
#define OUTPOST_VALUE_INT 2u      /* i */
#define OUTPOST_VALUE_DOUBLE 3u   /* d */
#define OUTPOST_VALUE_TIME 4u     /* i: Unix epoch nanoseconds */
#define OUTPOST_VALUE_SEVERITY 5u /* i: OUTPOST_SEV_* */
#define OUTPOST_VALUE_LABELS 6u   /* labels, label_count: key/value pairs */

typedef struct outpost_column {
  outpost_str name; /* "name", "labels", "value", ... */
  uint32_t type;    /* OUTPOST_VALUE_* */
  uint32_t reserved0;
  int64_t i;
  double d;
  outpost_str text;
  const outpost_kv* labels;
  size_t label_count;
} outpost_column;

/* One row of a read's answer. Element sizes travel as in batches: column k is at
 * (const char*)columns + k * column_size. */
typedef struct outpost_read_row {
  uint32_t struct_size;
  uint32_t column_size; /* sizeof(outpost_column) as the plugin compiled it */
  uint32_t kind;        /* OUTPOST_READ_SERIES, _SAMPLES or _EVENTS */
  uint32_t reserved0;
  const outpost_column* columns;
  size_t column_count;
} outpost_read_row;

/* The host's receiver of a read's rows, passed to the read hook with the host's context. The
 * plugin calls it once a row, only from inside read, on the thread that called read. row and
 * everything it points at are plugin-owned and valid only during the call: the host copies what
 * it keeps. It returns OUTPOST_OK for more; any other status asks the plugin to send no more
 * rows and to return that status from read. It calls back into no hook of the plugin. */
typedef outpost_status (*outpost_read_row_fn)(void* context, const outpost_read_row* row);

/* ---- configuration schema -------------------------------------------------------------- */

#define OUTPOST_FIELD_STRING 0u
#define OUTPOST_FIELD_INT 1u
#define OUTPOST_FIELD_DOUBLE 2u
#define OUTPOST_FIELD_BOOL 3u
#define OUTPOST_FIELD_DURATION 4u /* "500ms", "2s", "1m" or a number of seconds */
#define OUTPOST_FIELD_SECRET 5u   /* a credential reference, resolved with get_secret */
#define OUTPOST_FIELD_LIST 6u     /* a list of scalars, passed as key.0, key.1, ... */

#define OUTPOST_FIELD_REQUIRED 0x1u

/* One accepted key of a plugin's configuration or a monitor's parameters. The host rejects
 * keys that are not listed and values of the wrong type, with file:line:column. */
typedef struct outpost_field {
  outpost_str name;
  uint32_t type;             /* OUTPOST_FIELD_* */
  uint32_t flags;            /* OUTPOST_FIELD_REQUIRED */
  outpost_str default_value; /* shown in docs; the plugin applies it */
  outpost_str description;
} outpost_field;

/* ---- the descriptor -------------------------------------------------------------------- */

/* Hooks of one instance never run concurrently (the host serialises every hook of an
 * instance, whichever thread calls it) unless the plugin sets this flag; then receive,
 * process, write, flush and timer may run concurrently with each other and with poll. */
#define OUTPOST_FLAG_CONCURRENT_HOOKS 0x1u
/* A processor that turns flow records into summaries: the flows it is given go to the sinks
 * only when the engine is told to keep raw flows (engine.pipeline.raw_flows). */
#define OUTPOST_FLAG_CONSUMES_FLOWS 0x2u
/* 1.4, sinks: put a disk spool in front of this sink unless its configuration says
 * `spool: false` (a destination across a network: what it cannot take now waits on disk). */
#define OUTPOST_FLAG_SPOOL 0x4u

/* Which hooks a descriptor has: create and destroy always; poll exactly when it declares
 * OUTPOST_KIND_POLLER, receive exactly for a listener, process for a processor, write for a
 * sink (the loader refuses a mismatch). start, stop, flush and timer are optional; command only
 * for a poller and read only for a sink. The host
 * calls them in this order: create; start; the kind's hooks and timer; stop (once); destroy
 * (once, also when start failed). Every hook's pointer arguments are borrowed for the call. */
typedef struct outpost_plugin_descriptor {
  uint32_t magic;          /* OUTPOST_PLUGIN_MAGIC */
  uint32_t abi_version;    /* OUTPOST_ABI_VERSION the plugin was built against */
  uint32_t struct_size;    /* sizeof(outpost_plugin_descriptor) as the plugin compiled it */
  uint32_t kinds;          /* OUTPOST_KIND_* mask */
  outpost_str name;        /* static; equals the library's manifest name (outpost_<name>.so) */
  outpost_str version;     /* static */
  outpost_str description; /* static */
  const outpost_field* config_fields; /* static */
  size_t config_field_count;
  const outpost_field* target_fields; /* static; pollers: a monitor's parameters */
  size_t target_field_count;
  uint32_t flags; /* OUTPOST_FLAG_* */
  uint32_t reserved0;

  /* Every kind. config is borrowed for the call. On success *out is plugin-owned until
   * destroy. create must not start threads or open sockets that outlive a failed create. */
  outpost_status (*create)(const outpost_host_api* api, outpost_host* host,
                           const outpost_kv* config, size_t config_count, outpost_instance** out);
  void (*destroy)(outpost_instance* instance);
  /* Optional for every kind: start background work / stop it. After stop returns the
   * plugin emits nothing more and completes no target (the host refuses both). */
  outpost_status (*start)(outpost_instance* instance);
  outpost_status (*stop)(outpost_instance* instance);

  /* Poller: poll a batch of targets; report each through host_api->complete, before the
   * deadline, now or later from any thread. */
  outpost_status (*poll)(outpost_instance* instance, const outpost_poll_request* request);
  /* Listener: a batch of datagrams received on sockets the core owns. dgram_size is
   * sizeof(outpost_datagram) as the host compiled it. */
  outpost_status (*receive)(outpost_instance* instance, const outpost_datagram* datagrams,
                            size_t count, size_t dgram_size);
  /* Processor: sees every batch bound for the sinks (except what processors emitted); emits
   * its results through host_api->emit. */
  outpost_status (*process)(outpost_instance* instance, const outpost_batch* batch);
  /* Sink: write a batch to its destination. A retry-class status asks the host to retry. */
  outpost_status (*write)(outpost_instance* instance, const outpost_batch* batch);
  outpost_status (*flush)(outpost_instance* instance);

  /* 1.2, optional for every kind: a timer set with host_api->set_timer is due. */
  outpost_status (*timer)(outpost_instance* instance, uint64_t timer_id);
  /* 1.2, optional, pollers: the subcommand `outpost <name> ARGS...`. args (borrowed) are the
   * arguments after the name, less the host's own options (--config, --plugin-dir, --json,
   * --timeout, --log-level). Needs no instance; runs on the process's main thread before any
   * instance exists. Returns OUTPOST_OK with *plan filled. */
  outpost_status (*command)(const outpost_str* args, size_t arg_count, outpost_command_plan* plan);
  /* 1.3, optional, sinks that keep what they write: answer the request (borrowed for the call)
   * with rows through row(context, ...), then return. Called between create's return and
   * destroy, with or without start (see OUTPOST_PURPOSE_READ), and serialised with the
   * instance's other hooks like write. OUTPOST_E_UNSUPPORTED for a request the sink cannot
   * answer, OUTPOST_E_NOT_FOUND when there is nothing to read, each with report_error's detail.
   * A host finds no read hook in a descriptor of an older ABI (OUTPOST_HAS) or of a sink that
   * cannot be read. */
  outpost_status (*read)(outpost_instance* instance, const outpost_read_request* request,
                         outpost_read_row_fn row, void* context);
  /* 1.4, optional, sinks: called instead of write for a batch that comes out of the sink's disk
   * spool (the sink's configuration asks for one), with where it comes from (borrowed for the
   * call). A retry-class status keeps the batch and offers it again after a back-off; an
   * operator-class status too, after a longer one (the data waits for a fixed certificate or
   * password); any other status drops the batch, counted as rejected. */
  outpost_status (*write_spooled)(outpost_instance* instance, const outpost_batch* batch,
                                  const outpost_write_info* info);
} outpost_plugin_descriptor;

/* The entry point every plugin exports. host_abi_version is OUTPOST_ABI_VERSION of the host. */
typedef const outpost_plugin_descriptor* (*outpost_plugin_entry_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* OUTPOST_PLUGIN_H */
