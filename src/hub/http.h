// HTTP client of the hub layer (libcurl, private to src/hub): small GETs for the API and streamed
// downloads with an optional Range start, redirects followed, Hub error headers mapped to HubError.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "contrail/hub/hub.h"

namespace contrail::hub::detail {

struct HttpResponse {
  int curl_code = 0;              // CURLcode; 0 = the transfer completed
  std::string curl_error;         // libcurl's message when curl_code != 0
  long status = 0;                // HTTP status of the final response (after redirects); 0 if none
  std::map<std::string, std::string> headers;  // of the final response; names lowercased
  std::string body;               // API replies and error bodies (capped); empty for streamed downloads
  std::string url;                // the URL requested (before redirects)

  std::string header(const std::string& lower_name) const;
};

// Receives the body of a 200/206 response. `on_start(status)` is called once before the first
// byte; returning false from either callback aborts the transfer.
struct StreamSink {
  std::function<bool(long status, const HttpResponse& head)> on_start;
  std::function<bool(const char* data, size_t n)> on_data;
};

class HttpClient {
 public:
  // Resolves the endpoint and token defaults of `opts`.
  explicit HttpClient(const HubOptions& opts);

  const std::string& endpoint() const { return endpoint_; }
  bool has_token() const { return !token_.empty(); }
  const HubOptions& options() const { return opts_; }

  // One GET with the body kept in memory (at most 64 MiB), retried with backoff while transient.
  HttpResponse get(const std::string& url) const;
  // One GET streamed into `sink`, sending "Range: bytes=<offset>-" when offset > 0. Not retried:
  // the caller resumes from what it has.
  HttpResponse get_stream(const std::string& url, int64_t offset, const StreamSink& sink) const;

 private:
  HttpResponse perform(const std::string& url, int64_t offset, const StreamSink* sink) const;

  HubOptions opts_;
  std::string endpoint_;
  std::string token_;
};

// Connection errors, timeouts, resets, 408, 429 and 5xx: worth another attempt.
bool is_transient(const HttpResponse& r);
// Sleeps retry_base_delay_s * 2^attempt (capped at 16 s).
void backoff_sleep(const HubOptions& opts, int attempt);
// Throws the HubError for a failed response: network failure or a non-2xx status, using the Hub's
// X-Error-Code header. `what` names the object, e.g. "repository 'a/b'" or "file 'x' of 'a/b'".
[[noreturn]] void throw_http_error(const HttpResponse& r, const std::string& what, bool have_token);

// Percent-encodes `s` for a URL path; '/' is kept when keep_slash.
std::string url_escape(const std::string& s, bool keep_slash);

}  // namespace contrail::hub::detail
