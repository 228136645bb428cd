#include "server/peer_connection.h"

#include <arpa/inet.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace dsinfer {
namespace {

constexpr int kCloseWait = 0x08;
constexpr auto kRefresh = std::chrono::seconds(1);

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "LOCAL REMOTE" -> st of every line of a table.
void parse_into(const std::string& table, std::unordered_map<std::string, int>& states) {
  std::istringstream lines(table);
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state;
    if (!(f >> slot >> local >> remote >> state)) continue;
    try {
      states[local + " " + remote] = static_cast<int>(std::stoul(state, nullptr, 16));
    } catch (const std::exception&) {  // a line of another format: not a connection
    }
  }
}

// Every connection's state, read at most once a second for all requests together.
int connection_state(const std::string& key) {
  static std::mutex mu;
  static std::chrono::steady_clock::time_point next;
  static std::unordered_map<std::string, int> states;
  std::lock_guard<std::mutex> lock(mu);
  if (const auto now = std::chrono::steady_clock::now(); now >= next) {
    next = now + kRefresh;
    states.clear();
    parse_into(read_file("/proc/net/tcp"), states);
    parse_into(read_file("/proc/net/tcp6"), states);
  }
  auto it = states.find(key);
  return it == states.end() ? -1 : it->second;
}

}  // namespace

std::string proc_net_endpoint(const std::string& address, int port) {
  char out[64];
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    uint32_t word;
    std::memcpy(&word, &v4, 4);
    std::snprintf(out, sizeof out, "%08X:%04X", word, port);
    return out;
  }
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    uint32_t w[4];
    std::memcpy(w, &v6, 16);
    std::snprintf(out, sizeof out, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], port);
    return out;
  }
  return "";
}

int tcp_state(const std::string& table, const std::string& key) {
  std::unordered_map<std::string, int> states;
  parse_into(table, states);
  auto it = states.find(key);
  return it == states.end() ? -1 : it->second;
}

PeerConnection::PeerConnection(const httplib::Request& req) {
  const std::string local = proc_net_endpoint(req.local_addr, req.local_port);
  const std::string remote = proc_net_endpoint(req.remote_addr, req.remote_port);
  if (!local.empty() && !remote.empty()) key_ = local + " " + remote;
}

bool PeerConnection::closed() {
  if (!closed_ && !key_.empty()) closed_ = connection_state(key_) == kCloseWait;
  return closed_;
}

}  // namespace dsinfer
