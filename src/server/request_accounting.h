// What the server records when a completion request ends: its outcome, its latencies, and (for
// a deterministic request) its result in the response cache.
#pragma once
#include <string>

#include "server/completion_result.h"
#include "server/generation.h"
#include "server/server_context.h"

namespace dsinfer {

// A request that generated to its end: counts it, observes TTFT / TPOT / end-to-end latency,
// and stores the result under `cache_request` when that is not empty.
void record_success(ServerContext& ctx, const Generation& gen, const std::string& cache_request,
                    const CompletionResult& r);

// The outcome label of a request refused or failed with an HTTP status.
Outcome outcome_for_status(int status);

}  // namespace dsinfer
