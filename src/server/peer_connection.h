// PeerConnection: whether a request's client has closed its connection. httplib 0.11 hides the
// socket, and a client that leaves is otherwise only noticed when a write to it fails, which a
// non-streaming request, or a streaming one still queued, never makes: it would run to its end
// on the GPU for nobody. So the kernel's TCP table (/proc/net/tcp, tcp6) is read for the
// connection (its two addresses and ports): a peer that closed leaves it in CLOSE_WAIT. One
// snapshot of the tables a second serves every request in flight.
#pragma once
#include <httplib.h>

#include <string>

namespace dsinfer {

class PeerConnection {
 public:
  explicit PeerConnection(const httplib::Request& req);
  // True once the client has closed its side (a client that only half-closes after sending
  // counts as gone); false while open, or where the table cannot be read.
  bool closed();

 private:
  std::string key_;  // the connection as the table writes it: "LOCAL_ADDR:PORT REMOTE_ADDR:PORT"
  bool closed_ = false;
};

// "ADDR:PORT" as /proc/net/tcp{,6} writes an endpoint (the address's bytes as host-order 32-bit
// hex words, the port in hex); empty for an address that does not parse.
std::string proc_net_endpoint(const std::string& address, int port);
// The st field (0x08 is CLOSE_WAIT) of the line of a /proc/net/tcp-format table whose local and
// remote endpoints are `key`, or -1.
int tcp_state(const std::string& table, const std::string& key);

}  // namespace dsinfer
