// Small shims over the few APIs that differ between libtorch 1.13 (Debian) and 2.x.
#pragma once

#include <torch/csrc/api/include/torch/version.h>

#include <ATen/ATen.h>

namespace sm {

#if TORCH_VERSION_MAJOR >= 2
template <class T>
using Optional = std::optional<T>;
inline constexpr auto kNone = std::nullopt;
#else
template <class T>
using Optional = c10::optional<T>;
inline constexpr auto kNone = c10::nullopt;
#endif

}  // namespace sm
