#include "server/http_server.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "server/auth.h"
#include "server/completion_handler.h"
#include "server/http_response.h"
#include "server/tokenize_handler.h"

namespace dsinfer {
namespace {

// httplib serves each connection on a pool thread for its whole life (a stream holds one until
// its end), so the pool must cover every running and waiting request plus health probes, or a
// full pool would delay the 429 it is meant to return.
size_t pool_threads(const ServerOptions& o) {
  return std::clamp<size_t>(size_t(o.max_running) + size_t(o.max_waiting) + 16, 32, 2048);
}

// How long cancelled requests get to write their last bytes after the drain timeout.
constexpr auto kCancelGrace = std::chrono::seconds(5);

const char* state_name(ServerState s) {
  switch (s) {
    case ServerState::Loading: return "loading";
    case ServerState::Ready: return "ready";
    case ServerState::Draining: return "draining";
  }
  return "unknown";
}

// The error object for a status httplib set on its own (unknown path, body over the limit,
// unparsable request line).
ApiError error_for_status(int status, const httplib::Request& req, size_t max_body) {
  switch (status) {
    case 404: return ApiError(404, "invalid_request_error", "no route " + req.method + " " + req.path, "", "not_found");
    case 413:
      return ApiError(413, "invalid_request_error",
                      "request body is larger than the limit of " + std::to_string(max_body) + " bytes", "", "request_too_large");
    case 400: return ApiError(400, "invalid_request_error", "malformed HTTP request", "", "bad_request");
    default:
      return ApiError(status, status >= 500 ? "server_error" : "invalid_request_error", "HTTP error " + std::to_string(status));
  }
}

nlohmann::json model_card(const ServedModel& m) {
  return {{"id", m.name},
          {"object", "model"},
          {"created", m.created},
          {"owned_by", "dsinfer"},
          {"root", m.loaded.dir.path},
          {"max_model_len", m.engine->max_model_len()}};
}

}  // namespace

ApiServer::ApiServer(ServerContext& ctx) : ctx_(ctx) {
  size_t threads = pool_threads(ctx.options);
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_payload_max_length(ctx.options.max_body_bytes);
  http_.set_tcp_nodelay(true);  // SSE chunks are small; do not let Nagle hold them back
  // httplib closes a keep-alive connection after 5 requests; a client's pool reuses its
  // connections for thousands (an idle one still gives its thread back after 5 s).
  http_.set_keep_alive_max_count(10000);
  // httplib's default also sets SO_REUSEPORT, which lets a second server bind a port in use and
  // take part of its traffic; a restart only needs SO_REUSEADDR.
  http_.set_socket_options([](socket_t sock) {
    int on = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  });
  add_error_handlers();
  add_routes();
}

ApiServer::~ApiServer() {
  if (thread_.joinable()) {
    http_.stop();
    thread_.join();
  }
}

void ApiServer::add_error_handlers() {
  // Called for every response with status >= 400; fills in only those httplib left empty.
  http_.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, error_for_status(res.status, req, ctx_.options.max_body_bytes));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log_warn("handler failed: ", what);
    send_error(res, ApiError(500, "server_error", "internal error: " + what));
  });
}

// A /v1 handler behind the API key. The check runs in the handler, after httplib has read the
// body, so a refused request leaves the connection at a clean request boundary.
httplib::Server::Handler ApiServer::authenticated(httplib::Server::Handler handler) {
  return [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(ctx_.options.api_key, req.get_header_value("Authorization"))) {
      ctx_.metrics.count_request(Outcome::Unauthorized);
      return send_error(res, ApiError(401, "authentication_error",
                                      "invalid or missing API key (send Authorization: Bearer KEY)", "", "invalid_api_key"));
    }
    handler(req, res);
  };
}

void ApiServer::add_routes() {
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    ServerState s = ctx_.state.load();
    // A model that can run no more steps (a tensor-parallel group after a rank failed) is down.
    if (s == ServerState::Ready)
      if (const std::string failure = ctx_.model->loaded.model->failure(); !failure.empty())
        return send_json(res, 503, {{"status", "failed"}, {"error", failure}});
    send_json(res, s == ServerState::Ready ? 200 : 503, {{"status", state_name(s)}});
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    EngineStats stats = ctx_.state.load() != ServerState::Loading ? ctx_.model->engine->stats() : EngineStats{};
    res.set_content(ctx_.metrics.render(stats), "text/plain; version=0.0.4; charset=utf-8");
  });
  http_.Get("/v1/models", authenticated([this](const httplib::Request&, httplib::Response& res) {
    if (ctx_.state.load() == ServerState::Loading)
      return send_error(res, ApiError(503, "service_unavailable", "the model is still loading"));
    send_json(res, 200, {{"object", "list"}, {"data", nlohmann::json::array({model_card(*ctx_.model)})}});
  }));
  http_.Get(R"(/v1/models/(.+))", authenticated([this](const httplib::Request& req, httplib::Response& res) {
    if (ctx_.state.load() == ServerState::Loading)
      return send_error(res, ApiError(503, "service_unavailable", "the model is still loading"));
    if (req.matches[1] != ctx_.model->name)
      return send_error(res, ApiError(404, "invalid_request_error", "the model '" + req.matches[1].str() + "' does not exist",
                                      "model", "model_not_found"));
    send_json(res, 200, model_card(*ctx_.model));
  }));
  http_.Post("/v1/chat/completions", authenticated([this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(ctx_, Endpoint::Chat, req, res);
  }));
  http_.Post("/v1/completions", authenticated([this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(ctx_, Endpoint::Completion, req, res);
  }));
  http_.Post("/tokenize", authenticated([this](const httplib::Request& req, httplib::Response& res) {
    handle_tokenize(ctx_, req, res);
  }));
  http_.Post("/detokenize", authenticated([this](const httplib::Request& req, httplib::Response& res) {
    handle_detokenize(ctx_, req, res);
  }));
  // A known route asked with the wrong method is 405 naming the right one, not 404.
  for (const char* path : {"/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"})
    http_.Get(path, [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", "POST");
      send_error(res, ApiError(405, "invalid_request_error", req.path + " takes POST", "", "method_not_allowed"));
    });
  for (const char* path : {"/v1/models", "/health", "/metrics"})
    http_.Post(path, [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", "GET");
      send_error(res, ApiError(405, "invalid_request_error", req.path + " takes GET", "", "method_not_allowed"));
    });
}

void ApiServer::start() {
  const ServerOptions& o = ctx_.options;
  port_ = o.port == 0 ? http_.bind_to_any_port(o.host) : (http_.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port_ < 0) fail("cannot listen on ", o.host, ":", o.port);
  http_.set_backlog(static_cast<int>(pool_threads(o)));
  thread_ = std::thread([this] { http_.listen_after_bind(); });
  log_info("listening on http://", o.host, ":", port_);
}

void ApiServer::drain_and_stop() {
  ctx_.state = ServerState::Draining;
  using Clock = std::chrono::steady_clock;
  auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ctx_.options.drain_timeout_s));
  log_info("draining: waiting up to ", ctx_.options.drain_timeout_s, " s for requests in progress");
  if (!ctx_.active.wait_empty(Clock::now() + timeout)) {
    log_warn("drain timeout: cancelling the requests still running");
    ctx_.active.cancel_all();
    ctx_.active.wait_empty(Clock::now() + kCancelGrace);
  }
  http_.stop();
  if (thread_.joinable()) thread_.join();
  log_info("stopped");
}

}  // namespace dsinfer
