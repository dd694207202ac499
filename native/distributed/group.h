// Process groups on libtorch's c10d: one TCPStore rendezvous per process, Gloo groups over it
// (the world and any subgroups), and the diagnosis that turns a failed collective into a message
// naming the collective, this rank and, when it can be found, the rank that was lost.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "../compat.h"

namespace sm::dist {

// ProcessGroupGloo derives from ProcessGroup in libtorch 1.x and from Backend in 2.x; both bases
// declare the collectives used here with the same signatures.
#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif

struct WorldOptions {
  int rank = 0;
  int worldSize = 1;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  std::chrono::milliseconds timeout{600000};
};

// One group of processes: its members (global ranks), this process's place in it, and the backend.
struct Group {
  int id = 0;
  std::string name;
  int rank = 0;  // within the group
  int size = 1;
  std::vector<int> globalRanks;
  c10::intrusive_ptr<Backend> backend;
};

// The process-wide state: the store and the groups made over it.
bool initialized();
std::shared_ptr<Group> initWorld(const WorldOptions& options);
std::shared_ptr<Group> newGroup(const std::vector<int>& globalRanks, const std::string& name);
std::shared_ptr<Group> group(int id);  // throws when unknown or destroyed
void destroyAll();
const WorldOptions& world();
std::vector<std::string> backends();  // the backends this build has

// Waits for a collective and turns its failure into one message: what failed, on which rank,
// why, and which peer is gone when that can be told.
void waitFor(const Group& g, const char* collective, const c10::intrusive_ptr<c10d::Work>& work);
[[noreturn]] void fail(const Group& g, const char* collective, const std::string& cause);

// Milliseconds on a monotonic clock, for communication timings.
double nowMs();

}  // namespace sm::dist
