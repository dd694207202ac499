// Shape changes, views, indexing, joining and moving tensors between dtypes and devices.
#include "args.h"
#include "registry.h"
#include "representable.h"

namespace sm {
namespace {

Napi::Value reshape(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).reshape(intListArg(info, 1)));
}

Napi::Value view(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).view(intListArg(info, 1)));
}

Napi::Value transpose(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).transpose(intArg(info, 1), intArg(info, 2)));
}

Napi::Value permute(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).permute(intListArg(info, 1)));
}

Napi::Value narrow(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).narrow(intArg(info, 1), intArg(info, 2), intArg(info, 3)));
}

Napi::Value slice(const Napi::CallbackInfo& info) {
  // (t, dim, start?, end?, step)
  return wrap(info.Env(), tensorArg(info, 0).slice(intArg(info, 1), optionalIntArg(info, 2),
                                                   optionalIntArg(info, 3), intArg(info, 4)));
}

Napi::Value select(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).select(intArg(info, 1), intArg(info, 2)));
}

Napi::Value indexSelect(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).index_select(intArg(info, 1), tensorArg(info, 2)));
}

Napi::Value gather(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).gather(intArg(info, 1), tensorArg(info, 2)));
}

Napi::Value scatter(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).scatter(intArg(info, 1), tensorArg(info, 2), tensorArg(info, 3)));
}

Napi::Value scatterAdd(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).scatter_add(intArg(info, 1), tensorArg(info, 2), tensorArg(info, 3)));
}

Napi::Value indexAdd(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).index_add(intArg(info, 1), tensorArg(info, 2), tensorArg(info, 3)));
}

Napi::Value maskedFill(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorArg(info, 0);
  at::Scalar value = scalarArg(info, 2);
  checkScalarFits(value, t.scalar_type(), "the fill value");
  return wrap(info.Env(), t.masked_fill(tensorArg(info, 1), value));
}

Napi::Value cat(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::cat(tensorListArg(info, 0), intArg(info, 1)));
}

Napi::Value stack(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::stack(tensorListArg(info, 0), intArg(info, 1)));
}

Napi::Value split(const Napi::CallbackInfo& info) {
  // (t, sizeOrSizes, dim): a number splits into equal chunks, an array into those sizes.
  at::Tensor t = tensorArg(info, 0);
  int64_t dim = intArg(info, 2);
  if (info[1].IsArray()) return wrapList(info.Env(), t.split_with_sizes(intListArg(info, 1), dim));
  return wrapList(info.Env(), t.split(intArg(info, 1), dim));
}

// libtorch splits an empty dim into `chunks` empty tensors: chunk(2^31) there never finishes
// making them (nor does JavaScript, holding their handles).
constexpr int64_t kMaxEmptyChunks = 1 << 16;

Napi::Value chunk(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorArg(info, 0);
  const int64_t chunks = intArg(info, 1), dim = intArg(info, 2);
  if (t.dim() > 0 && chunks > kMaxEmptyChunks && t.size(at::maybe_wrap_dim(dim, t.dim())) == 0) {
    throw std::invalid_argument("chunk: " + std::to_string(chunks) + " chunks of an empty dim would be as many empty tensors (at most " +
                                std::to_string(kMaxEmptyChunks) + ")");
  }
  return wrapList(info.Env(), t.chunk(chunks, dim));
}

Napi::Value contiguous(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).contiguous());
}

Napi::Value squeeze(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0);
  if (isMissing(info, 1)) return wrap(info.Env(), t.squeeze());
  return wrap(info.Env(), t.squeeze(intArg(info, 1)));
}

Napi::Value unsqueeze(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).unsqueeze(intArg(info, 1)));
}

Napi::Value expand(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).expand(intListArg(info, 1)));
}

Napi::Value repeat(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).repeat(intListArg(info, 1)));
}

Napi::Value flatten(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).flatten(intArg(info, 1), intArg(info, 2)));
}

Napi::Value toDtype(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).to(dtypeArg(info, 1)));
}

Napi::Value toDevice(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).to(deviceArg(info, 1)));
}

Napi::Value clone(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).clone());
}

Napi::Value tril(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).tril(intArg(info, 1)));
}

Napi::Value triu(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).triu(intArg(info, 1)));
}

Napi::Value flip(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).flip(intListArg(info, 1)));
}

Napi::Value roll(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).roll(intListArg(info, 1), intListArg(info, 2)));
}

}  // namespace

void registerViews(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, reshape);
  SM_DEFINE(exports, view);
  SM_DEFINE(exports, transpose);
  SM_DEFINE(exports, permute);
  SM_DEFINE(exports, narrow);
  SM_DEFINE(exports, slice);
  SM_DEFINE(exports, select);
  SM_DEFINE(exports, indexSelect);
  SM_DEFINE(exports, gather);
  SM_DEFINE(exports, scatter);
  SM_DEFINE(exports, scatterAdd);
  SM_DEFINE(exports, indexAdd);
  SM_DEFINE(exports, maskedFill);
  SM_DEFINE(exports, cat);
  SM_DEFINE(exports, stack);
  SM_DEFINE(exports, split);
  SM_DEFINE(exports, chunk);
  SM_DEFINE(exports, contiguous);
  SM_DEFINE(exports, squeeze);
  SM_DEFINE(exports, unsqueeze);
  SM_DEFINE(exports, expand);
  SM_DEFINE(exports, repeat);
  SM_DEFINE(exports, flatten);
  SM_DEFINE(exports, toDtype);
  SM_DEFINE(exports, toDevice);
  SM_DEFINE(exports, clone);
  SM_DEFINE(exports, tril);
  SM_DEFINE(exports, triu);
  SM_DEFINE(exports, flip);
  SM_DEFINE(exports, roll);
}

}  // namespace sm
