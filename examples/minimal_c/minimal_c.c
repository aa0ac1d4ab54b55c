/* minimal_c: an Outpost poller in plain C11, standing proof that the plugin ABI is C.
 *
 * For each target it checks a file on the engine's host (monitor parameter `path`) and emits
 * file_exists, file_size_bytes and file_age_seconds. Completes every target synchronously. */
#include <errno.h>
#include <outpost/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STR(x) \
  { x, sizeof(x) - 1 }

typedef struct minimal {
  const outpost_host_api* api;
  outpost_host* host;
} minimal;

static outpost_status m_create(const outpost_host_api* api, outpost_host* host,
                               const outpost_kv* cfg, size_t n, outpost_instance** out) {
  (void)cfg;
  (void)n;
  minimal* m = (minimal*)calloc(1, sizeof *m);
  if (m == NULL) return OUTPOST_E_INTERNAL;
  m->api = api;
  m->host = host;
  *out = (outpost_instance*)m;
  return OUTPOST_OK;
}

static void m_destroy(outpost_instance* i) { free(i); }

static outpost_str find_param(const outpost_target* t, const char* key) {
  const size_t klen = strlen(key);
  for (size_t i = 0; i < t->param_count; ++i)
    if (t->params[i].key.len == klen && memcmp(t->params[i].key.ptr, key, klen) == 0)
      return t->params[i].value;
  outpost_str none = {NULL, 0};
  return none;
}

static outpost_status m_poll(outpost_instance* inst, const outpost_poll_request* req) {
  minimal* m = (minimal*)inst;
  const int64_t now = m->api->now_ns(m->host);
  for (size_t k = 0; k < req->target_count; ++k) {
    const outpost_target* t =
        (const outpost_target*)((const char*)req->targets + k * req->target_size);
    const outpost_str p = find_param(t, "path");
    char path[4096];
    if (p.len == 0 || p.len >= sizeof path) {
      outpost_str why = STR("parameter 'path' missing or too long");
      m->api->complete(m->host, req->poll_id, t->id, OUTPOST_E_CONFIG, why);
      continue;
    }
    memcpy(path, p.ptr, p.len);
    path[p.len] = '\0';
    struct stat st;
    const int exists = stat(path, &st) == 0;
    outpost_kv labels[2] = {{STR("device"), t->device}, {STR("path"), p}};
    outpost_metric ms[3];
    memset(ms, 0, sizeof ms);
    size_t count = 0;
    ms[count].name = (outpost_str)STR("file_exists");
    ms[count].value = exists ? 1.0 : 0.0;
    count++;
    if (exists) {
      ms[count].name = (outpost_str)STR("file_size_bytes");
      ms[count].value = (double)st.st_size;
      count++;
      ms[count].name = (outpost_str)STR("file_age_seconds");
      ms[count].value = (double)(now / 1000000000 - (int64_t)st.st_mtime);
      count++;
    }
    for (size_t i = 0; i < count; ++i) {
      ms[i].labels = labels;
      ms[i].label_count = 2;
      ms[i].time_ns = now;
      ms[i].type = OUTPOST_METRIC_GAUGE;
    }
    outpost_batch b = outpost_batch_make();
    b.metrics = ms;
    b.metric_count = count;
    m->api->emit(m->host, &b);
    if (exists) {
      outpost_str none = {NULL, 0};
      m->api->complete(m->host, req->poll_id, t->id, OUTPOST_OK, none);
    } else {
      char msg[128];
      const int len = snprintf(msg, sizeof msg, "%s", strerror(errno));
      outpost_str why = {msg, len > 0 ? (size_t)len : 0};
      m->api->complete(m->host, req->poll_id, t->id, OUTPOST_E_NOT_FOUND, why);
    }
  }
  return OUTPOST_OK;
}

static const outpost_field target_fields[] = {
    {STR("path"), OUTPOST_FIELD_STRING, OUTPOST_FIELD_REQUIRED, STR(""),
     STR("file to check on the engine's host")},
};

static const outpost_plugin_descriptor descriptor = {
    OUTPOST_PLUGIN_MAGIC,
    OUTPOST_ABI_VERSION,
    sizeof(outpost_plugin_descriptor),
    OUTPOST_KIND_POLLER,
    STR("minimal_c"),
    STR("1.0.0"),
    STR("checks that a file exists, its size and age (example plugin in C)"),
    NULL,
    0,
    target_fields,
    sizeof target_fields / sizeof target_fields[0],
    0,
    0,
    m_create,
    m_destroy,
    NULL, /* start */
    NULL, /* stop */
    m_poll,
    NULL, /* receive */
    NULL, /* process */
    NULL, /* write */
    NULL, /* flush */
};

OUTPOST_EXPORT const outpost_plugin_descriptor* outpost_plugin_entry(uint32_t host_abi_version) {
  return OUTPOST_ABI_MAJOR_OF(host_abi_version) == OUTPOST_ABI_MAJOR ? &descriptor : NULL;
}
