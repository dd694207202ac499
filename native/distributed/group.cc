#include "group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SM_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace sm::dist {
namespace {

// Where each rank runs, read once after the rendezvous: a failed collective can then tell a dead
// peer on this host without asking the store (which dies with rank 0).
struct Peer {
  std::string host;
  long pid = 0;
};

struct State {
  WorldOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  std::vector<std::shared_ptr<Group>> groups;
  std::vector<Peer> peers;
  std::string host;
};

// Never destroyed: libtorch's own statics may be gone when the process exits (see tensor_store.cc).
State& state() {
  static auto* s = new State();
  return *s;
}

std::string hostName() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

std::string firstLine(const std::string& text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string whatOf(const std::exception& e) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) return firstLine(c10->what_without_backtrace());
  return firstLine(e.what());
}

// A process that exited but was not yet reaped (a zombie) is gone too.
bool processGone(long pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && (line[close + 2] == 'Z' || line[close + 2] == 'X');
}

#ifdef SM_WITH_GLOO
c10::intrusive_ptr<Backend> makeGloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size) {
  const auto& o = state().options;
  auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
  // PyTorch's convention: GLOO_SOCKET_IFNAME picks the interface; a loopback master keeps
  // everything on loopback; otherwise the interface this host's name resolves to.
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  bool loopback = o.masterAddr == "localhost" || o.masterAddr.rfind("127.", 0) == 0;
  if (ifname && *ifname) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (loopback) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}
#endif

c10::intrusive_ptr<Backend> makeBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size) {
#ifdef SM_WITH_GLOO
  return makeGloo(store, rank, size);
#else
  (void)store, (void)rank, (void)size;
  throw std::runtime_error(
      "this build of sparse-mixer has no Gloo backend (the libtorch it was built against ships no gloo headers); "
      "install libgloo-dev and rebuild");
#endif
}

std::string diagnosis(const std::string& cause) {
  const auto& s = state();
  std::vector<std::string> lost;
  for (size_t r = 0; r < s.peers.size(); ++r) {
    const Peer& p = s.peers[r];
    if (static_cast<int>(r) == s.options.rank || p.host != s.host) continue;
    if (processGone(p.pid)) lost.push_back("rank " + std::to_string(r) + " (pid " + std::to_string(p.pid) + ")");
  }
  std::ostringstream out;
  if (!lost.empty()) {
    out << " Lost: ";
    for (size_t k = 0; k < lost.size(); ++k) out << (k ? ", " : "") << lost[k];
    out << (lost.size() == 1 ? " is" : " are") << " no longer running.";
  } else if (cause.find("imed out") != std::string::npos || cause.find("imeout") != std::string::npos) {
    out << " A peer did not answer within the timeout of " << s.options.timeout.count() / 1000.0
        << " s (stopped, hung, or on an unreachable host).";
  } else if (cause.find("onnection") != std::string::npos) {
    out << " A peer closed its connection: it probably died (ranks on other hosts cannot be checked from here).";
  }
  return out.str();
}

}  // namespace

bool initialized() { return state().store.defined(); }

const WorldOptions& world() { return state().options; }

std::shared_ptr<Group> initWorld(const WorldOptions& o) {
  State& s = state();
  if (initialized()) throw std::runtime_error("the process group is already initialized (call destroy() first)");
  if (o.worldSize < 1 || o.rank < 0 || o.rank >= o.worldSize) {
    throw std::invalid_argument("rank " + std::to_string(o.rank) + " is outside a world of size " + std::to_string(o.worldSize));
  }
  if (o.masterPort < 1 || o.masterPort > 65535) throw std::invalid_argument("master port must be in 1..65535, got " + std::to_string(o.masterPort));
  s.options = o;
  s.host = hostName();
  c10d::TCPStoreOptions storeOptions;
  storeOptions.port = static_cast<uint16_t>(o.masterPort);
  storeOptions.isServer = o.rank == 0;
  storeOptions.numWorkers = static_cast<size_t>(o.worldSize);
  storeOptions.waitWorkers = true;
  storeOptions.timeout = o.timeout;
  try {
    s.store = c10::make_intrusive<c10d::TCPStore>(o.masterAddr, storeOptions);
  } catch (const std::exception& e) {
    s.store.reset();
    throw std::runtime_error("rendezvous at " + o.masterAddr + ":" + std::to_string(o.masterPort) + " failed on rank " +
                             std::to_string(o.rank) + " of " + std::to_string(o.worldSize) + ": " + whatOf(e) +
                             (o.rank == 0 ? " (rank 0 hosts the store: is the port free?)" : " (is rank 0 running, and MASTER_ADDR/MASTER_PORT right?)"));
  }
  try {
    std::string me = s.host + " " + std::to_string(getpid());
    s.store->set("sm/proc/" + std::to_string(o.rank), std::vector<uint8_t>(me.begin(), me.end()));
    auto w = std::make_shared<Group>();
    w->name = "world";
    w->rank = o.rank;
    w->size = o.worldSize;
    for (int r = 0; r < o.worldSize; ++r) w->globalRanks.push_back(r);
    w->backend = makeBackend(c10::make_intrusive<c10d::PrefixStore>("world", s.store), o.rank, o.worldSize);
    // Every rank has registered before the backend's own rendezvous completes.
    s.peers.assign(o.worldSize, Peer{});
    for (int r = 0; r < o.worldSize; ++r) {
      auto bytes = s.store->get("sm/proc/" + std::to_string(r));
      std::istringstream in(std::string(bytes.begin(), bytes.end()));
      in >> s.peers[r].host >> s.peers[r].pid;
    }
    s.groups = {w};
    return w;
  } catch (const std::exception& e) {
    destroyAll();
    throw std::runtime_error("joining the world of " + std::to_string(o.worldSize) + " processes failed on rank " +
                             std::to_string(o.rank) + ": " + whatOf(e));
  }
}

std::shared_ptr<Group> newGroup(const std::vector<int>& globalRanks, const std::string& name) {
  State& s = state();
  if (!initialized()) throw std::runtime_error("the process group is not initialized (call init() first)");
  int mine = -1;
  for (size_t k = 0; k < globalRanks.size(); ++k) {
    int r = globalRanks[k];
    if (r < 0 || r >= s.options.worldSize) throw std::invalid_argument("group '" + name + "': rank " + std::to_string(r) + " is not in the world");
    for (size_t j = 0; j < k; ++j)
      if (globalRanks[j] == r) throw std::invalid_argument("group '" + name + "': rank " + std::to_string(r) + " is listed twice");
    if (r == s.options.rank) mine = static_cast<int>(k);
  }
  if (globalRanks.empty()) throw std::invalid_argument("group '" + name + "' has no ranks");
  if (mine < 0) return nullptr;  // not a member: nothing to join
  auto g = std::make_shared<Group>();
  g->id = static_cast<int>(s.groups.size());
  g->name = name;
  g->rank = mine;
  g->size = static_cast<int>(globalRanks.size());
  g->globalRanks = globalRanks;
  try {
    g->backend = makeBackend(c10::make_intrusive<c10d::PrefixStore>("group/" + name, s.store), mine, g->size);
  } catch (const std::exception& e) {
    fail(*g, "newGroup", whatOf(e));
  }
  s.groups.push_back(g);
  return g;
}

std::shared_ptr<Group> group(int id) {
  State& s = state();
  if (id < 0 || id >= static_cast<int>(s.groups.size()) || !s.groups[id]) {
    throw std::invalid_argument("unknown process group " + std::to_string(id) + (initialized() ? "" : " (the process group was destroyed)"));
  }
  return s.groups[id];
}

void destroyAll() {
  State& s = state();
  s.groups.clear();
  s.peers.clear();
  s.store.reset();
}

std::vector<std::string> backends() {
  std::vector<std::string> out;
#ifdef SM_WITH_GLOO
  out.push_back("gloo");
#endif
  return out;
}

void fail(const Group& g, const char* collective, const std::string& cause) {
  std::ostringstream out;
  out << collective << " failed on rank " << state().options.rank << " of " << state().options.worldSize;
  if (g.name != "world") out << " (group '" << g.name << "', rank " << g.rank << " of " << g.size << ")";
  out << ": " << cause << "." << diagnosis(cause);
  throw std::runtime_error(out.str());
}

void waitFor(const Group& g, const char* collective, const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    fail(g, collective, whatOf(e));
  }
}

double nowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace sm::dist
