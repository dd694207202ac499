// Element-wise math and comparisons, with tensor or scalar right-hand sides, and the few
// in-place updates that parameter code needs.
#include "args.h"
#include "registry.h"
#include "representable.h"

namespace sm {
namespace {

#define SM_UNARY(name, expr)                                \
  Napi::Value name(const Napi::CallbackInfo& info) {        \
    const at::Tensor& a = tensorArg(info, 0);                    \
    return wrap(info.Env(), expr);                          \
  }

#define SM_BINARY(name, expr)                               \
  Napi::Value name(const Napi::CallbackInfo& info) {        \
    const at::Tensor& a = tensorArg(info, 0);                    \
    const at::Tensor& b = tensorArg(info, 1);                    \
    return wrap(info.Env(), expr);                          \
  }

// An integral result type would wrap a scalar it cannot hold (int32 + 2^40 gives int32 + 0).
#define SM_BINARY_SCALAR(name, expr)                        \
  Napi::Value name(const Napi::CallbackInfo& info) {        \
    const at::Tensor& a = tensorArg(info, 0);                    \
    at::Scalar s = scalarArg(info, 1);                      \
    checkScalarOperand(a, s);                               \
    return wrap(info.Env(), expr);                          \
  }

#define SM_IN_PLACE(name, stmt)                             \
  Napi::Value name(const Napi::CallbackInfo& info) {        \
    const at::Tensor& a = tensorArg(info, 0);                    \
    stmt;                                                   \
    return info.Env().Undefined();                          \
  }

SM_BINARY(add, at::add(a, b))
SM_BINARY(sub, at::sub(a, b))
SM_BINARY(mul, at::mul(a, b))
SM_BINARY(div, at::div(a, b))
SM_BINARY(pow, at::pow(a, b))
SM_BINARY(remainder, at::remainder(a, b))
SM_BINARY(maximum, at::maximum(a, b))
SM_BINARY(minimum, at::minimum(a, b))
SM_BINARY(eq, at::eq(a, b))
SM_BINARY(ne, at::ne(a, b))
SM_BINARY(lt, at::lt(a, b))
SM_BINARY(le, at::le(a, b))
SM_BINARY(gt, at::gt(a, b))
SM_BINARY(ge, at::ge(a, b))
SM_BINARY(logicalAnd, at::logical_and(a, b))
SM_BINARY(logicalOr, at::logical_or(a, b))

SM_BINARY_SCALAR(addScalar, at::add(a, s))
SM_BINARY_SCALAR(subScalar, at::sub(a, s))
SM_BINARY_SCALAR(rsubScalar, at::rsub(a, s))
SM_BINARY_SCALAR(mulScalar, at::mul(a, s))
SM_BINARY_SCALAR(divScalar, at::div(a, s))
SM_BINARY_SCALAR(rdivScalar, at::mul(at::reciprocal(a), s))
SM_BINARY_SCALAR(powScalar, at::pow(a, s))
SM_BINARY_SCALAR(remainderScalar, at::remainder(a, s))
SM_BINARY_SCALAR(eqScalar, at::eq(a, s))
SM_BINARY_SCALAR(neScalar, at::ne(a, s))
SM_BINARY_SCALAR(ltScalar, at::lt(a, s))
SM_BINARY_SCALAR(leScalar, at::le(a, s))
SM_BINARY_SCALAR(gtScalar, at::gt(a, s))
SM_BINARY_SCALAR(geScalar, at::ge(a, s))

SM_UNARY(neg, at::neg(a))
SM_UNARY(abs, at::abs(a))
SM_UNARY(exp, at::exp(a))
SM_UNARY(log, at::log(a))
SM_UNARY(log1p, at::log1p(a))
SM_UNARY(sqrt, at::sqrt(a))
SM_UNARY(rsqrt, at::rsqrt(a))
SM_UNARY(tanh, at::tanh(a))
SM_UNARY(sigmoid, at::sigmoid(a))
SM_UNARY(relu, at::relu(a))
SM_UNARY(sin, at::sin(a))
SM_UNARY(cos, at::cos(a))
SM_UNARY(square, at::square(a))
SM_UNARY(reciprocal, at::reciprocal(a))
SM_UNARY(floor, at::floor(a))
SM_UNARY(ceil, at::ceil(a))
SM_UNARY(round, at::round(a))
SM_UNARY(sign, at::sign(a))
SM_UNARY(erf, at::erf(a))
SM_UNARY(logicalNot, at::logical_not(a))
SM_UNARY(isfinite, at::isfinite(a))
SM_UNARY(isnan, at::isnan(a))
SM_UNARY(real, at::real(a))
SM_UNARY(imag, at::imag(a))


Napi::Value clamp(const Napi::CallbackInfo& info) {
  at::Tensor a = tensorArg(info, 0);
  Optional<at::Scalar> lo, hi;
  if (!isMissing(info, 1)) lo = scalarArg(info, 1);
  if (!isMissing(info, 2)) hi = scalarArg(info, 2);
  if (lo) checkScalarOperand(a, *lo);
  if (hi) checkScalarOperand(a, *hi);
  return wrap(info.Env(), at::clamp(a, lo, hi));
}

Napi::Value where(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::where(tensorArg(info, 0), tensorArg(info, 1), tensorArg(info, 2)));
}

Napi::Value addcmul(const Napi::CallbackInfo& info) {
  const at::Tensor& a = tensorArg(info, 0);
  at::Scalar value = scalarArg(info, 3);
  checkScalarOperand(a, value);
  return wrap(info.Env(), at::addcmul(a, tensorArg(info, 1), tensorArg(info, 2), value));
}

// A scalar for an in-place update of `a`, checked against a's dtype (the result keeps it).
at::Scalar scalarInto(const at::Tensor& a, const Napi::CallbackInfo& info, size_t i) {
  at::Scalar s = scalarArg(info, i);
  checkScalarFits(s, a.scalar_type(), "the value");
  return s;
}

SM_IN_PLACE(addInPlace, a.add_(tensorArg(info, 1), scalarInto(a, info, 2)))
SM_IN_PLACE(mulInPlace, a.mul_(tensorArg(info, 1)))
SM_IN_PLACE(mulScalarInPlace, a.mul_(scalarInto(a, info, 1)))
SM_IN_PLACE(copyInPlace, a.copy_(tensorArg(info, 1)))
SM_IN_PLACE(zeroInPlace, a.zero_())
SM_IN_PLACE(fillInPlace, a.fill_(scalarInto(a, info, 1)))
SM_IN_PLACE(maskedFillInPlace, a.masked_fill_(tensorArg(info, 1), scalarInto(a, info, 2)))

}  // namespace

void registerPointwise(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, add);
  SM_DEFINE(exports, sub);
  SM_DEFINE(exports, mul);
  SM_DEFINE(exports, div);
  SM_DEFINE(exports, pow);
  SM_DEFINE(exports, remainder);
  SM_DEFINE(exports, maximum);
  SM_DEFINE(exports, minimum);
  SM_DEFINE(exports, eq);
  SM_DEFINE(exports, ne);
  SM_DEFINE(exports, lt);
  SM_DEFINE(exports, le);
  SM_DEFINE(exports, gt);
  SM_DEFINE(exports, ge);
  SM_DEFINE(exports, logicalAnd);
  SM_DEFINE(exports, logicalOr);
  SM_DEFINE(exports, addScalar);
  SM_DEFINE(exports, subScalar);
  SM_DEFINE(exports, rsubScalar);
  SM_DEFINE(exports, mulScalar);
  SM_DEFINE(exports, divScalar);
  SM_DEFINE(exports, rdivScalar);
  SM_DEFINE(exports, powScalar);
  SM_DEFINE(exports, remainderScalar);
  SM_DEFINE(exports, eqScalar);
  SM_DEFINE(exports, neScalar);
  SM_DEFINE(exports, ltScalar);
  SM_DEFINE(exports, leScalar);
  SM_DEFINE(exports, gtScalar);
  SM_DEFINE(exports, geScalar);
  SM_DEFINE(exports, neg);
  SM_DEFINE(exports, abs);
  SM_DEFINE(exports, exp);
  SM_DEFINE(exports, log);
  SM_DEFINE(exports, log1p);
  SM_DEFINE(exports, sqrt);
  SM_DEFINE(exports, rsqrt);
  SM_DEFINE(exports, tanh);
  SM_DEFINE(exports, sigmoid);
  SM_DEFINE(exports, relu);
  SM_DEFINE(exports, sin);
  SM_DEFINE(exports, cos);
  SM_DEFINE(exports, square);
  SM_DEFINE(exports, reciprocal);
  SM_DEFINE(exports, floor);
  SM_DEFINE(exports, ceil);
  SM_DEFINE(exports, round);
  SM_DEFINE(exports, sign);
  SM_DEFINE(exports, erf);
  SM_DEFINE(exports, logicalNot);
  SM_DEFINE(exports, isfinite);
  SM_DEFINE(exports, isnan);
  SM_DEFINE(exports, real);
  SM_DEFINE(exports, imag);
  SM_DEFINE(exports, clamp);
  SM_DEFINE(exports, where);
  SM_DEFINE(exports, addcmul);
  SM_DEFINE(exports, addInPlace);
  SM_DEFINE(exports, mulInPlace);
  SM_DEFINE(exports, mulScalarInPlace);
  SM_DEFINE(exports, maskedFillInPlace);
  SM_DEFINE(exports, copyInPlace);
  SM_DEFINE(exports, zeroInPlace);
  SM_DEFINE(exports, fillInPlace);
}

}  // namespace sm
