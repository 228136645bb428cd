// ApiServer: the HTTP front of dsinfer (cpp-httplib). Routes the OpenAI endpoints, /health,
// /metrics; checks the API key on /v1 and the body size; turns every error,
// even one httplib raises itself, into an OpenAI-style error object; drains on shutdown.
#pragma once
#include <httplib.h>
#include <sys/socket.h>

#include <thread>

#include "server/server_context.h"

namespace dsinfer {

// cpp-httplib as Debian builds it listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG is
// compiled into libcpp-httplib.so): a burst of clients overflows that queue and sees its
// connections reset. Linux resizes the queue when listen() is called again on the socket.
class HttpListener : public httplib::Server {
 public:
  void set_backlog(int connections) { ::listen(svr_sock_, connections); }
};

class ApiServer {
 public:
  explicit ApiServer(ServerContext& ctx);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds the host and port (port 0: any free one) and serves on a thread of its own. Until the
  // context turns Ready, /health answers 503 and completions are refused with 503.
  void start();
  int port() const { return port_; }
  // Refuses new completions (503), lets those in progress finish within the drain timeout,
  // cancels what is left, then stops listening.
  void drain_and_stop();

 private:
  void add_routes();
  void add_error_handlers();
  httplib::Server::Handler authenticated(httplib::Server::Handler handler);

  ServerContext& ctx_;
  HttpListener http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace dsinfer
