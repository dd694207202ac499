#include "representable.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <stdexcept>

#include "args.h"

namespace sm {
namespace {

// An integral type's range: [lo, hi] exactly as int64, and as doubles [lo, hiExclusive) (2^63 is
// the first double past int64's maximum, which itself has no double).
struct IntRange {
  int64_t lo, hi;
  double loD, hiExclusiveD;
};

IntRange intRange(at::ScalarType type) {
  switch (type) {
    case at::kBool: return {0, 1, 0.0, 2.0};
    case at::kByte: return {0, 255, 0.0, 256.0};
    case at::kChar: return {-128, 127, -128.0, 128.0};
    case at::kShort: return {-32768, 32767, -32768.0, 32768.0};
    case at::kInt: return {INT32_MIN, INT32_MAX, -2147483648.0, 2147483648.0};
    default: return {INT64_MIN, INT64_MAX, -9223372036854775808.0, 9223372036854775808.0};
  }
}

// A finite double that becomes infinite in a narrower floating type.
bool overflowsFloat(double v, at::ScalarType type) {
  if (!std::isfinite(v)) return false;
  switch (type) {
    case at::kFloat: return std::isinf(static_cast<float>(v));
    case at::kHalf: return std::isinf(static_cast<float>(c10::Half(static_cast<float>(v))));
    case at::kBFloat16: return std::isinf(static_cast<float>(c10::BFloat16(static_cast<float>(v))));
    default: return false;
  }
}

[[noreturn]] void cannot(const char* what, const std::string& value, at::ScalarType type, const char* why) {
  throw std::invalid_argument(std::string(what) + " " + value + " cannot be stored as " + dtypeName(type) + ": " + why);
}

}  // namespace

void checkScalarFits(const at::Scalar& value, at::ScalarType type, const char* what) {
  if (value.isBoolean() || value.isComplex() || at::isComplexType(type)) return;
  if (type == at::kBool) {
    if (value.isFloatingPoint() && std::isnan(value.toDouble())) cannot(what, "NaN", type, "not a number");
    return;
  }
  if (at::isIntegralType(type, /*includeBool=*/false)) {
    const IntRange r = intRange(type);
    if (value.isIntegral(false)) {
      const int64_t v = value.toLong();
      if (v < r.lo || v > r.hi) cannot(what, std::to_string(v), type, "out of range");
      return;
    }
    const double v = value.toDouble();
    if (!std::isfinite(v)) cannot(what, jsNumber(v), type, "not a finite number");
    if (std::trunc(v) < r.loD || std::trunc(v) >= r.hiExclusiveD) cannot(what, jsNumber(v), type, "out of range");
    return;
  }
  const double v = value.isIntegral(false) ? static_cast<double>(value.toLong()) : value.toDouble();
  if (overflowsFloat(v, type)) cannot(what, jsNumber(v), type, "it overflows to infinity");
}

void checkTensorFits(const at::Tensor& source, at::ScalarType target) {
  const at::ScalarType from = source.scalar_type();
  if (from == target || at::isComplexType(target) || source.numel() == 0) return;
  at::Tensor bad;
  if (target == at::kBool) {
    if (!at::isFloatingType(from)) return;
    bad = at::isnan(source);
  } else if (at::isIntegralType(target, /*includeBool=*/false)) {
    if (from == at::kBool) return;
    const IntRange r = intRange(target);
    if (at::isIntegralType(from, /*includeBool=*/false)) {
      at::Tensor v = source.to(at::kLong);
      bad = at::logical_or(v < r.lo, v > r.hi);
    } else {
      at::Tensor v = at::trunc(source.to(at::kDouble));
      bad = at::logical_not(at::isfinite(v)) | (v < r.loD) | (v >= r.hiExclusiveD);
    }
  } else {
    return;  // floating targets round (IEEE 754)
  }
  if (!bad.any().item<bool>()) return;
  const int64_t index = bad.flatten().nonzero().select(0, 0).item<int64_t>();
  const at::Scalar value = source.flatten().select(0, index).item();
  std::string why = "out of range";
  if (at::isFloatingType(from)) {
    const double v = value.toDouble();
    why = std::isnan(v) ? "not a number" : !std::isfinite(v) ? "not a finite number" : "out of range";
  }
  const std::string shown = value.isIntegral(false) ? std::to_string(value.toLong()) : jsNumber(value.toDouble());
  throw std::invalid_argument("the value " + shown + " at index " + std::to_string(index) + " cannot be stored as " +
                              dtypeName(target) + ": " + why);
}

void checkScalarOperand(const at::Tensor& tensor, const at::Scalar& value) {
  const at::ScalarType result = at::result_type(tensor, value);
  if (at::isIntegralType(result, /*includeBool=*/true)) checkScalarFits(value, result, "the scalar");
}

}  // namespace sm
