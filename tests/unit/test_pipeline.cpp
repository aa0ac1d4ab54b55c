#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "pipeline/pipeline.hpp"

using namespace outpost::core;

namespace {
class RecordingSink : public SinkPort {
 public:
  explicit RecordingSink(std::string n) : name_(std::move(n)) {}
  const std::string& name() const override { return name_; }
  outpost_status write(const outpost_batch& b) override {
    std::lock_guard g(mu);
    ++writes;
    if (fail_next > 0) {
      --fail_next;
      return fail_status;
    }
    for (std::size_t i = 0; i < b.metric_count; ++i) {
      const auto& m = b.metrics[i];
      std::string label =
          m.label_count ? std::string(m.labels[0].value.ptr, m.labels[0].value.len) : "";
      names.push_back(std::string(m.name.ptr, m.name.len) + "/" + label);
    }
    events += b.event_count;
    flows += b.flow_count;
    max_batch = std::max(max_batch, b.metric_count + b.event_count + b.flow_count);
    return OUTPOST_OK;
  }
  outpost_status flush() override {
    ++flushes;
    return OUTPOST_OK;
  }
  std::mutex mu;
  std::vector<std::string> names;
  std::size_t events = 0, flows = 0, writes = 0, max_batch = 0;
  int fail_next = 0;
  outpost_status fail_status = OUTPOST_E_UNAVAILABLE;
  std::atomic<int> flushes{0};

 private:
  std::string name_;
};

Batch metrics(int n, const std::string& tag) {
  Batch b;
  for (int i = 0; i < n; ++i)
    b.add_metric("m" + std::to_string(i), {{"tag", tag}}, i, 1, OUTPOST_METRIC_GAUGE);
  return b;
}
}  // namespace

TEST_CASE("everything submitted reaches every sink, in batches, and is flushed on stop") {
  PipelineOptions o;
  o.batch_size = 100;
  o.flush_interval_s = 0.05;
  Pipeline p(o);
  auto a = std::make_shared<RecordingSink>("a"), b = std::make_shared<RecordingSink>("b");
  p.set_sinks({a, b});
  p.start();
  for (int i = 0; i < 50; ++i) REQUIRE(p.submit(metrics(7, std::to_string(i))) == OUTPOST_OK);
  Batch e;
  e.add_event("dev", "syslog", "hello", OUTPOST_SEV_INFO, 1, {{"k", "v"}});
  outpost_flow f{};
  e.add_flow(f);
  REQUIRE(p.submit(std::move(e)) == OUTPOST_OK);
  p.stop();
  CHECK(a->names.size() == 350);
  CHECK(b->names.size() == 350);
  CHECK(a->names[7] == "m0/1");  // labels survive the copy
  CHECK(a->events == 1);
  CHECK(a->flows == 1);
  CHECK(a->max_batch <= 100);
  CHECK(a->flushes == 1);
  const auto s = p.stats();
  CHECK(s.accepted == 352);
  CHECK(s.delivered == 352);
  CHECK(s.sinks.at("a").written == 352);
  CHECK(s.dropped.empty());
}

TEST_CASE("a full queue refuses a listener's data and counts it; nothing is accepted after stop") {
  PipelineOptions o;
  o.capacity = 10;
  Pipeline p(o);  // not started: nothing drains
  CHECK_FALSE(p.congested());
  CHECK(p.submit(metrics(8, "x"), Source::listener) == OUTPOST_OK);
  CHECK(p.congested());  // half full: the scheduler holds new polls back
  CHECK(p.submit(metrics(5, "y"), Source::listener) == OUTPOST_E_BUSY);
  CHECK(p.stats().dropped.at("queue_full") == 5);
  CHECK(p.stats().depth == 8);
  p.stop();
  CHECK(p.submit(metrics(1, "z")) == OUTPOST_E_UNAVAILABLE);
  CHECK(p.stats().dropped.at("after_stop") == 1);
}

TEST_CASE("what a running poll fetched is taken past the capacity, up to the hard ceiling") {
  PipelineOptions o;
  o.capacity = 10;
  Pipeline p(o);
  CHECK(p.submit(metrics(8, "x"), Source::poller) == OUTPOST_OK);
  CHECK(p.submit(metrics(8, "y"), Source::poller) == OUTPOST_OK);      // 16: over 10, under 20
  CHECK(p.submit(metrics(5, "z"), Source::poller) == OUTPOST_E_BUSY);  // 21: past the ceiling
  CHECK(p.stats().depth == 16);
  CHECK(p.stats().dropped.at("queue_full") == 5);
  p.stop();
}

TEST_CASE("retry-class failures are retried; others are dropped and counted per sink") {
  PipelineOptions o;
  o.retry_backoff_s = 0.01;
  o.flush_interval_s = 0.02;
  Pipeline p(o);
  auto flaky = std::make_shared<RecordingSink>("flaky"),
       broken = std::make_shared<RecordingSink>("broken");
  flaky->fail_next = 2;  // two refusals, then fine
  broken->fail_next = 1;
  broken->fail_status = OUTPOST_E_CONFIG;  // not retryable
  p.set_sinks({flaky, broken});
  p.start();
  REQUIRE(p.submit(metrics(3, "a")) == OUTPOST_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(p.submit(metrics(2, "b")) == OUTPOST_OK);
  p.stop();
  CHECK(flaky->names.size() == 5);
  CHECK(broken->names.size() == 2);
  const auto s = p.stats();
  CHECK(s.sinks.at("flaky").retries == 2);
  CHECK(s.sinks.at("broken").failures == 1);
  CHECK(s.dropped.at("sink_error:broken") == 3);
}

TEST_CASE("concurrent producers lose nothing below capacity") {
  PipelineOptions o;
  o.capacity = 1000000;
  Pipeline p(o);
  auto sink = std::make_shared<RecordingSink>("s");
  p.set_sinks({sink});
  p.start();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&p, t] {
      for (int i = 0; i < 500; ++i) p.submit(metrics(4, std::to_string(t)));
    });
  for (auto& t : ts) t.join();
  p.stop();
  CHECK(sink->names.size() == 8000);
}

namespace {
class CountingProcessor : public ProcessorPort {
 public:
  CountingProcessor(Pipeline& p, bool consumes) : p_(p), consumes_(consumes) {}
  const std::string& name() const override { return name_; }
  bool consumes_flows() const override { return consumes_; }
  outpost_status process(const outpost_batch& b) override {
    flows_seen += b.flow_count;
    metrics_seen += b.metric_count;
    if (b.flow_count > 0) {  // a summary of what it consumed, as a processor emits it
      Batch out;
      out.add_metric("summary_flows", {}, static_cast<double>(b.flow_count), 1,
                     OUTPOST_METRIC_GAUGE);
      p_.submit(std::move(out), Source::processor);
    }
    return OUTPOST_OK;
  }
  std::size_t flows_seen = 0, metrics_seen = 0;

 private:
  Pipeline& p_;
  bool consumes_;
  std::string name_ = "proc";
};

void run_with_processor(bool raw_flows, std::shared_ptr<RecordingSink> sink,
                        std::shared_ptr<CountingProcessor>& proc) {
  PipelineOptions o;
  o.flush_interval_s = 0.02;
  o.raw_flows = raw_flows;
  Pipeline p(o);
  proc = std::make_shared<CountingProcessor>(p, true);
  p.set_sinks({sink});
  p.set_processors({proc});
  p.start();
  // Two metrics and five flows from a listener, as its emit hands them over.
  const std::string n = "x";
  std::vector<outpost_metric> ms(2, outpost_metric{{n.data(), n.size()}, nullptr, 0, 1, 1, 0, 0});
  std::vector<outpost_flow> flows(5);
  outpost_batch c = outpost_batch_make();
  c.metrics = ms.data();
  c.metric_count = ms.size();
  c.flows = flows.data();
  c.flow_count = flows.size();
  REQUIRE(p.submit(c, Source::listener, 1) == OUTPOST_OK);
  REQUIRE(p.drain(5.0));
  p.stop();
}
}  // namespace

TEST_CASE("processors see sources' data once; consumed flows reach sinks only as summaries") {
  auto sink = std::make_shared<RecordingSink>("s");
  std::shared_ptr<CountingProcessor> proc;
  run_with_processor(false, sink, proc);
  CHECK(proc->flows_seen == 5);
  CHECK(proc->metrics_seen == 2);  // its own summary is not fed back to it
  CHECK(sink->flows == 0);
  CHECK(sink->names.size() == 3);  // 2 metrics + the summary
  CHECK(std::find(sink->names.begin(), sink->names.end(), "summary_flows/") != sink->names.end());

  auto raw = std::make_shared<RecordingSink>("raw");
  run_with_processor(true, raw, proc);
  CHECK(raw->flows == 5);  // engine.pipeline.raw_flows keeps the records too
}

TEST_CASE("a source's flows go through the processors on its own thread, once") {
  for (const bool raw_flows : {false, true}) {
    PipelineOptions o;
    o.flush_interval_s = 0.02;
    o.raw_flows = raw_flows;
    Pipeline p(o);
    auto sink = std::make_shared<RecordingSink>("s");
    auto proc = std::make_shared<CountingProcessor>(p, true);
    p.set_sinks({sink});
    p.set_processors({proc});
    p.start();
    std::vector<outpost_flow> flows(7);
    outpost_batch c = outpost_batch_make();
    c.flows = flows.data();
    c.flow_count = flows.size();
    REQUIRE(p.submit(c, Source::listener, 1) == OUTPOST_OK);
    CHECK(proc->flows_seen == 7);  // before anything was queued, on this thread
    REQUIRE(p.drain(5.0));
    p.stop();
    CHECK(proc->flows_seen == 7);    // not a second time from the queue
    CHECK(proc->metrics_seen == 0);  // its own summary is not fed back to it
    CHECK(sink->flows == (raw_flows ? 7u : 0u));
    CHECK(std::find(sink->names.begin(), sink->names.end(), "summary_flows/") != sink->names.end());
  }
}

TEST_CASE("a batch whose element sizes are below ABI 1.0's is refused and counted, not read") {
  Pipeline p(PipelineOptions{});
  auto sink = std::make_shared<RecordingSink>("s");
  p.set_sinks({sink});
  p.start();
  std::vector<char> tiny(64);  // 4 "metrics" of 16 bytes: reading 56-byte ones would overrun
  outpost_batch c = outpost_batch_make();
  c.metrics = reinterpret_cast<const outpost_metric*>(tiny.data());
  c.metric_size = 16;
  c.metric_count = 4;
  CHECK(p.submit(c, Source::poller, 1) == OUTPOST_E_INVALID_ARGUMENT);
  outpost_batch old = outpost_batch_make();
  old.struct_size = 40;  // not even ABI 1.0's batch
  CHECK(p.submit(old, Source::poller, 1) == OUTPOST_E_INVALID_ARGUMENT);
  const outpost_batch empty = outpost_batch_make();
  CHECK(p.submit(empty, Source::poller, 1) == OUTPOST_OK);
  p.stop();
  CHECK(p.stats().dropped.at("invalid_batch") == 4);
  CHECK(sink->names.empty());
}
