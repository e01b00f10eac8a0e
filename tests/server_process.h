// Starts the real `contrail serve` binary on a loopback port for end-to-end tests and stops it.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace contrail::test {

class ServerProcess {
 public:
  // Runs `contrail serve --host 127.0.0.1 --port 0 -t 2 ARGS...` with stderr to a log file and
  // waits (up to 60 s) until it prints its address. Throws std::runtime_error with the log on
  // failure.
  explicit ServerProcess(const std::vector<std::string>& args);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;  // stderr so far
  // Sends `sig` and waits (up to timeout_s) for the exit; returns the exit status (or 128 + signal,
  // or -1 on timeout).
  int stop(int sig, double timeout_s = 60);
  // Resident memory of the server process (VmRSS), bytes.
  long rss_bytes() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
  bool exited_ = false;
};

}  // namespace contrail::test
