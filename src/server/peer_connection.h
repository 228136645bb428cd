// PeerConnection: whether a request's client has closed its connection. httplib 0.11 hides the
// socket, and a client that leaves is otherwise only noticed when a write to it fails, which a
// non-streaming request, or a streaming one still queued, never makes: it would run to its end
// on the GPU for nobody. So the kernel's TCP table (/proc/net/tcp, tcp6) is read for the
// connection's ports: a peer that closed leaves it in CLOSE_WAIT.
#pragma once
#include <chrono>
#include <httplib.h>
#include <string>

namespace dsinfer {

class PeerConnection {
 public:
  explicit PeerConnection(const httplib::Request& req);
  // True once the client has closed its side; false while open, or where the table cannot be read.
  // Reads the table at most once a second (cheap enough per request in flight).
  bool closed();

 private:
  int local_port_, remote_port_;
  std::chrono::steady_clock::time_point next_check_{};
  bool closed_ = false;
};

// The state of the TCP connection between the two ports in a /proc/net/tcp-format table: its st
// field (0x08 is CLOSE_WAIT), or -1 when no line matches.
int tcp_state(const std::string& table, int local_port, int remote_port);

}  // namespace dsinfer
