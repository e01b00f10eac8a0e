// libcurl easy-handle transfers for the hub layer. One handle per request: pulls make a handful of
// API calls and one request per file, so connection reuse is not worth shared state.
#include "hub/http.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace contrail::hub::detail {
namespace {

constexpr size_t kMaxApiBody = size_t{64} << 20;  // JSON listings of huge repos stay far below this
constexpr size_t kMaxErrorBody = 4096;            // error pages are only quoted in messages

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse* resp = nullptr;
  const StreamSink* sink = nullptr;  // null: keep the body in resp->body
  CURL* curl = nullptr;
  bool started = false;  // on_start has accepted the response
  std::exception_ptr error;  // thrown by a sink callback; rethrown after curl returns
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp->headers.clear();  // a new response (after a redirect or a 100 Continue)
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  size_t b = colon + 1, e = line.size();
  while (b < e && (line[b] == ' ' || line[b] == '\t')) ++b;
  while (e > b && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' ')) --e;
  t->resp->headers[name] = line.substr(b, e - b);
  return size * n;
}

size_t on_body_impl(Transfer* t, char* data, size_t bytes) {
  if (t->sink) {
    if (!t->started) {
      long status = 0;
      curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
      if (status == 200 || status == 206) {
        t->resp->status = status;
        if (!t->sink->on_start(status, *t->resp)) return 0;
        t->started = true;
      }
    }
    if (t->started) return t->sink->on_data(data, bytes) ? bytes : 0;
    // An error response: keep the start of its body for the message.
    const size_t keep = std::min(bytes, kMaxErrorBody - std::min(kMaxErrorBody, t->resp->body.size()));
    t->resp->body.append(data, keep);
    return bytes;
  }
  if (t->resp->body.size() + bytes > kMaxApiBody) return 0;
  t->resp->body.append(data, bytes);
  return bytes;
}

// Exceptions must not unwind through libcurl: they are parked and rethrown by perform().
size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  try {
    return on_body_impl(t, data, size * n);
  } catch (...) {
    t->error = std::current_exception();
    return 0;
  }
}

std::string trimmed_body(const std::string& body) {
  std::string s = body.substr(0, 300);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(const HubOptions& opts)
    : opts_(opts),
      endpoint_(opts.endpoint.empty() ? default_endpoint() : opts.endpoint),
      token_(opts.token.empty() ? default_token() : opts.token) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  if (endpoint_.rfind("http://", 0) != 0 && endpoint_.rfind("https://", 0) != 0)
    throw InvalidArgument(fmt::format("hub endpoint '{}': expected an http:// or https:// URL", endpoint_));
  global_init();
}

HttpResponse HttpClient::perform(const std::string& url, int64_t offset, const StreamSink* sink) const {
  HttpResponse resp;
  resp.url = url;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw HubError(HubErrorKind::Network, "libcurl: curl_easy_init failed");
  CURL* c = curl.get();
  Transfer t;
  t.resp = &resp;
  t.sink = sink;
  t.curl = c;
  char errbuf[CURL_ERROR_SIZE] = {};

  // The token goes only to the configured endpoint: curl drops a custom Authorization header when
  // a redirect leaves the host (e.g. to a CDN), and URLs outside the endpoint never get it.
  curl_slist* hdrs = nullptr;
  if (!token_.empty() && url.rfind(endpoint_ + "/", 0) == 0)
    hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + token_).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> hdr_guard(hdrs, &curl_slist_free_all);
  const std::string range = offset > 0 ? fmt::format("{}-", offset) : std::string();

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "contrail-hub/0.1");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts_.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts_.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  if (!range.empty()) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

  const CURLcode rc = curl_easy_perform(c);
  if (t.error) std::rethrow_exception(t.error);
  resp.curl_code = static_cast<int>(rc);
  if (rc != CURLE_OK) resp.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  resp.status = status;
  return resp;
}

HttpResponse HttpClient::get(const std::string& url) const {
  for (int attempt = 0;; ++attempt) {
    HttpResponse r = perform(url, 0, nullptr);
    if (!is_transient(r) || attempt >= opts_.max_retries) return r;
    backoff_sleep(opts_, attempt);
  }
}

HttpResponse HttpClient::get_stream(const std::string& url, int64_t offset, const StreamSink& sink) const {
  return perform(url, offset, &sink);
}

bool is_transient(const HttpResponse& r) {
  switch (static_cast<CURLcode>(r.curl_code)) {
    case CURLE_OK:
      return r.status == 408 || r.status == 429 || (r.status >= 500 && r.status <= 599);
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

void backoff_sleep(const HubOptions& opts, int attempt) {
  const double s = std::min(16.0, opts.retry_base_delay_s * static_cast<double>(1 << std::min(attempt, 10)));
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

void throw_http_error(const HttpResponse& r, const std::string& what, bool have_token) {
  if (r.curl_code != 0)
    throw HubError(HubErrorKind::Network, fmt::format("{}: request to {} failed: {}", what, r.url, r.curl_error));
  const std::string code = r.header("x-error-code");
  const std::string server_msg = r.header("x-error-message");
  const std::string detail = server_msg.empty() ? "" : fmt::format(" (server: {})", server_msg);
  const std::string auth_hint = have_token ? "the token was sent but does not grant access to it"
                                           : "pass a token with --token or HF_TOKEN";
  if (code == "GatedRepo")
    throw HubError(HubErrorKind::Unauthorized,
                   fmt::format("{} is gated (HTTP {} from {}){}: accept its conditions on the Hub and {}", what,
                               r.status, r.url, detail, have_token ? "check the token's access" : auth_hint));
  if (code == "RepoNotFound" || (r.status == 404 && code.empty() && what.rfind("repository", 0) == 0))
    throw HubError(HubErrorKind::RepoNotFound,
                   fmt::format("{} not found (HTTP {} from {}){}: check the name; if it is private, {}", what,
                               r.status, r.url, detail, auth_hint));
  if (code == "RevisionNotFound")
    throw HubError(HubErrorKind::RevisionNotFound,
                   fmt::format("{}: revision not found (HTTP {} from {}){}", what, r.status, r.url, detail));
  if (code == "EntryNotFound" || r.status == 404)
    throw HubError(HubErrorKind::EntryNotFound,
                   fmt::format("{} not found on the server (HTTP {} from {}){}", what, r.status, r.url, detail));
  if (r.status == 401 || r.status == 403)
    throw HubError(HubErrorKind::Unauthorized, fmt::format("{}: access denied (HTTP {} from {}){}: {}", what,
                                                           r.status, r.url, detail, auth_hint));
  throw HubError(HubErrorKind::Http, fmt::format("{}: HTTP {} from {}{}{}", what, r.status, r.url, detail,
                                                 r.body.empty() ? "" : ": " + trimmed_body(r.body)));
}

std::string url_escape(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
      out += static_cast<char>(ch);
    } else {
      out += fmt::format("%{:02X}", ch);
    }
  }
  return out;
}

}  // namespace contrail::hub::detail
