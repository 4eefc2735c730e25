// Several untrusted workers behind one interface: routing, batch shares, failover, re-admission.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/worker_channel.h"

namespace tempo::offload {

struct WorkerPoolOptions {
  /// How often a dead worker is asked to come back (a new session through its connector).
  std::chrono::milliseconds readmit_interval{2000};
  /// Keep the master's reference to every operand a worker caches, so that a worker's death loses
  /// nothing: its cached operands are re-uploaded to the worker that takes over. Costs no copy
  /// (blinded tensors share storage), but keeps the blinded operands alive in the master's memory
  /// until the backward pass frees them.
  bool keep_operands_for_failover = true;
  /// Told why a dead worker was not re-admitted (unreachable, or refused: e.g. it now computes
  /// more coarsely than the master accepts), once per worker for each new reason.
  std::function<void(const std::string&)> log;
};

/// The workers of one master. Requests go to a worker chosen by the caller (a hint) unless they
/// name an operand cached on another one; a request whose worker dies, hangs past its deadline or
/// disconnects is re-sent to another live worker, with the cached operands it names re-uploaded.
/// Dead workers are probed in the background and re-admitted with a fresh session. A worker that
/// lied (integrity) is quarantined: never used again.
///
/// Thread-safe. Handles are the master's (OffloadEngine::new_handle): unique across workers.
class WorkerPool {
 public:
  /// Opens a new session to a worker (throws when it cannot); null for workers that cannot come
  /// back.
  using Connector = std::function<std::shared_ptr<WorkerChannel>()>;
  struct Member {
    std::string name;  ///< "embedded", "HOST:PORT"
    std::shared_ptr<WorkerChannel> channel;
    Connector reconnect;
  };

  explicit WorkerPool(std::vector<Member> members, WorkerPoolOptions options = {});
  /// A pool of one worker that the caller owns and keeps alive longer than the pool.
  static std::shared_ptr<WorkerPool> of(WorkerChannel& channel, std::string name = "worker");
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// A request on its way: get() waits for the response, re-sending it elsewhere while the worker
  /// it went to is gone. A Response with `unavailable` set means no worker was left to take it.
  class Pending {
   public:
    Pending() = default;
    protocol::Response get();
    /// The worker that answered (valid after get()), or -1.
    int worker() const { return worker_; }

   private:
    friend class WorkerPool;
    WorkerPool* pool_ = nullptr;
    protocol::Request request_;  ///< kept (shared storage) for a re-send
    std::future<protocol::Response> future_;
    int worker_ = -1;
    uint64_t generation_ = 0;  ///< of the worker's session, to ignore news of an old session
    std::chrono::steady_clock::time_point submitted_;
    int64_t cost_bytes_ = 0;
  };

  /// Queues `request` on worker `hint` (taken modulo the pool size; another worker when that one
  /// is down, or when the request names an operand cached elsewhere).
  Pending submit(protocol::Request request, int hint = 0);

  /// How many rows of a batch each shard gets: `rows` split over the live workers in proportion
  /// to their measured throughput, `chunks_per_worker` consecutive shards per worker (pipelining).
  /// Never an empty shard; fewer shards when rows are few. Empty when no worker is live.
  struct Shard {
    int worker;
    int64_t begin, end;
  };
  std::vector<Shard> plan_shards(int64_t rows, int chunks_per_worker = 1);

  /// Never use worker `index` again (it returned a wrong result). Returns its name.
  std::string quarantine(int index);
  int size() const { return static_cast<int>(members_.size()); }
  int live_count();
  bool all_quarantined();
  /// Capabilities of the first live worker (of the first worker when none is).
  protocol::Capabilities capabilities();
  std::string name(int index) const { return members_[static_cast<size_t>(index)].name; }

  struct Counters {
    int64_t resent = 0;      ///< requests re-sent after their worker was lost
    int64_t reuploaded = 0;  ///< cached operands sent again to the worker that took over
    int64_t deaths = 0, readmissions = 0;
    int64_t frees_forwarded = 0;  ///< frees sent to the worker that held the handle
  };
  Counters counters();
  /// Per worker: name, state, measured throughput, requests answered.
  std::string describe();

 private:
  enum class State { kLive, kDead, kQuarantined };
  struct Slot {
    std::string name;
    std::shared_ptr<WorkerChannel> channel;
    Connector reconnect;
    State state = State::kLive;
    double rate = 0;  ///< bytes moved per second of service, EWMA; 0 until measured
    std::chrono::steady_clock::time_point last_done{};
    int64_t answered = 0;
    std::string last_error;
    std::string last_refusal;  ///< why its latest re-admission failed (logged once)
    uint64_t generation = 0;   ///< bumped by each re-admission (a new session)
  };
  struct Cached {
    BlindedTensor tensor;  ///< empty without keep_operands_for_failover
    int worker;            ///< -1 once that worker is lost
  };

  /// Picks the live worker for `request` and rewrites its cached references and frees for it.
  /// Returns -1 when no worker is live. Frees of handles that another live worker holds (after a
  /// failover split a layer's operands) are moved to `elsewhere` as (worker, handle). Caller
  /// holds mu_.
  int route(protocol::Request& request, int hint,
            std::vector<std::pair<int, protocol::Handle>>* elsewhere);
  void dispatch(Pending& p, int hint);
  void lost(int worker, uint64_t generation, const std::string& why);
  void answered(Pending& p, const protocol::Response& r);
  void readmit_loop();

  WorkerPoolOptions options_;
  std::vector<Slot> members_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::unordered_map<protocol::Handle, Cached> cached_;
  Counters counters_;
  /// Ids of the pool's own requests (forwarded frees): high bit set, apart from the engine's.
  static constexpr uint64_t kPoolRequestIds = uint64_t{1} << 63;
  uint64_t next_pool_request_ = 1;
  std::thread readmitter_;
};

}  // namespace tempo::offload
