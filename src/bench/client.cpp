// Streaming OpenAI-completions client and load generator of the serving benchmark.
#include "bench/client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "contrail/core/error.h"

namespace contrail::bench {
namespace {

using json = nlohmann::json;

std::unique_ptr<httplib::Client> make_client(const Endpoint& ep) {
  auto c = std::make_unique<httplib::Client>(ep.base_url);
  if (!c->is_valid())
    throw InvalidArgument(fmt::format("--base-url '{}' is not a valid http(s)://host[:port] URL", ep.base_url));
  const auto t = std::chrono::duration<double>(ep.timeout_s);
  c->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(std::min(t, std::chrono::duration<double>(30))));
  c->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  c->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  if (!ep.api_key.empty()) c->set_bearer_token_auth(ep.api_key);
  return c;
}

std::string clip(const std::string& s, size_t n = 300) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

}  // namespace

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ServerInfo probe_server(const Endpoint& ep) {
  auto c = make_client(ep);
  auto res = c->Get("/v1/models");
  if (!res)
    throw Error(fmt::format("cannot reach the server at --base-url {}: {}", ep.base_url, httplib::to_string(res.error())));
  ServerInfo info;
  info.reachable = true;
  if (res->status == 200) {
    try {
      const json j = json::parse(res->body);
      if (j.contains("data") && j["data"].is_array() && !j["data"].empty()) {
        const json& m = j["data"][0];
        if (m.contains("id") && m["id"].is_string()) info.model_id = m["id"].get<std::string>();
        if (m.contains("max_model_len") && m["max_model_len"].is_number_integer())
          info.max_model_len = m["max_model_len"].get<int64_t>();
      }
    } catch (const std::exception&) {
    }
  }
  return info;
}

TokenCounter server_token_counter(const Endpoint& ep) {
  auto client = std::shared_ptr<httplib::Client>(make_client(ep));
  auto mu = std::make_shared<std::mutex>();
  return [client, mu, ep](const std::string& text, bool add_special) -> int64_t {
    json body = {{"prompt", text}, {"add_special_tokens", add_special}};
    if (!ep.model.empty()) body["model"] = ep.model;
    std::lock_guard<std::mutex> lock(*mu);
    auto res = client->Post("/tokenize", body.dump(), "application/json");
    if (!res)
      throw Error(fmt::format("POST {}/tokenize failed: {}", ep.base_url, httplib::to_string(res.error())));
    if (res->status != 200)
      throw Error(fmt::format("POST {}/tokenize answered HTTP {}: {} (use -m MODEL to count tokens locally)",
                              ep.base_url, res->status, clip(res->body)));
    try {
      const json j = json::parse(res->body);
      if (j.contains("count") && j["count"].is_number_integer()) return j["count"].get<int64_t>();
      if (j.contains("tokens") && j["tokens"].is_array()) return static_cast<int64_t>(j["tokens"].size());
    } catch (const std::exception&) {
    }
    throw Error(fmt::format("POST {}/tokenize: no \"count\" or \"tokens\" in the answer {}", ep.base_url, clip(res->body)));
  };
}

RequestRecord send_request(const Endpoint& ep, const BenchRequest& rq) {
  RequestRecord r;
  r.prompt_len = rq.prompt_len;
  r.expected_output = rq.output_len;
  json body = {{"prompt", rq.prompt},
               {"max_tokens", rq.output_len},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"temperature", ep.temperature}};
  if (ep.ignore_eos) body["ignore_eos"] = true;
  if (!ep.model.empty()) body["model"] = ep.model;
  if (ep.seed >= 0) body["seed"] = ep.seed;

  r.send_s = now_s();
  std::unique_ptr<httplib::Client> c;
  try {
    c = make_client(ep);
  } catch (const std::exception& e) {
    r.error = e.what();
    return r;
  }
  httplib::Request req;
  req.method = "POST";
  req.path = ep.path;
  req.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  if (!ep.api_key.empty()) req.headers.emplace("Authorization", "Bearer " + ep.api_key);
  req.body = body.dump();

  std::string buf, raw;
  double last = 0;
  bool done = false;
  auto on_line = [&](const std::string& line) {
    if (line.rfind("data:", 0) != 0) return;
    std::string data = line.substr(5);
    if (!data.empty() && data[0] == ' ') data.erase(0, 1);
    if (data == "[DONE]") {
      done = true;
      return;
    }
    const double t = now_s();
    json j;
    try {
      j = json::parse(data);
    } catch (const std::exception&) {
      if (r.error.empty()) r.error = "unparsable stream event: " + clip(data);
      return;
    }
    if (j.contains("error")) {
      if (r.error.empty()) r.error = "server error event: " + clip(j["error"].dump());
      return;
    }
    if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
      const json& c0 = j["choices"][0];
      std::string text;
      if (c0.contains("text") && c0["text"].is_string()) text = c0["text"].get<std::string>();
      else if (c0.contains("delta") && c0["delta"].is_object() && c0["delta"].contains("content") &&
               c0["delta"]["content"].is_string())
        text = c0["delta"]["content"].get<std::string>();
      if (!text.empty()) {
        if (r.chunks == 0) r.ttft_s = t - r.send_s;
        else r.itl_s.push_back(t - last);
        last = t;
        ++r.chunks;
      }
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      const json& u = j["usage"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
        r.output_tokens = u["completion_tokens"].get<int64_t>();
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
        r.usage_prompt_tokens = u["prompt_tokens"].get<int64_t>();
    }
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (raw.size() < 4096) raw.append(data, std::min<size_t>(n, 4096 - raw.size()));
    buf.append(data, n);
    size_t pos;
    while ((pos = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, pos);
      buf.erase(0, pos + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      on_line(line);
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  r.send_s = now_s();
  const bool ok = c->send(req, res, err);
  if (!buf.empty()) on_line(buf);
  r.latency_s = now_s() - r.send_s;
  if (!ok) {
    r.error = fmt::format("{} {}{}: {}", req.method, ep.base_url, ep.path, httplib::to_string(err));
    return r;
  }
  if (res.status != 200) {
    r.error = fmt::format("HTTP {}: {}", res.status, clip(raw));
    return r;
  }
  if (!r.error.empty()) return r;
  if (r.chunks == 0) {
    r.error = "the stream carried no text" + std::string(done ? "" : " (and no [DONE])");
    return r;
  }
  if (r.output_tokens <= 0) r.output_tokens = r.chunks;
  r.success = true;
  return r;
}

std::vector<RequestRecord> run_benchmark(const Endpoint& ep, const std::vector<BenchRequest>& reqs,
                                         const RunOptions& opt, const Progress& progress) {
  if (!(opt.request_rate > 0))
    throw InvalidArgument(fmt::format("--request-rate {} must be > 0 (or inf)", opt.request_rate));
  const int64_t total = static_cast<int64_t>(reqs.size());
  std::vector<RequestRecord> out(reqs.size());
  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0, done = 0, failed = 0;
  std::mt19937_64 rng(opt.seed);
  std::exponential_distribution<double> gap(std::isinf(opt.request_rate) ? 1.0 : opt.request_rate);
  const double t0 = now_s();
  double next = t0;
  std::vector<std::thread> threads;
  threads.reserve(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (i > 0 && !std::isinf(opt.request_rate)) {
      next += gap(rng);
      const double wait = next - now_s();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    threads.emplace_back([&, i] {
      if (opt.max_concurrency > 0) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return in_flight < opt.max_concurrency; });
        ++in_flight;
      }
      RequestRecord r = send_request(ep, reqs[i]);
      r.send_s -= t0;
      std::lock_guard<std::mutex> lock(mu);
      out[i] = std::move(r);
      if (opt.max_concurrency > 0) --in_flight;
      ++done;
      if (!out[i].success) ++failed;
      if (progress) progress(done, failed, total);
      cv.notify_all();
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace contrail::bench
