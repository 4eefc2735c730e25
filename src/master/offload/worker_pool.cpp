#include "master/offload/worker_pool.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace tempo::offload {

namespace {

using Clock = std::chrono::steady_clock;

protocol::Response unavailable_response(uint64_t id, const std::string& why) {
  protocol::Response r;
  r.id = id;
  r.ok = false;
  r.unavailable = true;
  r.error = why;
  return r;
}

std::future<protocol::Response> ready(protocol::Response r) {
  std::promise<protocol::Response> p;
  p.set_value(std::move(r));
  return p.get_future();
}

int64_t inline_bytes(const protocol::Request& r) { return r.a.tensor.bytes() + r.b.tensor.bytes(); }

}  // namespace

WorkerPool::WorkerPool(std::vector<Member> members, WorkerPoolOptions options)
    : options_(std::move(options)) {
  if (members.empty()) throw std::invalid_argument("a worker pool needs at least one worker");
  for (auto& m : members) {
    if (!m.channel) throw std::invalid_argument("worker " + m.name + " has no channel");
    Slot s;
    s.name = std::move(m.name);
    s.channel = std::move(m.channel);
    s.reconnect = std::move(m.reconnect);
    members_.push_back(std::move(s));
  }
  const bool any_reconnect = std::any_of(members_.begin(), members_.end(),
                                         [](const Slot& s) { return bool(s.reconnect); });
  if (any_reconnect) readmitter_ = std::thread([this] { readmit_loop(); });
}

std::shared_ptr<WorkerPool> WorkerPool::of(WorkerChannel& channel, std::string name) {
  std::shared_ptr<WorkerChannel> unowned(&channel, [](WorkerChannel*) {});
  std::vector<Member> m;
  m.push_back({std::move(name), std::move(unowned), nullptr});
  return std::make_shared<WorkerPool>(std::move(m));
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (readmitter_.joinable()) readmitter_.join();
}

int WorkerPool::route(protocol::Request& r, int hint,
                      std::vector<std::pair<int, protocol::Handle>>* elsewhere) {
  const int n = size();
  auto live = [&](int w) {
    return w >= 0 && w < n && members_[static_cast<size_t>(w)].state == State::kLive;
  };
  int target = -1;
  // An operand cached on a live worker pins the request there (the common case: a backward
  // product against the forward's cached operands).
  for (const protocol::Operand* o : {&r.a, &r.b})
    if (o->is_cached_reference() && target < 0) {
      auto it = cached_.find(o->handle);
      if (it != cached_.end() && live(it->second.worker)) target = it->second.worker;
    }
  for (int i = 0; target < 0 && i < n; ++i) {
    const int w = ((hint % n) + n + i) % n;
    if (live(w)) target = w;
  }
  if (target < 0) return -1;

  auto freed = [&](protocol::Handle h) {
    return std::find(r.free_handles.begin(), r.free_handles.end(), h) != r.free_handles.end();
  };
  for (protocol::Operand* o : {&r.a, &r.b}) {
    if (!o->is_cached_reference()) continue;
    auto it = cached_.find(o->handle);
    if (it != cached_.end() && it->second.worker == target) continue;
    if (it == cached_.end() || it->second.tensor.empty()) return -2;
    // Its worker was lost: upload it again, cached under the same handle unless this request
    // is its last use.
    const protocol::Handle h = o->handle;
    *o = protocol::Operand::inline_tensor(it->second.tensor, freed(h) ? 0 : h);
    ++counters_.reuploaded;
  }
  // Only handles the target holds (or takes now) can be freed there; another live worker's
  // are freed by a request of their own (dispatch), or they would stay in its cache for good.
  std::vector<protocol::Handle> frees;
  for (protocol::Handle h : r.free_handles) {
    auto it = cached_.find(h);
    const bool taken_now =
        (r.a.handle == h && !r.a.tensor.empty()) || (r.b.handle == h && !r.b.tensor.empty());
    if (taken_now || (it != cached_.end() && it->second.worker == target))
      frees.push_back(h);
    else if (it != cached_.end() && live(it->second.worker))
      elsewhere->emplace_back(it->second.worker, h);
  }
  r.free_handles = std::move(frees);
  return target;
}

void WorkerPool::dispatch(Pending& p, int hint) {
  protocol::Request r = p.request_;  // shares the tensors' storage
  std::shared_ptr<WorkerChannel> channel;
  std::vector<std::pair<std::shared_ptr<WorkerChannel>, protocol::Request>> stray_frees;
  int target;
  {
    std::lock_guard lock(mu_);
    std::vector<std::pair<int, protocol::Handle>> elsewhere;
    target = route(r, hint, &elsewhere);
    for (const auto& [worker, handle] : elsewhere) {
      auto it = std::find_if(stray_frees.begin(), stray_frees.end(), [&](const auto& f) {
        return f.first == members_[static_cast<size_t>(worker)].channel;
      });
      if (it == stray_frees.end()) {
        protocol::Request free;
        free.op = protocol::Op::kFree;
        free.id = kPoolRequestIds | next_pool_request_++;
        stray_frees.emplace_back(members_[static_cast<size_t>(worker)].channel, std::move(free));
        it = std::prev(stray_frees.end());
      }
      it->second.free_handles.push_back(handle);
      cached_.erase(handle);
      ++counters_.frees_forwarded;
    }
    if (target == -2) {
      p.worker_ = -1;
      p.future_ = ready(unavailable_response(
          r.id, "an operand cached on a lost worker cannot be re-sent (no copy was kept)"));
      return;
    }
    if (target < 0) {
      std::string why = "no worker left";
      for (const Slot& s : members_)
        why += "; " + s.name + ": " +
               (s.state == State::kQuarantined ? "quarantined (returned a wrong result)"
                                               : (s.last_error.empty() ? "down" : s.last_error));
      p.worker_ = -1;
      p.future_ = ready(unavailable_response(r.id, why));
      return;
    }
    for (const protocol::Operand* o : {&r.a, &r.b})
      if (!o->tensor.empty() && o->handle != 0)
        cached_[o->handle] = {options_.keep_operands_for_failover ? o->tensor : BlindedTensor{},
                              target};
    Slot& s = members_[static_cast<size_t>(target)];
    channel = s.channel;
    p.generation_ = s.generation;
  }
  p.worker_ = target;
  p.submitted_ = Clock::now();
  p.cost_bytes_ = inline_bytes(r);
  // Forwarded frees are not awaited: a worker that cannot free a handle has lost it already.
  for (auto& [stray, free] : stray_frees) stray->submit(std::move(free));
  if (r.op == protocol::Op::kFree && r.free_handles.empty()) {
    protocol::Response ok;
    ok.id = r.id;
    p.future_ = ready(std::move(ok));  // nothing left to free there
    return;
  }
  p.future_ = channel->submit(std::move(r));
}

WorkerPool::Pending WorkerPool::submit(protocol::Request request, int hint) {
  Pending p;
  p.pool_ = this;
  p.request_ = std::move(request);
  dispatch(p, hint);
  return p;
}

protocol::Response WorkerPool::Pending::get() {
  for (;;) {
    protocol::Response r = future_.get();
    if (!r.unavailable || worker_ < 0) {
      if (worker_ >= 0) pool_->answered(*this, r);
      return r;
    }
    // The worker is gone (killed, hung past its deadline, disconnected): send it elsewhere.
    pool_->lost(worker_, generation_, r.error);
    {
      std::lock_guard lock(pool_->mu_);
      ++pool_->counters_.resent;
    }
    pool_->dispatch(*this, worker_ + 1);
  }
}

void WorkerPool::answered(Pending& p, const protocol::Response& r) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  const protocol::Request& q = p.request_;
  if (r.ok) {
    for (protocol::Handle h : q.free_handles) cached_.erase(h);
  } else {
    // Rejected: nothing it carried was cached.
    for (const protocol::Operand* o : {&q.a, &q.b})
      if (!o->tensor.empty() && o->handle != 0) cached_.erase(o->handle);
  }
  Slot& s = members_[static_cast<size_t>(p.worker_)];
  if (s.generation != p.generation_) return;
  // Requests of one worker run in order: its service time for this one began when it was
  // submitted or when the previous one finished, whichever came later.
  const auto began = std::max(p.submitted_, s.last_done);
  const double seconds = std::chrono::duration<double>(now - began).count();
  const double bytes = double(p.cost_bytes_ + r.result.bytes());
  if (seconds > 0 && bytes > 0 && r.ok) {
    const double rate = bytes / seconds;
    s.rate = s.rate == 0 ? rate : 0.8 * s.rate + 0.2 * rate;
  }
  s.last_done = now;
  ++s.answered;
}

void WorkerPool::lost(int worker, uint64_t generation, const std::string& why) {
  {
    std::lock_guard lock(mu_);
    Slot& s = members_[static_cast<size_t>(worker)];
    if (s.generation != generation || s.state != State::kLive) return;  // already handled
    s.state = State::kDead;
    s.last_error = why;
    ++counters_.deaths;
    for (auto& [h, c] : cached_)
      if (c.worker == worker) c.worker = -1;
  }
  cv_.notify_all();
}

std::string WorkerPool::quarantine(int index) {
  std::lock_guard lock(mu_);
  Slot& s = members_[static_cast<size_t>(index)];
  s.state = State::kQuarantined;
  for (auto& [h, c] : cached_)
    if (c.worker == index) c.worker = -1;
  return s.name;
}

void WorkerPool::readmit_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.readmit_interval);
    if (stopping_) break;
    for (size_t i = 0; i < members_.size() && !stopping_; ++i) {
      if (members_[i].state != State::kDead || !members_[i].reconnect) continue;
      Connector connect = members_[i].reconnect;
      lock.unlock();
      std::shared_ptr<WorkerChannel> fresh;
      std::string refusal;
      try {
        fresh = connect();
      } catch (const std::exception& e) {
        refusal = e.what();  // still down, or refused; try again later
      }
      lock.lock();
      if (!refusal.empty() && refusal != members_[i].last_refusal) {
        members_[i].last_refusal = refusal;
        const std::string line = "worker " + members_[i].name + " not re-admitted: " + refusal;
        lock.unlock();
        if (options_.log) options_.log(line);
        lock.lock();
      }
      if (!fresh || members_[i].state != State::kDead) continue;
      members_[i].last_refusal.clear();
      std::shared_ptr<WorkerChannel> old = std::move(members_[i].channel);
      members_[i].channel = std::move(fresh);
      members_[i].state = State::kLive;
      members_[i].rate = 0;
      members_[i].last_done = {};
      ++members_[i].generation;
      ++counters_.readmissions;
      lock.unlock();
      old.reset();  // its session is broken: closing it does not wait
      lock.lock();
    }
  }
}

std::vector<WorkerPool::Shard> WorkerPool::plan_shards(int64_t rows, int chunks_per_worker) {
  std::vector<int> live;
  std::vector<double> weight;
  {
    std::lock_guard lock(mu_);
    double measured = 0;
    int n_measured = 0;
    for (int i = 0; i < size(); ++i)
      if (members_[static_cast<size_t>(i)].state == State::kLive) {
        live.push_back(i);
        const double r = members_[static_cast<size_t>(i)].rate;
        weight.push_back(r);
        if (r > 0) measured += r, ++n_measured;
      }
    // Unmeasured workers count as the average of the measured ones (all equal at first).
    const double fill = n_measured ? measured / n_measured : 1.0;
    for (double& w : weight)
      if (w <= 0) w = fill;
  }
  std::vector<Shard> shards;
  if (live.empty() || rows <= 0) return shards;
  if (static_cast<int64_t>(live.size()) > rows) {
    live.resize(static_cast<size_t>(rows));
    weight.resize(live.size());
  }
  // Rows per worker by largest remainder, at least one each.
  const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
  const int64_t spare = rows - static_cast<int64_t>(live.size());
  std::vector<int64_t> share(live.size(), 1);
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    const double exact = double(spare) * weight[i] / total;
    const auto whole = static_cast<int64_t>(std::floor(exact));
    share[i] += whole;
    given += whole;
    remainders.push_back({exact - double(whole), i});
  }
  std::sort(remainders.begin(), remainders.end(), std::greater<>());
  for (size_t k = 0; given < spare; ++k, ++given) ++share[remainders[k % remainders.size()].second];
  // Each worker's rows in `chunks` consecutive shards, interleaved across workers so that every
  // worker gets its first chunk early.
  const int chunks = std::max(1, chunks_per_worker);
  std::vector<std::vector<int64_t>> sizes(live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    const int64_t c = std::min<int64_t>(chunks, share[i]);
    for (int64_t j = 0; j < c; ++j) sizes[i].push_back(share[i] / c + (j < share[i] % c ? 1 : 0));
  }
  int64_t at = 0;
  for (int j = 0; j < chunks; ++j)
    for (size_t i = 0; i < live.size(); ++i)
      if (static_cast<size_t>(j) < sizes[i].size()) {
        shards.push_back({live[i], at, at + sizes[i][static_cast<size_t>(j)]});
        at += sizes[i][static_cast<size_t>(j)];
      }
  return shards;
}

int WorkerPool::live_count() {
  std::lock_guard lock(mu_);
  return static_cast<int>(std::count_if(members_.begin(), members_.end(),
                                        [](const Slot& s) { return s.state == State::kLive; }));
}

bool WorkerPool::all_quarantined() {
  std::lock_guard lock(mu_);
  return std::all_of(members_.begin(), members_.end(),
                     [](const Slot& s) { return s.state == State::kQuarantined; });
}

protocol::Capabilities WorkerPool::capabilities() {
  std::shared_ptr<WorkerChannel> channel;
  {
    std::lock_guard lock(mu_);
    channel = members_.front().channel;
    for (const Slot& s : members_)
      if (s.state == State::kLive) {
        channel = s.channel;
        break;
      }
  }
  return channel->capabilities();
}

WorkerPool::Counters WorkerPool::counters() {
  std::lock_guard lock(mu_);
  return counters_;
}

std::string WorkerPool::describe() {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  for (size_t i = 0; i < members_.size(); ++i) {
    const Slot& s = members_[i];
    if (i) out << "; ";
    out << s.name << " "
        << (s.state == State::kLive   ? "live"
            : s.state == State::kDead ? "down"
                                      : "quarantined")
        << ", " << s.answered << " answered";
    if (s.rate > 0) out << ", " << std::lround(s.rate / 1e6) << " MB/s";
  }
  return out.str();
}

}  // namespace tempo::offload
