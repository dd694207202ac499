// at::matmul, at::bmm and at::baddbmm, with float32 CPU products on oneDNN where this build has it
// (see cpu_matmul.cc).
#pragma once

#include "compat.h"

namespace sm {
/** alpha · (a @ b), the scale applied inside the product where it can be. */
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, double alpha = 1.0);
at::Tensor bmm(const at::Tensor& a, const at::Tensor& b);
at::Tensor baddbmm(const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b, double beta, double alpha);
}  // namespace sm
