#include "server/request_accounting.h"

#include "core/log.h"

namespace dsinfer {

void record_success(ServerContext& ctx, const Generation& gen, const std::string& cache_request,
                    const CompletionResult& r) {
  ctx.metrics.count_request(Outcome::Success);
  GenerationTimes t = gen.times();
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  if (t.tokens > 0) {
    double tpot = t.tokens > 1 ? seconds(t.last_token - t.first_token) / (t.tokens - 1) : 0.0;
    ctx.metrics.observe_request(seconds(t.first_token - t.arrival), tpot, seconds(t.last_token - t.arrival), t.tokens > 1);
  }
  if (cache_request.empty() || !ctx.cache) return;
  try {
    store_response(*ctx.cache, cache_request, result_to_json(r));
  } catch (const std::exception& e) {
    ctx.metrics.count_cache_error();
    log_warn("response cache: ", e.what());
  }
}

Outcome outcome_for_status(int status) {
  switch (status) {
    case 401: return Outcome::Unauthorized;
    case 408: return Outcome::Timeout;
    case 429: return Outcome::Rejected;
    case 503: return Outcome::Unavailable;
    default: return status >= 500 ? Outcome::Error : Outcome::Invalid;
  }
}

}  // namespace dsinfer
