// Scoring a whole token sequence in one forward pass (teacher forcing), outside the engine.
#pragma once
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace dsinfer {

// Logits [ids.size(), vocab] of every position, float32 on the host.
std::vector<float> score_tokens(Model& model, Backend& backend, const std::vector<int>& ids);

}  // namespace dsinfer
