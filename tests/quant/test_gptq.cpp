// GPTQ against two independent implementations on the same W and H (scripts/golden/quant_golden.py):
// llm-compressor's quantize_weight (static group params, W[:, :128]) and AutoGPTQ's fasterquant
// (dynamic groups, act-order, static_groups, ragged last group, W [48, 172]).
// Codes must agree on ≥ 99.5% of entries and differ by at most one step elsewhere; our objective
// tr((W−Q)H(W−Q)ᵀ) must be ≤ 1.01× the reference's and below RTN's.
#include <doctest/doctest.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdlib>

#include "golden.h"
#include "lib/core/error.h"
#include "lib/core/threads.h"
#include "lib/quant/gptq.h"
#include "lib/quant/hessian.h"
#include "lib/quant/rtn.h"

using namespace llmopt::quant;

namespace {
struct Inputs {
  int64_t rows, cols;
  std::vector<float> W;
  Eigen::MatrixXf H;
};

Inputs load_inputs() {
  auto idx = golden::index();
  Inputs in{idx["rows"], idx["cols"], {}, {}};
  in.W = golden::load<float>(idx["files"]["W"], size_t(in.rows * in.cols));
  auto Hv = golden::load<float>(idx["files"]["H"], size_t(in.cols * in.cols));
  in.H = Eigen::Map<const Eigen::MatrixXf>(Hv.data(), in.cols, in.cols);
  return in;
}
}  // namespace

TEST_CASE("GPTQ matches llm-compressor and AutoGPTQ") {
  auto idx = golden::index();
  Inputs in = load_inputs();
  int n = 0;
  for (auto& c : idx["cases"]) {
    if (c["reference"] == "numpy-rtn") continue;
    const std::string name = c["name"];
    CAPTURE(name);
    const int64_t cols = c["cols"], rows = in.rows;
    auto W = golden::left_cols(in.W, rows, in.cols, cols);
    Eigen::MatrixXf H = in.H.topLeftCorner(cols, cols);
    auto ref = golden::reference(c, rows);

    GptqOptions opt;
    opt.grid = ref.grid;
    opt.block_size = idx["block_size"];
    opt.damp = idx["damp"];
    opt.act_order = c["act_order"];
    opt.static_groups = c["static_groups"];
    GptqResult res = gptq_quantize(W.data(), rows, cols, H, opt);
    const QuantizedMatrix& q = res.q;

    CHECK(q.g_idx == ref.g_idx);
    REQUIRE(q.scales.size() == ref.scales.size());
    int64_t same = 0, far = 0;
    for (size_t i = 0; i < q.codes.size(); i++) {
      same += q.codes[i] == ref.codes[i];
      far += std::abs(int(q.codes[i]) - int(ref.codes[i])) > 1;
    }
    const double agree = double(same) / double(q.codes.size());
    MESSAGE(name << ": codes agree " << agree * 100 << "%");
    CHECK(agree >= 0.995);
    CHECK(far == 0);
    // group params: identical where computed from the original W, near-identical for dynamic groups
    int64_t zeros_same = 0;
    float scale_rel = 0;
    for (size_t i = 0; i < q.scales.size(); i++) {
      zeros_same += q.zeros[i] == ref.zeros[i];
      scale_rel = std::max(scale_rel, std::fabs(q.scales[i] - ref.scales[i]) / ref.scales[i]);
    }
    CHECK(double(zeros_same) / double(q.zeros.size()) >= 0.99);
    CHECK(scale_rel <= (opt.static_groups || opt.grid.group_size < 0 ? 1e-6f : 1e-3f));
    // dequantized: within one step of the reference everywhere
    auto dq = q.dequantize(), dr = ref.dequantize();
    for (int64_t r = 0; r < rows; r++)
      for (int64_t col = 0; col < cols; col++) {
        const float step = ref.scales[size_t(r * ref.n_groups() + ref.g_idx[col])];
        REQUIRE(std::fabs(dq[r * cols + col] - dr[r * cols + col]) <= step * 1.001f + 1e-7f);
      }

    const double ours = gptq_objective(W.data(), dq.data(), rows, cols, H);
    const double theirs = c["objective"];
    auto rtn = rtn_quantize(W.data(), rows, cols, opt.grid).dequantize();
    const double obj_rtn = gptq_objective(W.data(), rtn.data(), rows, cols, H);
    MESSAGE(name << ": objective ours " << ours << " reference " << theirs << " rtn " << obj_rtn);
    CHECK(std::fabs(theirs - gptq_objective(W.data(), dr.data(), rows, cols, H)) <= 1e-6 * theirs);
    CHECK(ours <= 1.01 * theirs);
    CHECK(ours < obj_rtn);
    double loss = 0;
    for (float l : res.loss) loss += l;
    CHECK(loss > 0);
    n++;
  }
  CHECK(n == 12);
}

TEST_CASE("GPTQ is deterministic across thread counts and block sizes bound the result") {
  Inputs in = load_inputs();
  GptqOptions opt;
  opt.grid = {4, 32, false};
  opt.act_order = true;
  llmopt::set_num_threads(1);
  auto a = gptq_quantize(in.W.data(), in.rows, in.cols, in.H, opt);
  llmopt::set_num_threads(3);
  auto b = gptq_quantize(in.W.data(), in.rows, in.cols, in.H, opt);
  llmopt::set_num_threads(0);
  CHECK(a.q.codes == b.q.codes);
  CHECK(a.q.scales == b.q.scales);
  CHECK(a.loss == b.loss);

  // With block_size == group_size the dynamic params see fully updated weights; still a valid GPTQ.
  opt.block_size = 32;
  auto c = gptq_quantize(in.W.data(), in.rows, in.cols, in.H, opt);
  auto rtn = rtn_quantize(in.W.data(), in.rows, in.cols, opt.grid).dequantize();
  auto dc = c.q.dequantize();
  CHECK(gptq_objective(in.W.data(), dc.data(), in.rows, in.cols, in.H) <
        gptq_objective(in.W.data(), rtn.data(), in.rows, in.cols, in.H));
}

TEST_CASE("GPTQ zeroes dead inputs and rejects bad shapes") {
  Inputs in = load_inputs();
  Eigen::MatrixXf H = in.H;
  H.row(5).setZero();
  H.col(5).setZero();
  GptqOptions opt;
  opt.grid = {4, 32, true};
  auto r = gptq_quantize(in.W.data(), in.rows, in.cols, H, opt);
  auto d = r.q.dequantize();
  for (int64_t row = 0; row < in.rows; row++) CHECK(d[row * in.cols + 5] == 0.0f);

  Eigen::MatrixXf small = Eigen::MatrixXf::Identity(8, 8);
  CHECK_THROWS_AS(gptq_quantize(in.W.data(), in.rows, in.cols, small, opt), llmopt::Error);
}
