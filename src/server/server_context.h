// What the HTTP handlers share: options, the served model (once loaded), metrics, the response
// cache, the requests in progress, and the server's lifecycle state.
#pragma once
#include <atomic>
#include <memory>

#include "server/active_requests.h"
#include "server/metrics.h"
#include "server/response_cache.h"
#include "server/served_model.h"
#include "server/server_options.h"

namespace dsinfer {

enum class ServerState { Loading, Ready, Draining };

struct ServerContext {
  explicit ServerContext(ServerOptions o) : options(std::move(o)) {}

  const ServerOptions options;
  std::atomic<ServerState> state{ServerState::Loading};
  // Set once, before state turns Ready; read only by handlers that saw Ready.
  std::unique_ptr<ServedModel> model;
  std::unique_ptr<ResponseCache> cache;  // null: no response cache
  Metrics metrics;
  ActiveRequests active;
};

}  // namespace dsinfer
