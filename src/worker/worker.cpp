#include "worker/worker.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <unordered_set>
#include <utility>

#include "worker/op_shapes.h"

namespace tempo::worker {

using protocol::Handle;
using protocol::Op;

namespace {

bool is_known_op(Op op) {
  switch (op) {
    case Op::kMatMul:
    case Op::kBatchedMatMul:
    case Op::kConvForward:
    case Op::kConvBackwardData:
    case Op::kConvBackwardWeights:
    case Op::kFree:
      return true;
  }
  return false;
}

std::string operand_label(Op op, char which) {
  return std::string(protocol::op_name(op)) + ": operand " + which + " (" +
         operand_role(op, which) + ")";
}

const protocol::Operand& operand(const protocol::Request& r, char which) {
  return which == 'a' ? r.a : r.b;
}

/// An inline tensor, which a zero-sized shape also makes (its buffer is then empty).
bool is_inline(const protocol::Operand& o) { return !o.tensor.empty() || o.tensor.rank() > 0; }

protocol::Response error_response(uint64_t id, std::string message) {
  protocol::Response r;
  r.id = id;
  r.ok = false;
  r.error = std::move(message);
  return r;
}

}  // namespace

std::string format_bytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024.0 && unit < 5) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  return buf;
}

/// An operand after lookup: the tensor to compute on and whether to cache it afterwards.
struct Worker::Resolved {
  const BlindedTensor* tensor = nullptr;
  Handle put = 0;  ///< non-zero: an inline operand to cache under this handle
  int64_t bytes = 0;
};

Worker::Worker(std::unique_ptr<Backend> backend, WorkerLimits limits,
               std::unique_ptr<ViewRecorder> recorder)
    : backend_(std::move(backend)),
      limits_(limits),
      recorder_(std::move(recorder)),
      backend_name_(backend_->name()),
      device_(backend_->device()) {}

Worker::~Worker() = default;

protocol::Capabilities Worker::capabilities() const {
  protocol::Capabilities c;
  c.backend = backend_name_;
  c.device = device_;
  c.max_cache_bytes = limits_.max_cache_bytes;
  c.max_tensor_bytes = limits_.max_tensor_bytes;
  c.precision = precision_name(backend_->precision());
  return c;
}

WorkerCounters Worker::counters() const {
  WorkerCounters c;
  c.requests = requests_.load();
  c.failed = failed_.load();
  c.bytes_in = bytes_in_.load();
  c.bytes_out = bytes_out_.load();
  c.cache_bytes = cache_bytes_.load();
  c.cache_peak_bytes = cache_peak_bytes_.load();
  c.cached_tensors = cached_tensors_.load();
  c.busy_ns = busy_ns_.load();
  c.faults_injected = fault_ ? fault_->faults_injected() : 0;
  return c;
}

std::string Worker::resolve(const protocol::Request& r, char which, Resolved* out) const {
  const protocol::Operand& o = operand(r, which);
  const std::string label = operand_label(r.op, which);
  if (is_inline(o)) {
    const Shape& s = o.tensor.shape();
    int64_t bytes = 0;
    if (auto e = check_dims(s, label, &bytes); !e.empty()) return e;
    if (bytes > limits_.max_tensor_bytes)
      return label + " " + s.to_string() + " is " + format_bytes(bytes) + ", over the " +
             format_bytes(limits_.max_tensor_bytes) + " per-tensor limit";
    const int64_t declared = bytes / static_cast<int64_t>(sizeof(float));
    if (o.tensor.numel() != declared)
      return label + ": shape " + s.to_string() + " declares " + std::to_string(declared) +
             " elements but " + std::to_string(o.tensor.numel()) + " were sent";
    if (o.handle != 0) {
      auto it = cache_.find(o.handle);
      if (it != cache_.end())
        return label + ": handle " + std::to_string(o.handle) + " is already in use (it holds " +
               it->second.shape().to_string() + "); free it before reusing the handle";
    }
    *out = {&o.tensor, o.handle, bytes};
    return "";
  }
  if (o.handle == 0) return label + " is missing: no inline tensor and no handle";
  auto it = cache_.find(o.handle);
  if (it == cache_.end())
    return label + " refers to unknown handle " + std::to_string(o.handle) +
           " (never cached, or already freed)";
  *out = {&it->second, 0, it->second.bytes()};
  return "";
}

std::string Worker::validate_free_list(const protocol::Request& r, const Resolved* a,
                                       const Resolved* b) const {
  const std::string name = protocol::op_name(r.op);
  std::unordered_set<Handle> seen;
  for (Handle h : r.free_handles) {
    if (h == 0) return name + ": free_handles contains handle 0, which names no operand";
    if (!seen.insert(h).second)
      return name + ": free_handles lists handle " + std::to_string(h) + " more than once";
    const bool put_now = (a && a->put == h) || (b && b->put == h);
    if (!put_now && !cache_.contains(h))
      return name + ": free_handles names unknown handle " + std::to_string(h) +
             " (never cached, or already freed)";
  }
  return "";
}

std::string Worker::validate(const protocol::Request& r, Resolved* a, Resolved* b,
                             Shape* result) const {
  const std::string name = protocol::op_name(r.op);
  if (auto e = resolve(r, 'a', a); !e.empty()) return e;
  if (auto e = resolve(r, 'b', b); !e.empty()) return e;
  if (a->put != 0 && a->put == b->put)
    return name + ": operands a and b are both to be cached under handle " + std::to_string(a->put);
  if (auto e = check_op_shapes(r, a->tensor->shape(), b->tensor->shape(), result); !e.empty())
    return e;
  int64_t result_bytes = 0;
  if (auto e = check_dims(*result, name + ": result", &result_bytes); !e.empty()) return e;
  if (result_bytes > limits_.max_tensor_bytes)
    return name + ": result " + result->to_string() + " would be " + format_bytes(result_bytes) +
           ", over the " + format_bytes(limits_.max_tensor_bytes) + " per-tensor limit";
  if (auto e = validate_free_list(r, a, b); !e.empty()) return e;
  // Operands are freed only after the op, so the new ones must fit next to everything cached.
  int64_t in_use = cache_bytes_.load();
  for (const Resolved* x : {a, b}) {
    if (x->put == 0) continue;
    if (x->bytes > limits_.max_cache_bytes - in_use)
      return name + ": cache full: putting handle " + std::to_string(x->put) + " (" +
             format_bytes(x->bytes) + ") would exceed the " +
             format_bytes(limits_.max_cache_bytes) + " bound; " + format_bytes(in_use) + " in use";
    in_use += x->bytes;
  }
  return "";
}

void Worker::apply_cache_changes(const protocol::Request& r, const Resolved& a, const Resolved& b) {
  int64_t bytes = cache_bytes_.load();
  if (a.put != 0) {
    cache_.emplace(a.put, r.a.tensor);
    bytes += a.bytes;
  }
  if (b.put != 0) {
    cache_.emplace(b.put, r.b.tensor);
    bytes += b.bytes;
  }
  if (bytes > cache_peak_bytes_.load()) cache_peak_bytes_.store(bytes);
  for (Handle h : r.free_handles) {
    auto it = cache_.find(h);
    backend_->release(it->second);
    bytes -= it->second.bytes();
    cache_.erase(it);
  }
  cache_bytes_.store(bytes);
  cached_tensors_.store(static_cast<int64_t>(cache_.size()));
}

protocol::Response Worker::run(protocol::Request& r) {
  if (!is_known_op(r.op))
    return error_response(r.id, "unknown op " + std::to_string(static_cast<uint32_t>(r.op)));
  const std::string name = protocol::op_name(r.op);

  if (r.op == Op::kFree) {
    if (is_inline(r.a) || r.a.handle != 0 || is_inline(r.b) || r.b.handle != 0)
      return error_response(r.id, "free: takes no operands (list the handles in free_handles)");
    if (auto e = validate_free_list(r, nullptr, nullptr); !e.empty())
      return error_response(r.id, e);
    apply_cache_changes(r, Resolved{}, Resolved{});
    protocol::Response resp;
    resp.id = r.id;
    return resp;
  }

  Resolved a, b;
  Shape result_shape;
  if (auto e = validate(r, &a, &b, &result_shape); !e.empty()) return error_response(r.id, e);

  if (recorder_) {
    try {
      if (is_inline(r.a)) recorder_->record(r.id, r.op, 'a', r.a.handle, r.a.tensor);
      if (is_inline(r.b)) recorder_->record(r.id, r.op, 'b', r.b.handle, r.b.tensor);
    } catch (const std::exception& e) {
      return error_response(r.id, name + ": " + e.what());
    }
  }

  protocol::Response resp;
  resp.id = r.id;
  // Operands about to enter the cache are retained first, so that a device backend keeps the
  // copy this op makes (the backward pass then finds it there); undone if the op fails.
  const BlindedTensor* retained[2] = {};
  int n_retained = 0;
  auto undo_retain = [&] {
    for (int i = 0; i < n_retained; ++i) backend_->release(*retained[i]);
  };
  try {
    for (const Resolved* x : {&a, &b}) {
      if (x->put == 0) continue;
      backend_->retain(*x->tensor);
      retained[n_retained++] = x->tensor;
    }
    const BlindedTensor& x = *a.tensor;
    const BlindedTensor& y = *b.tensor;
    switch (r.op) {
      case Op::kMatMul:
        resp.result = backend_->matmul(x, y, r.trans_a, r.trans_b);
        break;
      case Op::kBatchedMatMul:
        resp.result = backend_->batched_matmul(x, y, r.trans_a, r.trans_b);
        break;
      case Op::kConvForward:
        resp.result = backend_->conv_forward(x, y, r.conv);
        break;
      case Op::kConvBackwardData:
        resp.result = backend_->conv_backward_data(x, y, r.conv, result_shape);
        break;
      case Op::kConvBackwardWeights:
        resp.result = backend_->conv_backward_weights(x, y, r.conv, result_shape);
        break;
      case Op::kFree:
        break;
    }
  } catch (const std::exception& e) {
    undo_retain();
    return error_response(r.id, name + ": backend " + backend_name_ + " failed: " + e.what());
  }
  if (resp.result.shape() != result_shape) {
    undo_retain();
    return error_response(r.id, name + ": backend " + backend_name_ + " returned " +
                                    resp.result.shape().to_string() + " instead of " +
                                    result_shape.to_string());
  }
  // Testing aid: corrupt the (validated) result before anything may free the operands.
  if (fault_) fault_->apply(r, *a.tensor, *b.tensor, &resp.result);
  apply_cache_changes(r, a, b);
  bytes_out_ += static_cast<uint64_t>(resp.result.bytes());
  return resp;
}

protocol::Response Worker::execute(protocol::Request request) {
  std::lock_guard lock(mu_);
  const auto start = std::chrono::steady_clock::now();
  bytes_in_ += static_cast<uint64_t>(request.a.tensor.bytes() + request.b.tensor.bytes());
  protocol::Response resp;
  try {
    resp = run(request);
  } catch (const std::exception& e) {
    // Only allocation failures get here (e.g. building a message): still an answer, not a crash.
    resp = error_response(
        request.id, std::string(protocol::op_name(request.op)) + ": internal error: " + e.what());
  }
  ++requests_;
  if (!resp.ok) ++failed_;
  busy_ns_ += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
  return resp;
}

std::unique_ptr<Worker> make_worker(const WorkerOptions& options) {
  std::unique_ptr<ViewRecorder> recorder;
  if (!options.record_view_dir.empty())
    recorder = std::make_unique<ViewRecorder>(options.record_view_dir);
  auto worker = std::make_unique<Worker>(
      make_backend(options.backend, options.threads, parse_precision(options.precision)),
      options.limits, std::move(recorder));
  if (!options.fault.empty())
    worker->set_fault_injector(std::make_unique<FaultInjector>(FaultSpec::parse(options.fault)));
  return worker;
}

}  // namespace tempo::worker
