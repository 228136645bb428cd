#include "plan/decode_bytes.h"

#include "plan/hardware_catalog.h"
#include "plan/plan_model.h"
#include "plan/roofline.h"

namespace dsinfer::plan {

double decode_step_bytes(const ModelConfig& config, int64_t batch, int64_t context, double kv_value_bytes,
                         const Layout& layout) {
  const PlanModel m = PlanModel::from_config(config, config.architecture);
  const WeightTotals w = WeightTotals::build(m, m.stored);
  // The bytes do not depend on the GPU: any one of the catalog.
  const DecodeEstimate d = estimate_decode(config, w, layout, find_gpu("H100-SXM"), KvDtype::BF16, batch, context);
  return d.step.weight_bytes + d.step.kv_bytes * kv_value_bytes / 2.0;  // the plan counts bf16 values
}

}  // namespace dsinfer::plan
