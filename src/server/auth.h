// API-key authentication: `Authorization: Bearer KEY`, as OpenAI clients send it.
#pragma once
#include <string>

namespace dsinfer {

// True when no key is configured, or the header carries exactly `api_key`. The comparison
// takes the same time wherever the first difference is, so timing does not reveal the key.
bool authorized(const std::string& api_key, const std::string& authorization_header);

}  // namespace dsinfer
