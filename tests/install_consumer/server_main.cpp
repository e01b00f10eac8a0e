// Uses the installed contrail_server: with a model, serves it on a free port and asks GET /health
// over a plain socket; without one (argc < 2) it only proves that it links.
#include <arpa/inet.h>
#include <contrail/engine/engine.h>
#include <contrail/model/model_file.h>
#include <contrail/server/server.h>
#include <contrail/tokenizer/tokenizer.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

// The response to "GET path" on 127.0.0.1:port (until the server closes the connection).
static std::string http_get(int port, const char* path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = std::string("GET ") + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) response.append(buf, static_cast<size_t>(n));
    }
  }
  if (fd >= 0) ::close(fd);
  return response;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("server_consumer: linked (no model given)\n");
    return 0;
  }
  auto model = std::make_shared<const contrail::ModelFile>(contrail::load_model_file(argv[1]));
  const contrail::Tokenizer tok(model->vocab);
  contrail::engine::EngineConfig ec;
  ec.kv_cache_bytes = size_t{8} << 20;
  ec.n_threads = 1;
  auto engine = contrail::engine::Engine::create(model, tok, ec);
  contrail::server::ServerConfig sc;
  sc.port = 0;  // any free port
  sc.model_name = "consumer";
  contrail::server::Server server(*engine, nullptr, sc);
  const int port = server.bind();
  std::thread serving([&] { server.serve(); });
  const std::string health = http_get(port, "/health");
  server.shutdown();
  serving.join();
  if (health.rfind("HTTP/1.1 200", 0) != 0) {
    std::fprintf(stderr, "server_consumer: GET /health answered:\n%s\n", health.c_str());
    return 1;
  }
  std::printf("server_consumer: GET /health on port %d: 200\n", port);
  return 0;
}
