#include "args.h"
#include "warnings.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace sm {

CallContext& callContext() {
  static thread_local CallContext ctx;
  return ctx;
}

namespace {
struct DtypeEntry {
  int32_t code;
  at::ScalarType type;
  const char* name;
};
// The codes are part of the JavaScript side's contract (lib/tensor/dtype.ts).
const DtypeEntry kDtypes[] = {
    {0, at::kFloat, "float32"},         {1, at::kDouble, "float64"},
    {2, at::kHalf, "float16"},          {3, at::kBFloat16, "bfloat16"},
    {4, at::kLong, "int64"},            {5, at::kInt, "int32"},
    {6, at::kBool, "bool"},             {7, at::kComplexFloat, "complex64"},
    {8, at::kComplexDouble, "complex128"}, {9, at::kByte, "uint8"},
    {10, at::kChar, "int8"},            {11, at::kShort, "int16"},
};

[[noreturn]] void typeError(const Napi::CallbackInfo& info, size_t i, const char* expected) {
  std::ostringstream msg;
  msg << callContext().op << ": argument " << i << " must be " << expected;
  throw Napi::TypeError::New(info.Env(), msg.str());
}
}  // namespace

const char* dtypeName(at::ScalarType type) {
  for (const auto& e : kDtypes)
    if (e.type == type) return e.name;
  return c10::toString(type);
}

at::ScalarType dtypeFromCode(int32_t code) {
  for (const auto& e : kDtypes)
    if (e.code == code) return e.type;
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int32_t dtypeCode(at::ScalarType type) {
  for (const auto& e : kDtypes)
    if (e.type == type) return e.code;
  throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(type));
}

std::string describe(const at::Tensor& t) {
  std::ostringstream out;
  out << dtypeName(t.scalar_type()) << "[";
  for (int64_t d = 0; d < t.dim(); ++d) out << (d ? ", " : "") << t.size(d);
  out << "]";
  if (!t.is_cpu()) out << "@" << t.device().str();
  return out.str();
}

std::string jsNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

bool isMissing(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsUndefined() || info[i].IsNull();
}

const at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) typeError(info, i, "a Tensor");
  int32_t handle = info[i].As<Napi::Number>().Int32Value();
  callContext().handles.emplace_back(i, handle);
  return TensorStore::instance().get(handle);
}

std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) typeError(info, i, "an array of Tensors");
  auto array = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    Napi::Value v = array.Get(k);
    if (!v.IsNumber()) typeError(info, i, "an array of Tensors");
    int32_t handle = v.As<Napi::Number>().Int32Value();
    callContext().handles.emplace_back(i, handle);
    out.push_back(TensorStore::instance().get(handle));
  }
  return out;
}

namespace {
// N-API turns NaN into 0, truncates 1.5 and saturates 1e20; none of them is the integer meant.
int64_t exactInt(const Napi::CallbackInfo& info, size_t i, const Napi::Value& v, const char* expected) {
  if (!v.IsNumber()) typeError(info, i, expected);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(std::trunc(d) == d && std::abs(d) <= 9007199254740991.0)) {
    // Past 2^53 a JavaScript number is no longer an exact integer: 2^62 + 1 arrives as 2^62.
    const char* why = std::trunc(d) == d ? " (an exact one: at most 2^53 - 1 in magnitude)" : "";
    throw Napi::TypeError::New(info.Env(), std::string(callContext().op) + ": argument " + std::to_string(i) + " must be " +
                                               expected + why + ", got " + jsNumber(d));
  }
  return static_cast<int64_t>(d);
}
}  // namespace

int64_t intArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) typeError(info, i, "an integer");
  return exactInt(info, i, info[i], "an integer");
}

double doubleArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) typeError(info, i, "a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool boolArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsBoolean()) typeError(info, i, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string stringArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) typeError(info, i, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) typeError(info, i, "an array of integers");
  auto array = info[i].As<Napi::Array>();
  std::vector<int64_t> out(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    out[k] = exactInt(info, i, array.Get(k), "an array of integers");
  }
  return out;
}

at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i) {
  if (i < info.Length() && info[i].IsBoolean()) return at::Scalar(info[i].As<Napi::Boolean>().Value());
  if (i >= info.Length() || !info[i].IsNumber()) typeError(info, i, "a number");
  double value = info[i].As<Napi::Number>().DoubleValue();
  // An integral number is an integer scalar, so int64 tensors stay int64 (x + 1), while float
  // tensors stay float whatever the scalar (type promotion never widens a tensor for a scalar).
  // Negative integers too, but not -0, whose sign matters (1 / -0 is -Infinity).
  if (std::nearbyint(value) == value && std::abs(value) < 9007199254740992.0 && !(value == 0 && std::signbit(value))) {
    return at::Scalar(static_cast<int64_t>(value));
  }
  return at::Scalar(value);
}

at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i) {
  return dtypeFromCode(static_cast<int32_t>(intArg(info, i)));
}

at::Device deviceArg(const Napi::CallbackInfo& info, size_t i) {
  if (isMissing(info, i)) return at::Device(at::kCPU);
  return at::Device(stringArg(info, i));
}

Optional<at::Tensor> optionalTensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (isMissing(info, i)) return kNone;
  return tensorArg(info, i);
}

Optional<int64_t> optionalIntArg(const Napi::CallbackInfo& info, size_t i) {
  if (isMissing(info, i)) return kNone;
  return intArg(info, i);
}

Optional<at::ScalarType> optionalDtypeArg(const Napi::CallbackInfo& info, size_t i) {
  if (isMissing(info, i)) return kNone;
  return dtypeArg(info, i);
}

at::TensorOptions optionsArg(const Napi::CallbackInfo& info, size_t dtypeIndex) {
  auto options = at::TensorOptions().device(deviceArg(info, dtypeIndex + 1));
  if (!isMissing(info, dtypeIndex)) options = options.dtype(dtypeArg(info, dtypeIndex));
  return options;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  auto& store = TensorStore::instance();
  int32_t handle = store.put(std::move(t));
  store.flushExternalMemory(env);
  return Napi::Number::New(env, handle);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto out = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); ++k) out.Set(static_cast<uint32_t>(k), wrap(env, ts[k]));
  return out;
}

Napi::Value wrapPair(Napi::Env env, std::tuple<at::Tensor, at::Tensor> pair) {
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, wrap(env, std::move(std::get<0>(pair))));
  out.Set(1u, wrap(env, std::move(std::get<1>(pair))));
  return out;
}

Napi::Value intList(Napi::Env env, at::IntArrayRef values) {
  auto out = Napi::Array::New(env, values.size());
  for (size_t k = 0; k < values.size(); ++k)
    out.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(values[k])));
  return out;
}

namespace {
std::string withInputs(const std::string& message) {
  auto handles = callContext().handles;
  // Arguments may be read in any order (C++ leaves it unspecified); list them as the caller wrote them.
  std::stable_sort(handles.begin(), handles.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::ostringstream out;
  out << callContext().op << ": " << message;
  const auto& store = TensorStore::instance();
  if (!handles.empty()) {
    out << " (inputs: ";
    for (size_t k = 0; k < handles.size(); ++k)
      out << (k ? ", " : "") << (store.live(handles[k].second) ? describe(store.get(handles[k].second)) : "disposed");
    out << ")";
  }
  return out.str();
}

std::string firstLines(const std::string& message) {
  // libtorch messages can carry C++ backtraces and, for a missing backend, the dispatcher's whole
  // kernel table; keep the paragraph a user reads.
  std::string out = message.substr(0, message.find("\nException raised from"));
  auto paragraph = out.find("\n\n");
  if (out.size() > 400 && paragraph != std::string::npos) out = out.substr(0, paragraph) + " [...]";
  return out;
}
}  // namespace

Napi::Value guardedCall(const Napi::CallbackInfo& info, Entry entry) {
  auto& ctx = callContext();
  ctx.op = static_cast<const char*>(info.Data());
  ctx.handles.clear();
  std::string message;
  try {
    Napi::Value result = entry(info);
    emitLibtorchWarnings(info.Env());
    return result;
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    message = withInputs(firstLines(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    message = withInputs(firstLines(e.what()));
  } catch (...) {
    message = withInputs("unknown native error");
  }
  throw Napi::Error::New(info.Env(), message);
}

}  // namespace sm
