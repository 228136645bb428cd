#include "server/completion_handler.h"

#include "core/error.h"
#include "core/log.h"
#include "server/engine_request.h"
#include "server/http_response.h"
#include "server/request_accounting.h"
#include "server/stream_writer.h"
#include "text/utf8.h"

namespace dsinfer {
namespace {

// A request parsed and turned into engine work, not yet started.
struct Prepared {
  ApiRequest api;
  GenerationRequest gen;
  ResponseMeta meta;
  std::string cache_request;  // non-empty: deterministic, and a response cache is configured
  bool starts_in_reasoning = false;
  bool tool_calls = false;  // split the answer's tool calls (a chat request with tools, tool_choice auto)
};

void require_ready(const ServerContext& ctx) {
  switch (ctx.state.load()) {
    case ServerState::Loading: throw ApiError(503, "service_unavailable", "the model is still loading");
    case ServerState::Draining: throw ApiError(503, "service_unavailable", "the server is shutting down");
    case ServerState::Ready: return;
  }
}

Prepared prepare(ServerContext& ctx, Endpoint endpoint, const std::string& body) {
  const ServedModel& m = *ctx.model;
  Prepared p;
  p.api = parse_api_request(endpoint, body);
  check_model_name(p.api.model, m);
  if (p.api.n > ctx.options.max_waiting)  // each choice waits in the queue: it would never fit
    throw ApiError(400, "invalid_request_error",
                   "n = " + std::to_string(p.api.n) + " choices exceed the server's queue of " +
                       std::to_string(ctx.options.max_waiting) + " (--max-waiting)",
                   "n", "invalid_value");
  p.gen = build_generation_request(p.api, m);
  bool reasoning = m.reasoning && endpoint == Endpoint::Chat;
  p.meta = make_response_meta(endpoint, m.name, reasoning, p.api.return_token_ids, m.tokenizer());
  p.meta.prompt_logprobs = p.api.prompt_logprobs >= 0;
  if (p.api.echo) {
    p.meta.echo = true;
    p.meta.echo_logprobs = p.api.top_logprobs >= 0;
    const Tokenizer* tok = m.tokenizer();
    p.meta.echo_text = p.api.prompt_text ? *p.api.prompt_text : tok ? tok->decode(p.api.prompt_ids, true) : "";
    p.meta.echo_chars = utf8_decode(p.meta.echo_text).size();
  }
  p.starts_in_reasoning = reasoning && m.chat_template && m.chat_template->opens_think_block();
  p.tool_calls = m.tool_calls && endpoint == Endpoint::Chat && !p.api.tools.is_null() && p.api.parse_tool_calls;
  if (ctx.cache && deterministic(p.gen.sampling) && p.api.n == 1) {
    nlohmann::json key = output_defining_fields(p.api);
    key["model"] = m.name;
    p.cache_request = key.dump();
  }
  return p;
}

std::optional<CompletionResult> cached_result(ServerContext& ctx, const Prepared& p) {
  try {
    std::optional<nlohmann::json> hit = lookup_response(*ctx.cache, p.cache_request);
    ctx.metrics.count_cache_lookup(hit.has_value());
    if (hit) return result_from_json(*hit);
  } catch (const std::exception& e) {
    // A cache that fails only costs the generation it would have saved.
    ctx.metrics.count_cache_error();
    log_warn("response cache: ", e.what());
  }
  return std::nullopt;
}

void reply_cached(const Prepared& p, const CompletionResult& r, httplib::Response& res) {
  if (p.api.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(result_as_sse(p.meta, r, p.api.include_usage, p.api.top_logprobs >= 0), "text/event-stream");
  } else {
    send_json(res, 200, response_json(p.meta, {r}));
  }
}

std::unique_ptr<Generation> submit(ServerContext& ctx, const Prepared& p, Clock::time_point arrival) {
  GenerationSpec spec;
  spec.request = p.gen;
  spec.n = p.api.n;
  spec.tokenizer = ctx.model->tokenizer();
  spec.stop = p.api.stop;
  spec.skip_special_tokens = p.api.skip_special_tokens;
  spec.arrival = arrival;
  try {
    return std::make_unique<Generation>(*ctx.model->engine, std::move(spec));
  } catch (const EngineFull& e) {
    throw ApiError(429, "rate_limit_error", std::string("the server is at capacity, retry later: ") + e.what(), "",
                   "rate_limit_exceeded");
  } catch (const EngineStopping& e) {
    throw ApiError(503, "service_unavailable", e.what());
  } catch (const Error& e) {  // what the request checks above let through (the engine checks again)
    throw ApiError(400, "invalid_request_error", e.what(), "", "invalid_value");
  }
}

// The client of a non-streaming request closed its connection: nothing is left to answer.
struct ClientGone {};

// A result builder per choice of the request.
std::vector<ResultBuilder> builders(const Prepared& p) {
  return std::vector<ResultBuilder>(p.api.n,
                                    ResultBuilder(p.gen.prompt, p.meta.reasoning, p.starts_in_reasoning, p.tool_calls));
}

// Waits for every choice of the generation; a timeout or a cancellation (drain) becomes the
// error to send, a client that left cancels it.
std::vector<CompletionResult> run_to_end(Generation& gen, const Prepared& p, Clock::time_point deadline,
                                         PeerConnection& peer) {
  std::vector<ResultBuilder> choices = builders(p);
  int open = gen.choices();
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (peer.closed()) {
      gen.cancel();
      throw ClientGone{};
    }
    if (now >= deadline) {
      gen.cancel();
      throw ApiError(408, "timeout_error", "request timed out", "", "request_timeout");
    }
    std::optional<GenerationUpdate> u = gen.take(std::min(deadline, now + std::chrono::seconds(1)));
    if (!u) continue;
    choices.at(u->index).add(*u);
    if (!u->finished) continue;
    if (u->reason == FinishReason::Cancelled)
      throw ApiError(503, "service_unavailable", "the request was cancelled: the server is shutting down");
    if (u->reason == FinishReason::Error) throw ApiError(500, "server_error", "generation failed: " + u->error);
    if (--open > 0) continue;
    std::vector<CompletionResult> out;
    for (const ResultBuilder& b : choices) out.push_back(b.result());
    return out;
  }
}

Clock::time_point deadline_of(const ServerContext& ctx, Clock::time_point arrival) {
  return arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ctx.options.request_timeout_s));
}

}  // namespace

void handle_completion(ServerContext& ctx, Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
  const Clock::time_point arrival = Clock::now();
  std::unique_ptr<Generation> gen;  // declared before the ticket, which forgets it first
  ActiveRequests::Ticket ticket = ctx.active.enter();
  try {
    require_ready(ctx);
    Prepared p = prepare(ctx, endpoint, req.body);
    if (!p.cache_request.empty()) {
      if (std::optional<CompletionResult> hit = cached_result(ctx, p)) {
        ctx.metrics.count_request(Outcome::Cached);
        reply_cached(p, *hit, res);
        return;
      }
    }
    gen = submit(ctx, p, arrival);
    ticket.watch(gen.get());
    if (p.api.stream) {
      StreamJob job{p.meta,         p.api.include_usage,     p.api.top_logprobs >= 0,
                    builders(p),    p.cache_request,         deadline_of(ctx, arrival),
                    PeerConnection(req), std::move(gen), std::move(ticket)};
      start_stream(ctx, std::move(job), res);
      return;
    }
    PeerConnection peer(req);
    std::vector<CompletionResult> choices = run_to_end(*gen, p, deadline_of(ctx, arrival), peer);
    record_success(ctx, *gen, p.cache_request, choices.front());
    send_json(res, 200, response_json(p.meta, choices));
  } catch (const ApiError& e) {
    ctx.metrics.count_request(outcome_for_status(e.status));
    send_error(res, e);
  } catch (const ClientGone&) {
    ctx.metrics.count_request(Outcome::Cancelled);
    // Nobody should read this; were the client still there after all, it learns why.
    send_error(res, ApiError(499, "invalid_request_error", "the client closed the connection; the request was cancelled",
                             "", "client_closed_request"));
  } catch (const std::exception& e) {
    log_warn("request failed: ", e.what());
    ctx.metrics.count_request(Outcome::Error);
    send_error(res, ApiError(500, "server_error", std::string("internal error: ") + e.what()));
  }
}

}  // namespace dsinfer
