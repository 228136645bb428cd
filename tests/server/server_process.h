// Starts the real `dsinfer serve` binary on a fixture model and a free loopback port, waits for
// /health, and talks HTTP to it. Helpers read SSE streams and Prometheus metrics.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../fixture_util.h"

extern char** environ;

namespace dsinfer::testing {

using nlohmann::json;

// A port the kernel just handed out and released: free unless another process races for it.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Runs a program with stdout and stderr sent to `log_path`; returns its pid.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits for `pid` to exit within `timeout`; returns its exit status, or -1 on timeout / signal.
inline int wait_exit(pid_t pid, std::chrono::seconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

class ServerProcess {
 public:
  // Serves fixture `model` (or the model directory at an absolute path) with extra flags; fails
  // the test if /health is not 200 within 60 s.
  explicit ServerProcess(const std::string& model, std::vector<std::string> flags = {}) {
    std::string model_dir = model.rfind('/', 0) == 0 ? model : fixture_dir(model);
    port_ = free_port();
    log_path_ = ::testing::TempDir() + "dsinfer_serve_" + std::to_string(getpid()) + "_" + std::to_string(port_) + ".log";
    std::vector<std::string> argv = {DSINFER_BINARY, "serve", "--model", model_dir, "--port", std::to_string(port_)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    pid_ = spawn(argv, log_path_);
    if (pid_ < 0) {
      ADD_FAILURE() << "cannot start " << DSINFER_BINARY;
      return;
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "server exited during start-up:\n" << log();
        return;
      }
      auto res = client().Get("/health");
      if (res && res->status == 200) {
        ready_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "server not healthy within 60 s:\n" << log();
  }

  // The server's log stays behind only when the test failed.
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    if (!::testing::Test::HasFailure()) std::filesystem::remove(log_path_, ec);
  }

  bool ready() const { return ready_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  httplib::Client client(int read_timeout_s = 120) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(read_timeout_s, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }

  // Sends `sig` and waits for the exit; returns the exit status (-1: killed by a signal / timeout).
  int stop(int sig = SIGTERM, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    kill(pid_, sig);
    int status = wait_exit(pid_, timeout);
    if (status != -1) pid_ = -1;
    return status;
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // POSTs JSON; returns the raw result.
  httplib::Result post(const std::string& path, const json& body, const httplib::Headers& headers = {}) const {
    return client().Post(path.c_str(), headers, body.dump(), "application/json");
  }

  std::string metrics() const {
    auto res = client().Get("/metrics");
    return res ? res->body : "";
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  bool ready_ = false;
  std::string log_path_;
};

// The value of one sample line ("name{labels} value") of a Prometheus exposition; -1 if absent.
inline double metric(const std::string& text, const std::string& sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  return -1;
}

// Polls /metrics until nothing runs, waits or holds a KV block (the engine publishes its
// counters after each step, a moment after the response went out); returns the last exposition.
inline std::string wait_idle(const ServerProcess& s) {
  std::string m;
  for (int i = 0; i < 400; ++i) {
    m = s.metrics();
    if (metric(m, "dsinfer_num_requests_running") == 0 && metric(m, "dsinfer_num_requests_waiting") == 0 &&
        metric(m, "dsinfer_kv_cache_blocks_used") == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return m;
}

// The JSON payloads of an SSE body, in order; "[DONE]" ends it and is returned as the string.
inline std::vector<json> sse_events(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    std::string data = line.substr(6);
    out.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
  }
  return out;
}

// Concatenated content (chat delta.content or completions text) of a stream.
inline std::string streamed_text(const std::vector<json>& events, const char* field = "content") {
  std::string text;
  for (const auto& e : events) {
    if (!e.is_object() || !e.contains("choices") || e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    if (c.contains("delta")) {
      if (c["delta"].contains(field)) text += c["delta"][field].get<std::string>();
    } else if (c.contains("text")) {
      text += c["text"].get<std::string>();
    }
  }
  return text;
}

}  // namespace dsinfer::testing
