#pragma once
// Round-to-nearest: every group's scale/zero from its own min/max, every weight rounded independently.
// The baseline GPTQ must beat.
#include <cstdint>

#include "lib/quant/grid.h"

namespace llmopt::quant {

// W is [rows, cols] row-major fp32 (a linear's [out, in]); g_idx[c] = c / G.
QuantizedMatrix rtn_quantize(const float* W, int64_t rows, int64_t cols, const QuantGrid& grid);

}  // namespace llmopt::quant
