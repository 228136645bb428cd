// The name runtime/text_stream.h includes for IncrementalDetokenizer; the class lives in
// incremental_detokenizer.h. (Drop this header once that include is updated.)
#pragma once
#include "text/incremental_detokenizer.h"
