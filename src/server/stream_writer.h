// Streaming a generation as Server-Sent Events, the OpenAI way: chunks of deltas (each naming
// its choice), a closing chunk with finish_reason for each choice as it ends, a usage chunk when
// stream_options.include_usage asked for it, and "data: [DONE]". A write that fails means the client left: the generation is cancelled and
// its KV blocks freed at once.
#pragma once
#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include "server/generation.h"
#include "server/peer_connection.h"
#include "server/response_format.h"
#include "server/result_builder.h"
#include "server/server_context.h"

namespace dsinfer {

struct StreamJob {
  ResponseMeta meta;
  bool include_usage = false;
  bool want_logprobs = false;
  std::vector<ResultBuilder> builders;  // a choice each
  std::string cache_request;  // non-empty: store the finished result in the response cache
  Clock::time_point deadline;
  PeerConnection peer;  // a client that left while nothing was written cancels the generation
  std::unique_ptr<Generation> generation;
  ActiveRequests::Ticket ticket;  // after generation: released first, so it never points at a dead one
};

// Hands the job to `res` as a chunked text/event-stream body; httplib writes it after the
// handler returns, on the same connection thread.
void start_stream(ServerContext& ctx, StreamJob job, httplib::Response& res);

// A whole finished result (a response cache hit) as one SSE body.
std::string result_as_sse(const ResponseMeta& meta, const CompletionResult& r, bool include_usage, bool want_logprobs);

}  // namespace dsinfer
