#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace contrail::server {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard lk(mu_);
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lk(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cum, name, sum_, name, count_);
}

Metrics::Metrics()
    : ttft({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}),
      tpot({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}),
      e2e({0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0}) {}

void Metrics::count_finished(const std::string& reason) {
  std::lock_guard lk(mu_);
  ++finished_[reason];
}

std::string Metrics::render(const engine::EngineStats& st, const std::string& model) const {
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{}{{model_name=\"{}\"}} {}\n", name, help, name, name, model, v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{}{{model_name=\"{}\"}} {}\n", name, help, name, name, model, v);
  };
  gauge("contrail_num_requests_running", "Sequences holding KV blocks in the running batch.", static_cast<double>(st.running));
  gauge("contrail_num_requests_waiting", "Requests waiting to be scheduled.", static_cast<double>(st.waiting));
  gauge("contrail_kv_blocks_total", "KV cache blocks in the pool.", static_cast<double>(st.blocks_total));
  gauge("contrail_kv_blocks_used", "KV cache blocks referenced by sequences.", static_cast<double>(st.blocks_used));
  gauge("contrail_kv_blocks_cached", "Unreferenced KV blocks kept for prefix-cache hits.", static_cast<double>(st.blocks_cached));
  gauge("contrail_kv_blocks_free", "KV cache blocks holding nothing.", static_cast<double>(st.blocks_free));
  gauge("contrail_kv_cache_usage_perc", "Fraction of KV blocks in use (0..1).",
        st.blocks_total > 0 ? static_cast<double>(st.blocks_used) / static_cast<double>(st.blocks_total) : 0.0);
  gauge("contrail_prefix_cache_hit_rate", "Prompt tokens served from the prefix cache / prompt tokens admitted.",
        st.prefix_query_tokens > 0 ? static_cast<double>(st.prefix_hit_tokens) / static_cast<double>(st.prefix_query_tokens) : 0.0);
  counter("contrail_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", static_cast<double>(st.prefix_query_tokens));
  counter("contrail_prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", static_cast<double>(st.prefix_hit_tokens));
  counter("contrail_prompt_tokens_total", "Prompt tokens of admitted requests.", static_cast<double>(st.prompt_tokens));
  counter("contrail_generation_tokens_total", "Generated tokens.", static_cast<double>(st.generation_tokens));
  counter("contrail_num_preemptions_total", "Sequences preempted for lack of KV blocks.", static_cast<double>(st.preemptions));
  counter("contrail_engine_steps_total", "Forward passes of the engine.", static_cast<double>(st.steps));
  counter("contrail_requests_rejected_total", "Requests refused with 429 (queue full).", static_cast<double>(rejected_429.load()));
  counter("contrail_bad_requests_total", "Requests answered with a 4xx error other than 429.", static_cast<double>(bad_requests.load()));
  counter("contrail_server_errors_total", "Requests answered with a 500 (a failed handler).", static_cast<double>(server_errors.load()));
  {
    std::lock_guard lk(mu_);
    out += "# HELP contrail_request_success_total Finished requests by finish reason.\n"
           "# TYPE contrail_request_success_total counter\n";
    for (const char* r : {"stop", "length", "abort", "error", "disconnect"}) {
      const auto it = finished_.find(r);
      out += fmt::format("contrail_request_success_total{{model_name=\"{}\",finished_reason=\"{}\"}} {}\n", model, r,
                         it == finished_.end() ? 0 : it->second);
    }
  }
  ttft.render(out, "contrail_time_to_first_token_seconds", "Time from request arrival to its first token.");
  tpot.render(out, "contrail_time_per_output_token_seconds", "Mean time between output tokens of a request.");
  e2e.render(out, "contrail_e2e_request_latency_seconds", "Time from request arrival to its last token.");
  return out;
}

}  // namespace contrail::server
