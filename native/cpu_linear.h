// at::linear, with float32 CPU GEMMs on oneDNN where this build has it (see cpu_linear.cc).
#pragma once

#include "compat.h"

namespace sm {
bool onednnLinearAvailable();
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const Optional<at::Tensor>& bias);
}  // namespace sm
