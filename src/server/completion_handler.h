// The handler of POST /v1/chat/completions and /v1/completions: parse, build the prompt,
// answer from the response cache or run a Generation, and reply with one JSON object or an
// SSE stream. Every failure becomes an OpenAI-style error; nothing a client sends escapes as
// an exception.
#pragma once
#include <httplib.h>

#include "server/openai_request.h"
#include "server/server_context.h"

namespace dsinfer {

void handle_completion(ServerContext& ctx, Endpoint endpoint, const httplib::Request& req, httplib::Response& res);

}  // namespace dsinfer
