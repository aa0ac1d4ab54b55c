/* probe: a poller that reports which build of itself answers. Built three times as the same
 * plugin for the management channel's update tests: version 1.0.0, version 2.0.0, and a 3.0.0
 * whose create always fails (an update that must be rolled back). Every target completes at
 * once with one gauge, probe_version_info{version=...} = 1. */
#include <outpost/plugin.h>
#include <stdlib.h>

#ifndef PROBE_VERSION
#define PROBE_VERSION "1.0.0"
#endif

#define STR(x) \
  { x, sizeof(x) - 1 }

typedef struct probe {
  const outpost_host_api* api;
  outpost_host* host;
} probe;

static outpost_status p_create(const outpost_host_api* api, outpost_host* host,
                               const outpost_kv* cfg, size_t n, outpost_instance** out) {
  (void)cfg;
  (void)n;
#ifdef PROBE_FAIL_CREATE
  (void)api;
  (void)host;
  (void)out;
  return OUTPOST_E_CONFIG;
#else
  probe* p = (probe*)calloc(1, sizeof *p);
  if (p == NULL) return OUTPOST_E_INTERNAL;
  p->api = api;
  p->host = host;
  *out = (outpost_instance*)p;
  return OUTPOST_OK;
#endif
}

static void p_destroy(outpost_instance* i) { free(i); }

static outpost_status p_poll(outpost_instance* inst, const outpost_poll_request* req) {
  probe* p = (probe*)inst;
  const int64_t now = p->api->now_ns(p->host);
  for (size_t k = 0; k < req->target_count; ++k) {
    const outpost_target* t =
        (const outpost_target*)((const char*)req->targets + k * req->target_size);
    outpost_kv labels[2] = {{STR("device"), t->device}, {STR("version"), STR(PROBE_VERSION)}};
    outpost_metric m;
    m.name = (outpost_str)STR("probe_version_info");
    m.labels = labels;
    m.label_count = 2;
    m.value = 1.0;
    m.time_ns = now;
    m.type = OUTPOST_METRIC_GAUGE;
    m.reserved0 = 0;
    outpost_batch b = outpost_batch_make();
    b.metrics = &m;
    b.metric_count = 1;
    p->api->emit(p->host, &b);
    outpost_str none = {NULL, 0};
    p->api->complete(p->host, req->poll_id, t->id, OUTPOST_OK, none);
  }
  return OUTPOST_OK;
}

static const outpost_plugin_descriptor descriptor = {
    OUTPOST_PLUGIN_MAGIC,
    OUTPOST_ABI_VERSION,
    sizeof(outpost_plugin_descriptor),
    OUTPOST_KIND_POLLER,
    STR("probe"),
    STR(PROBE_VERSION),
    STR("reports its own version (management channel tests)"),
    NULL,
    0,
    NULL,
    0,
    0,
    0,
    p_create,
    p_destroy,
    NULL, /* start */
    NULL, /* stop */
    p_poll,
    NULL, /* receive */
    NULL, /* process */
    NULL, /* write */
    NULL, /* flush */
};

OUTPOST_EXPORT const outpost_plugin_descriptor* outpost_plugin_entry(uint32_t host_abi_version) {
  return OUTPOST_ABI_MAJOR_OF(host_abi_version) == OUTPOST_ABI_MAJOR ? &descriptor : NULL;
}
