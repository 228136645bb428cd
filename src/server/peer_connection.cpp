#include "server/peer_connection.h"

#include <fstream>
#include <sstream>

namespace dsinfer {
namespace {

constexpr int kCloseWait = 0x08;
constexpr auto kCheckInterval = std::chrono::seconds(1);

// The port of an "ADDRESS:PORT" field, the port in hex.
int port_of(const std::string& field) {
  const size_t colon = field.rfind(':');
  return colon == std::string::npos ? -1 : static_cast<int>(std::stoul(field.substr(colon + 1), nullptr, 16));
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int tcp_state(const std::string& table, int local_port, int remote_port) {
  std::istringstream lines(table);
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state;
    if (!(f >> slot >> local >> remote >> state)) continue;
    try {
      if (port_of(local) == local_port && port_of(remote) == remote_port) return static_cast<int>(std::stoul(state, nullptr, 16));
    } catch (const std::exception&) {  // a line of another format: not ours
    }
  }
  return -1;
}

PeerConnection::PeerConnection(const httplib::Request& req) : local_port_(req.local_port), remote_port_(req.remote_port) {}

bool PeerConnection::closed() {
  const auto now = std::chrono::steady_clock::now();
  if (closed_ || now < next_check_ || local_port_ <= 0 || remote_port_ <= 0) return closed_;
  next_check_ = now + kCheckInterval;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    const int state = tcp_state(read_file(table), local_port_, remote_port_);
    if (state >= 0) return closed_ = state == kCloseWait;
  }
  return false;  // not found (no /proc): cannot tell
}

}  // namespace dsinfer
