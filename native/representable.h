// Whether JavaScript numbers survive being stored in a dtype. libtorch converts silently (NaN and
// 1e20 become INT64_MIN in int64, 300 becomes 44 in uint8, 2^40 wraps in int32); a value that an
// integral dtype cannot represent is an error here instead. What torch defines stays: fractions
// truncate toward zero (1.7 -> 1), bool is "not zero", and floating dtypes round as IEEE 754 says
// (a finite value past float16's range becomes infinity).
#pragma once

#include "compat.h"

namespace sm {

/** Throws unless `value` can be stored in `type`: integral types need a finite value whose integer part is in
 *  range, bool anything but NaN, and floating types a value that does not overflow to infinity (libtorch's own
 *  rule for fills). `what` names the value in the message. */
void checkScalarFits(const at::Scalar& value, at::ScalarType type, const char* what);

/** Throws unless every element of `source` (JavaScript data) can be stored in an integral or bool `target`, as above. */
void checkTensorFits(const at::Tensor& source, at::ScalarType target);

/** For tensor-scalar ops: throws when the op's integral result type cannot hold the scalar (it would wrap). */
void checkScalarOperand(const at::Tensor& tensor, const at::Scalar& value);

}  // namespace sm
