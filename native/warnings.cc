// libtorch's warnings (TORCH_WARN: e.g. reading .grad of a non-leaf tensor) become Node warnings:
// by default c10 hands them to glog, which prints raw "WARNING: Logging before InitGoogleLogging()"
// lines to stderr. Here they are kept per thread and emitted as process.emitWarning(message,
// 'LibtorchWarning') when the N-API call that caused them returns (guardedCall).
#include "warnings.h"

#include <c10/util/Exception.h>

#include "compat.h"

namespace sm {
namespace {

std::vector<std::string>& pending() {
  static thread_local std::vector<std::string> messages;
  return messages;
}

class CollectingHandler : public c10::WarningHandler {
 public:
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override { pending().push_back(warning.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { pending().push_back(msg); }
#endif
};

}  // namespace

void collectLibtorchWarnings() {
  static auto* handler = new CollectingHandler();  // never destroyed: c10 keeps the pointer
  c10::Warning::set_warning_handler(handler);
}

void emitLibtorchWarnings(Napi::Env env) {
  auto& messages = pending();
  if (messages.empty()) return;
  std::vector<std::string> out;
  out.swap(messages);
  Napi::Object process = env.Global().Get("process").As<Napi::Object>();
  Napi::Value emit = process.Get("emitWarning");
  if (!emit.IsFunction()) return;
  for (const auto& m : out) emit.As<Napi::Function>().Call(process, {Napi::String::New(env, m), Napi::String::New(env, "LibtorchWarning")});
}

}  // namespace sm
