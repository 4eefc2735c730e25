// The remote worker service: results equal the embedded worker's, sessions, TLS, deadlines, and a
// training run through `tempo worker`.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/remote/remote_worker_channel.h"
#include "worker/embedded_worker.h"
#include "worker/service/worker_server.h"
#include "worker_process.h"

namespace tempo {
namespace {

namespace fs = std::filesystem;
using protocol::Op;
using protocol::Operand;
using protocol::Request;
using protocol::Response;

BlindedTensor random_tensor(const Shape& s, std::mt19937& rng) {
  BlindedTensor t = BlindedTensor::allocate(s);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data()[i] = d(rng);
  return t;
}

worker::WorkerOptions small_worker() {
  worker::WorkerOptions o;
  o.threads = 2;
  o.limits.max_tensor_bytes = int64_t{64} << 20;
  o.limits.max_cache_bytes = int64_t{256} << 20;
  return o;
}

worker::service::ServerOptions server_options() {
  worker::service::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.worker = small_worker();
  o.log = [](const std::string&) {};
  return o;
}

remote::RemoteWorkerOptions client_for(const worker::service::WorkerServer& s) {
  remote::RemoteWorkerOptions o;
  o.address = s.address();
  o.connect_timeout = std::chrono::milliseconds(5000);
  return o;
}

Request matmul(uint64_t id, BlindedTensor a, BlindedTensor b, bool ta = false, bool tb = false) {
  Request r;
  r.id = id;
  r.op = Op::kMatMul;
  r.a = Operand::inline_tensor(std::move(a));
  r.b = Operand::inline_tensor(std::move(b));
  r.trans_a = ta;
  r.trans_b = tb;
  return r;
}

/// The same requests through both channels; requests are built twice from one seed, because a
/// channel takes ownership of the tensors.
std::vector<Request> conv_and_matmul_requests(uint64_t seed) {
  std::mt19937 rng(seed);
  std::vector<Request> rs;
  rs.push_back(matmul(1, random_tensor({33, 17}, rng), random_tensor({17, 9}, rng)));
  rs.push_back(matmul(2, random_tensor({17, 33}, rng), random_tensor({9, 17}, rng), true, true));
  Request bm;
  bm.id = 3;
  bm.op = Op::kBatchedMatMul;
  bm.a = Operand::inline_tensor(random_tensor({4, 12, 16}, rng));
  bm.b = Operand::inline_tensor(random_tensor({4, 12, 16}, rng));
  bm.trans_b = true;
  rs.push_back(std::move(bm));
  // Conv forward caches X (handle 10) and W (handle 11); the backward passes refer to them.
  const protocol::ConvParams p{2, 1, 1, 1};
  Request fwd;
  fwd.id = 4;
  fwd.op = Op::kConvForward;
  fwd.a = Operand::inline_tensor(random_tensor({3, 5, 9, 8}, rng), 10);
  fwd.b = Operand::inline_tensor(random_tensor({6, 5, 3, 3}, rng), 11);
  fwd.conv = p;
  rs.push_back(std::move(fwd));
  Request bwd_data;
  bwd_data.id = 5;
  bwd_data.op = Op::kConvBackwardData;
  bwd_data.a = Operand::inline_tensor(random_tensor({3, 6, 5, 8}, rng));
  bwd_data.b = Operand::cached(11);
  bwd_data.conv = p;
  bwd_data.out_shape = {3, 5, 9, 8};
  rs.push_back(std::move(bwd_data));
  Request bwd_w;
  bwd_w.id = 6;
  bwd_w.op = Op::kConvBackwardWeights;
  bwd_w.a = Operand::cached(10);
  bwd_w.b = Operand::inline_tensor(random_tensor({3, 6, 5, 8}, rng));
  bwd_w.conv = p;
  bwd_w.out_shape = {6, 5, 3, 3};
  bwd_w.free_handles = {10, 11};
  rs.push_back(std::move(bwd_w));
  return rs;
}

void expect_same(const Response& remote, const Response& local) {
  ASSERT_TRUE(local.ok) << local.error;
  ASSERT_TRUE(remote.ok) << remote.error;
  EXPECT_EQ(remote.id, local.id);
  ASSERT_EQ(remote.result.shape(), local.result.shape());
  for (int64_t i = 0; i < local.result.numel(); ++i)
    ASSERT_NEAR(remote.result.data()[i], local.result.data()[i],
                1e-5f * (1.f + std::abs(local.result.data()[i])))
        << "request " << local.id << " element " << i;
}

TEST(GrpcWorker, RemoteResultsEqualTheEmbeddedWorkersWithRequestsPipelined) {
  worker::service::WorkerServer server(server_options());
  remote::RemoteWorkerChannel remote(client_for(server));
  worker::EmbeddedWorker local(small_worker());
  EXPECT_EQ(remote.capabilities().backend, "cpu");
  EXPECT_EQ(remote.capabilities().protocol_version, protocol::kProtocolVersion);
  EXPECT_EQ(remote.capabilities().max_tensor_bytes, int64_t{64} << 20);
  EXPECT_EQ(remote.capabilities().precision, "fp32");
  EXPECT_FALSE(remote.session_id().empty());
  // All submitted before any is awaited: later requests use handles that earlier ones cache.
  std::vector<std::future<Response>> rf, lf;
  for (auto& r : conv_and_matmul_requests(7)) rf.push_back(remote.submit(std::move(r)));
  for (auto& r : conv_and_matmul_requests(7)) lf.push_back(local.submit(std::move(r)));
  for (size_t i = 0; i < rf.size(); ++i) expect_same(rf[i].get(), lf[i].get());
}

TEST(GrpcWorker, TensorsLargerThanOneGrpcMessageStreamInChunks) {
  worker::service::WorkerServer server(server_options());
  remote::RemoteWorkerChannel remote(client_for(server));
  worker::EmbeddedWorker local(small_worker());
  std::mt19937 rng(3);
  // 12.5 MiB operand and 5 MiB result: several chunks each way, beyond gRPC's 4 MiB message limit.
  BlindedTensor a = random_tensor({5120, 640}, rng), b = random_tensor({640, 256}, rng);
  Response r = remote.submit(matmul(1, a.clone(), b.clone())).get();
  Response l = local.submit(matmul(1, std::move(a), std::move(b))).get();
  expect_same(r, l);
}

TEST(GrpcWorker, HandlesArePrivateToTheirSession) {
  worker::service::WorkerServer server(server_options());
  remote::RemoteWorkerChannel first(client_for(server)), second(client_for(server));
  EXPECT_NE(first.session_id(), second.session_id());
  std::mt19937 rng(5);
  Request put = matmul(1, random_tensor({4, 4}, rng), random_tensor({4, 4}, rng));
  put.a.handle = 7;
  ASSERT_TRUE(first.submit(std::move(put)).get().ok);
  // The second master cannot use (or even detect) the first one's handle 7...
  Request use;
  use.id = 2;
  use.a = Operand::cached(7);
  use.b = Operand::inline_tensor(random_tensor({4, 4}, rng));
  Response r = second.submit(use).get();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("NOT_FOUND"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("unknown handle 7"), std::string::npos) << r.error;
  // ...and may cache its own handle 7 without a clash.
  Request own = matmul(3, random_tensor({4, 4}, rng), random_tensor({4, 4}, rng));
  own.a.handle = 7;
  EXPECT_TRUE(second.submit(std::move(own)).get().ok);
  EXPECT_TRUE(first.submit(use).get().ok);
}

TEST(GrpcWorker, ARejectedRequestLeavesTheSessionUsable) {
  worker::service::WorkerServer server(server_options());
  remote::RemoteWorkerChannel remote(client_for(server));
  std::mt19937 rng(9);
  Response bad =
      remote.submit(matmul(1, random_tensor({3, 4}, rng), random_tensor({5, 2}, rng))).get();
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("INVALID_ARGUMENT"), std::string::npos) << bad.error;
  Response good =
      remote.submit(matmul(2, random_tensor({3, 4}, rng), random_tensor({4, 2}, rng))).get();
  EXPECT_TRUE(good.ok) << good.error;
  EXPECT_TRUE(remote.broken_reason().empty());
}

TEST(GrpcWorker, OperandOverTheWorkersLimitIsRefusedWithoutBreakingTheSession) {
  auto opts = server_options();
  opts.worker.limits.max_tensor_bytes = 1 << 20;
  worker::service::WorkerServer server(opts);
  remote::RemoteWorkerChannel remote(client_for(server));
  std::mt19937 rng(1);
  Response r =
      remote.submit(matmul(1, random_tensor({1024, 512}, rng), random_tensor({512, 2}, rng))).get();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("over the per-tensor limit"), std::string::npos) << r.error;
  EXPECT_TRUE(
      remote.submit(matmul(2, random_tensor({8, 8}, rng), random_tensor({8, 8}, rng))).get().ok);
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(GrpcWorker, UnreachableWorkerIsAClearError) {
  remote::RemoteWorkerOptions o;
  o.address = "127.0.0.1:" + std::to_string(free_port());
  o.connect_timeout = std::chrono::milliseconds(300);
  try {
    remote::RemoteWorkerChannel c(o);
    FAIL() << "connected to nothing";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach worker " + o.address), std::string::npos)
        << e.what();
  }
}

TEST(GrpcWorker, WrongProtocolVersionIsRefusedByName) {
  worker::service::WorkerServer server(server_options());
  auto o = client_for(server);
  o.protocol_version = 99;
  try {
    remote::RemoteWorkerChannel c(o);
    FAIL() << "the worker accepted protocol version 99";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("FAILED_PRECONDITION"), std::string::npos) << m;
    EXPECT_NE(m.find("protocol version 99 is not supported"), std::string::npos) << m;
  }
}

TEST(GrpcWorker, ExpiredRequestDeadlineCancelsTheSessionWithAClearError) {
  worker::service::WorkerServer server(server_options());
  auto o = client_for(server);
  o.request_timeout = std::chrono::milliseconds(1);
  remote::RemoteWorkerChannel remote(o);
  std::mt19937 rng(2);
  // ~2 GFLOP and 16 MiB each way: far more than a millisecond.
  Response r =
      remote.submit(matmul(1, random_tensor({1024, 1024}, rng), random_tensor({1024, 1024}, rng)))
          .get();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("got no response within"), std::string::npos) << r.error;
  Response later =
      remote.submit(matmul(2, random_tensor({2, 2}, rng), random_tensor({2, 2}, rng))).get();
  EXPECT_FALSE(later.ok);
  EXPECT_NE(later.error.find("got no response within"), std::string::npos) << later.error;
}

TEST(GrpcWorker, PlaintextIsRefusedOnNetworkAddressesUnlessInsecure) {
  auto o = server_options();
  o.listen = "0.0.0.0:0";
  EXPECT_THROW(worker::service::WorkerServer s(o), std::invalid_argument);
  o.insecure = true;
  EXPECT_NO_THROW(worker::service::WorkerServer s(o));
  remote::RemoteWorkerOptions c;
  c.address = "192.0.2.1:5000";  // TEST-NET-1: never contacted, refused before connecting
  EXPECT_THROW(remote::RemoteWorkerChannel ch(c), std::invalid_argument);
}

// --- mutual TLS with a throwaway CA made by the openssl CLI ---

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

/// Makes ca.pem, and NAME.pem/NAME.key signed by it (SAN 127.0.0.1 and localhost).
bool make_cert(const fs::path& d, const std::string& ca, const std::string& name) {
  const std::string p = d.string() + "/";
  std::ofstream(p + name + ".ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  return sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" +
            name + " -keyout " + p + name + ".key -out " + p + name + ".csr") &&
         sh("openssl x509 -req -in " + p + name + ".csr -CA " + p + ca + ".pem -CAkey " + p + ca +
            ".key -CAcreateserial -days 1 -extfile " + p + name + ".ext -out " + p + name + ".pem");
}
bool make_ca(const fs::path& d, const std::string& ca) {
  const std::string p = d.string() + "/";
  return sh(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "
      "/CN=" +
      ca + " -keyout " + p + ca + ".key -out " + p + ca + ".pem");
}

TEST(GrpcWorker, MutualTlsServesCertifiedClientsAndRejectsOthers) {
  const fs::path d = fs::temp_directory_path() / ("tempo_grpc_tls_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  ASSERT_TRUE(make_ca(d, "ca") && make_cert(d, "ca", "worker") && make_cert(d, "ca", "master") &&
              make_ca(d, "rogue_ca") && make_cert(d, "rogue_ca", "rogue"))
      << "openssl failed";
  const std::string p = d.string() + "/";
  auto so = server_options();
  so.tls = {p + "ca.pem", p + "worker.pem", p + "worker.key"};
  worker::service::WorkerServer server(so);
  EXPECT_TRUE(server.tls());

  auto co = client_for(server);
  co.tls = {p + "ca.pem", p + "master.pem", p + "master.key"};
  {
    remote::RemoteWorkerChannel c(co);
    std::mt19937 rng(4);
    Response r = c.submit(matmul(1, random_tensor({5, 3}, rng), random_tensor({3, 2}, rng))).get();
    EXPECT_TRUE(r.ok) << r.error;
  }
  co.connect_timeout = std::chrono::milliseconds(2000);
  co.tls = {p + "ca.pem", "", ""};  // no client certificate
  EXPECT_THROW(remote::RemoteWorkerChannel c(co), std::runtime_error);
  co.tls = {p + "ca.pem", p + "rogue.pem", p + "rogue.key"};  // certificate from another CA
  EXPECT_THROW(remote::RemoteWorkerChannel c(co), std::runtime_error);
  co.tls = {};  // plaintext to a TLS worker
  EXPECT_THROW(remote::RemoteWorkerChannel c(co), std::runtime_error);
  EXPECT_EQ(server.sessions(), 0);
  fs::remove_all(d);
}

// --- `tempo worker` as a child process, driven by `tempo train` ---

/// The startup log of `tempo worker --listen 127.0.0.1:0` run with the environment prefix `env`.
std::string worker_startup_log(const std::string& env) {
  std::string out;
  FILE* p = popen(("env " + env + " timeout -s TERM 2 " + std::string(TEMPO_BINARY) +
                   " worker --listen 127.0.0.1:0 2>&1")
                      .c_str(),
                  "r");
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  pclose(p);
  return out;
}

TEST(GrpcWorker, TempoWorkerSleepsWhenIdleUnlessOmpWaitPolicyIsSet) {
  EXPECT_NE(worker_startup_log("-u OMP_WAIT_POLICY").find("OpenMP waits passive)"),
            std::string::npos);
  EXPECT_NE(worker_startup_log("OMP_WAIT_POLICY=active").find("OpenMP waits active)"),
            std::string::npos);
}

TEST(GrpcWorker, TrainingThroughATempoWorkerProcessFollowsTheEmbeddedLossCurve) {
  Child w = start_worker("--threads 1");
  ASSERT_FALSE(w.address.empty()) << "tempo worker did not start";
  const fs::path d = fs::temp_directory_path() / ("tempo_grpc_train_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const std::string common =
      "train --mode tempo --dataset synthetic --model cnn --batch-size 32 --limit-train 128 "
      "--limit-test 32 --threads 1 --lr 0.02 --epochs 1 --seed 3 --metrics-out ";
  auto [rs, rout] = run(common + (d / "remote.jsonl").string() + " --worker " + w.address);
  auto [es, eout] = run(common + (d / "embedded.jsonl").string());
  EXPECT_EQ(stop(w), 0);
  ASSERT_EQ(rs, 0) << rout;
  ASSERT_EQ(es, 0) << eout;
  EXPECT_NE(rout.find("\"worker\":\"remote " + w.address), std::string::npos) << rout;
  if (!std::getenv("OMP_WAIT_POLICY")) {
    // A master whose worker shares its cores restarts itself with idle threads that sleep.
    EXPECT_NE(rout.find("\"omp_wait_policy\":\"passive\""), std::string::npos) << rout;
    EXPECT_NE(eout.find("\"omp_wait_policy\":\"default\""), std::string::npos) << eout;
  }
  const auto r = losses(d / "remote.jsonl"), e = losses(d / "embedded.jsonl");
  ASSERT_EQ(r.size(), 4u);
  ASSERT_EQ(e.size(), r.size());
  for (size_t i = 0; i < r.size(); ++i)
    EXPECT_NEAR(r[i], e[i], 1e-2 * std::abs(e[i])) << "step " << i;
  fs::remove_all(d);
}

}  // namespace
}  // namespace tempo
