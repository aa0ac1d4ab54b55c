/* Deliberately broken (and a few well-behaved) plugins for the loader and scheduler tests.
 * CMake builds this file once per variant with -DVARIANT_<NAME>; each library is named
 * outpost_<name>.so, so the manifest name is <name>. Pure C: the ABI needs nothing more. */
#include <outpost/plugin.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S(x) \
  { x, sizeof(x) - 1 }

typedef struct state {
  const outpost_host_api* api;
  outpost_host* host;
} state;

static outpost_status p_create(const outpost_host_api* api, outpost_host* host,
                               const outpost_kv* cfg, size_t n, outpost_instance** out) {
  (void)cfg;
  (void)n;
  state* s = (state*)calloc(1, sizeof *s);
  if (!s) return OUTPOST_E_INTERNAL;
  s->api = api;
  s->host = host;
  *out = (outpost_instance*)s;
  return OUTPOST_OK;
}
static void p_destroy(outpost_instance* i) { free(i); }

/* The target's "status" parameter (default 0, ok). */
static outpost_status status_of(const outpost_target* t) {
  for (size_t k = 0; k < t->param_count; ++k)
    if (t->params[k].key.len == 6 && memcmp(t->params[k].key.ptr, "status", 6) == 0) {
      char buf[16] = {0};
      memcpy(buf, t->params[k].value.ptr,
             t->params[k].value.len < 15 ? t->params[k].value.len : 15);
      return (outpost_status)strtol(buf, NULL, 0);
    }
  return OUTPOST_OK;
}

/* Completes every target at once with its "status" parameter (ok by default). */
static outpost_status p_poll(outpost_instance* i, const outpost_poll_request* r) {
  state* s = (state*)i;
#ifdef VARIANT_HANG
  /* Never answers in time: sleeps far past any deadline. */
  struct timespec ts = {3600, 0};
  nanosleep(&ts, NULL);
#endif
  for (size_t k = 0; k < r->target_count; ++k) {
    const outpost_target* t = (const outpost_target*)((const char*)r->targets + k * r->target_size);
    outpost_kv label = {S("device"), t->device};
    outpost_metric m;
    memset(&m, 0, sizeof m);
    m.name.ptr = "test_polled";
    m.name.len = 11;
    m.labels = &label;
    m.label_count = 1;
    m.value = 1;
    outpost_batch b = outpost_batch_make();
    b.metrics = &m;
    b.metric_count = 1;
    s->api->emit(s->host, &b);
    s->api->complete(s->host, r->poll_id, t->id, status_of(t), (outpost_str){0, 0});
  }
  return OUTPOST_OK;
}

static const outpost_field target_fields[] = {
    {S("value"), OUTPOST_FIELD_INT, 0, S("1"), S("a number")},
    {S("status"), OUTPOST_FIELD_INT, 0, S("0"), S("the status every poll of the target reports")},
};

#if defined(VARIANT_GOOD)
#define NAME "good"
#elif defined(VARIANT_HANG)
#define NAME "hang"
#elif defined(VARIANT_BAD_MAGIC)
#define NAME "bad_magic"
#elif defined(VARIANT_BAD_MAJOR)
#define NAME "bad_major"
#elif defined(VARIANT_NEWER_MINOR)
#define NAME "newer_minor"
#elif defined(VARIANT_SMALL_STRUCT)
#define NAME "small_struct"
#elif defined(VARIANT_NAME_MISMATCH)
#define NAME "somebody_else"
#elif defined(VARIANT_KIND_MISMATCH)
#define NAME "kind_mismatch"
#elif defined(VARIANT_NULL_ENTRY)
#define NAME "null_entry"
#elif defined(VARIANT_OLDER_MINOR)
#define NAME "older_minor"
#else
#error "no VARIANT_ defined"
#endif

static const outpost_plugin_descriptor desc = {
#ifdef VARIANT_BAD_MAGIC
    0xDEADBEEFu,
#else
    OUTPOST_PLUGIN_MAGIC,
#endif
#if defined(VARIANT_BAD_MAJOR)
    (2u << 16) | 0u,
#elif defined(VARIANT_NEWER_MINOR)
    (1u << 16) | 99u,
#elif defined(VARIANT_OLDER_MINOR)
    (1u << 16) | 0u, /* built before ABI 1.1: still loads */
#else
    OUTPOST_ABI_VERSION,
#endif
#ifdef VARIANT_SMALL_STRUCT
    16,
#else
    sizeof(outpost_plugin_descriptor),
#endif
#ifdef VARIANT_KIND_MISMATCH
    OUTPOST_KIND_POLLER | OUTPOST_KIND_SINK, /* declares sink, has no write hook */
#else
    OUTPOST_KIND_POLLER,
#endif
    S(NAME),
    S("0.0.1"),
    S("test plugin"),
    NULL,
    0,
    target_fields,
    2,
    0,
    0,
    p_create,
    p_destroy,
    NULL,
    NULL,
    p_poll,
    NULL,
    NULL,
    NULL,
    NULL,
};

OUTPOST_EXPORT const outpost_plugin_descriptor* outpost_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
#ifdef VARIANT_NULL_ENTRY
  (void)desc;
  return NULL;
#else
  return &desc;
#endif
}
