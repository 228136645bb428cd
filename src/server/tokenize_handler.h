// POST /tokenize and /detokenize, as vLLM serves them: the token ids a prompt (text, ids or
// chat messages through the template) becomes, with the count and the context length, so a
// client can budget max_tokens; and the text of token ids.
#pragma once
#include <httplib.h>

#include "server/server_context.h"

namespace dsinfer {

void handle_tokenize(ServerContext& ctx, const httplib::Request& req, httplib::Response& res);
void handle_detokenize(ServerContext& ctx, const httplib::Request& req, httplib::Response& res);

}  // namespace dsinfer
