// What a worker started by the launcher needs from the operating system: to die with it.
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>

#include "../args.h"
#include "../registry.h"

namespace sm {
namespace {

// exitWithParent(parentPid): SIGKILL this process when the launcher that started it is gone, even
// if the launcher itself was killed and could not stop its workers (no orphan keeps a port or a
// GPU). Returns false when the parent was already gone (the caller should exit).
Napi::Value exitWithParent(const Napi::CallbackInfo& info) {
  int64_t parent = intArg(info, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) throw std::runtime_error("prctl(PR_SET_PDEATHSIG) failed");
  // The launcher may have died before the call: then this process was re-parented already.
  return Napi::Boolean::New(info.Env(), static_cast<int64_t>(getppid()) == parent);
}

}  // namespace

void registerLaunch(Napi::Env env, Napi::Object exports) { SM_DEFINE(exports, exitWithParent); }

}  // namespace sm
