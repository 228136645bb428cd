// The device's copy bandwidth, measured through a backend's own ops: the ceiling memory-bound
// figures (decode steps) are reported against, measured in the same process as they are.
#pragma once
#include "backend/backend.h"

namespace dsinfer {

// Bytes per second a device-to-device copy moves, read + written (as memcpy benchmarks count
// them): several copies of a buffer of up to 1 GiB, far past any cache, after a warm-up copy.
double measure_copy_bandwidth(Backend& backend);

}  // namespace dsinfer
