#include "lib/model/linear.h"

#include "lib/core/error.h"
#include "lib/model/linear_quant.h"

namespace llmopt::model {

Linear Linear::view(std::string name, const st::TensorView& weight, const st::TensorView* bias) {
  const auto& sh = weight.shape();
  if (sh.size() != 2) fail("{}.weight: expected a 2-D weight, got {} dimensions", name, sh.size());
  if (weight.dtype() != DType::F32 && weight.dtype() != DType::BF16 && weight.dtype() != DType::F16)
    fail("{}.weight: dtype {} is not supported for a dense linear (F32, BF16, F16)", name, dtype_name(weight.dtype()));
  Linear l;
  l.name = std::move(name);
  l.out = sh[0];
  l.in = sh[1];
  l.dtype = weight.dtype();
  l.data = weight.data;
  if (bias) {
    if (bias->numel() != l.out) fail("{}.bias: has {} elements, expected {}", l.name, bias->numel(), l.out);
    l.bias = bias->to_f32();
  }
  return l;
}

Linear Linear::owned_f32(std::string name, std::vector<float> weight, int64_t out, int64_t in,
                         std::vector<float> bias) {
  if (int64_t(weight.size()) != out * in) fail("{}: weight has {} elements, expected {}x{}", name, weight.size(), out, in);
  auto store = std::make_shared<std::vector<float>>(std::move(weight));
  Linear l;
  l.name = std::move(name);
  l.out = out;
  l.in = in;
  l.dtype = DType::F32;
  l.data = store->data();
  l.storage = store;
  l.bias = std::move(bias);
  return l;
}

void linear_forward(backend::Backend& b, const Linear& l, const Tensor& x, const Tensor& y) {
  const Tensor bias = Tensor::vector(const_cast<float*>(l.bias.data()), DType::F32, int64_t(l.bias.size()));
  const Tensor* pb = l.has_bias() ? &bias : nullptr;
  switch (l.kind) {
    case Linear::Kind::Dense: b.matmul(l.weight(), pb, x, y); return;
    case Linear::Kind::Grouped:
    case Linear::Kind::W8A8: b.matmul_quant(l.quant->matrix(), pb, x, y); return;
  }
  fail("{}: unknown linear kind", l.name);
}

void linear_forward(const Linear& l, const float* x, int64_t n, float* y) {
  linear_forward(backend::cpu(), l, Tensor::f32(x, n, l.in), Tensor::f32(y, n, l.out));
}

std::vector<float> linear_weight_f32(const Linear& l) {
  std::vector<float> w(size_t(l.out * l.in));
  switch (l.kind) {
    case Linear::Kind::Dense: to_f32(l.dtype, l.data, w.data(), w.size()); return w;
    case Linear::Kind::Grouped:
    case Linear::Kind::W8A8: return l.quant->dequantize();
  }
  fail("{}: unknown linear kind", l.name);
}

}  // namespace llmopt::model
