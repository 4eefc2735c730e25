// A live worker service against malformed streams: each is rejected with a precise gRPC status,
// and the worker goes on serving (a valid request succeeds afterwards).
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "common/remote/remote_worker_channel.h"
#include "common/remote/request_encoder.h"
#include "proto/tempo_worker.grpc.pb.h"
#include "worker/service/worker_server.h"

namespace tempo {
namespace {

namespace wire = tempo::wire::v1;
using protocol::Op;
using protocol::Operand;
using protocol::Request;

class GrpcBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    worker::service::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.worker.threads = 1;
    o.worker.limits.max_tensor_bytes = int64_t{16} << 20;
    o.worker.limits.max_cache_bytes = int64_t{32} << 20;
    o.log = [this](const std::string& l) {
      std::lock_guard lock(mu_);
      log_.push_back(l);
    };
    server_ = std::make_unique<worker::service::WorkerServer>(o);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  }

  /// Opens a raw session, sends `frames` (after a correct Hello unless `hello` is false), closes
  /// the sending side and returns the stream's final status and any response headers.
  grpc::Status raw(const std::vector<wire::ClientFrame>& frames, bool hello = true,
                   std::vector<wire::ResponseHeader>* responses = nullptr) {
    auto stub = wire::TempoWorker::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->Session(&ctx);
    if (hello) {
      wire::ClientFrame h;
      h.mutable_hello()->set_protocol_version(protocol::kProtocolVersion);
      stream->Write(h);
    }
    for (const auto& f : frames)
      if (!stream->Write(f)) break;
    stream->WritesDone();
    wire::ServerFrame s;
    while (stream->Read(&s))
      if (responses && s.has_response()) responses->push_back(s.response());
    return stream->Finish();
  }

  /// A valid request on a fresh session still computes the right product.
  void expect_healthy() {
    remote::RemoteWorkerOptions o;
    o.address = server_->address();
    remote::RemoteWorkerChannel c(o);
    Request r;
    r.id = 1;
    r.a = Operand::inline_tensor(BlindedTensor::allocate({1, 2}));
    r.b = Operand::inline_tensor(BlindedTensor::allocate({2, 1}));
    r.a.tensor.mutable_data()[0] = 2, r.a.tensor.mutable_data()[1] = 3;
    r.b.tensor.mutable_data()[0] = 5, r.b.tensor.mutable_data()[1] = 7;
    protocol::Response resp = c.submit(std::move(r)).get();
    ASSERT_TRUE(resp.ok) << resp.error;
    EXPECT_EQ(resp.result.data()[0], 31.f);
  }

  static wire::ClientFrame header(std::vector<int64_t> a_shape, std::vector<int64_t> b_shape,
                                  uint64_t id = 1) {
    wire::ClientFrame f;
    auto* h = f.mutable_request();
    h->set_id(id);
    h->set_op(static_cast<uint32_t>(Op::kMatMul));
    h->mutable_a()->set_has_data(true);
    for (auto d : a_shape) h->mutable_a()->add_shape(d);
    h->mutable_b()->set_has_data(true);
    for (auto d : b_shape) h->mutable_b()->add_shape(d);
    return f;
  }
  static wire::ClientFrame chunk(size_t bytes) {
    wire::ClientFrame f;
    f.mutable_chunk()->set_data(std::string(bytes, '\0'));
    return f;
  }

  static void expect_status(const grpc::Status& s, grpc::StatusCode code, const std::string& text) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(text), std::string::npos) << s.error_message();
  }

  std::mutex mu_;
  std::vector<std::string> log_;
  std::unique_ptr<worker::service::WorkerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcBadInput, GarbageBytesOnTheSocketLeaveTheWorkerServing) {
  std::mt19937 rng(1);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server_->port()));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string bytes;
    // Once with a valid HTTP/2 preface, so the garbage reaches the frame parser.
    if (attempt == 1) bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for (int i = 0; i < 65536; ++i) bytes += static_cast<char>(rng());
    (void)!write(fd, bytes.data(), bytes.size());
    close(fd);
  }
  expect_healthy();
}

TEST_F(GrpcBadInput, HugeDeclaredSizeIsRefusedBeforeAllocating) {
  expect_status(raw({header({INT_MAX, INT_MAX}, {INT_MAX, 1})}),
                grpc::StatusCode::RESOURCE_EXHAUSTED, "over the 16.0 MiB per-tensor limit");
  expect_healthy();
}

TEST_F(GrpcBadInput, OverflowingShapeIsRefused) {
  expect_status(raw({header({INT_MAX, INT_MAX, INT_MAX, INT_MAX, INT_MAX, INT_MAX}, {1, 1})}),
                grpc::StatusCode::RESOURCE_EXHAUSTED, "per-tensor limit");
  expect_healthy();
}

TEST_F(GrpcBadInput, NegativeDimensionIsRefused) {
  expect_status(raw({header({4, -2}, {2, 1})}), grpc::StatusCode::INVALID_ARGUMENT,
                "request 1 (matmul): operand a: dimension 1 is -2, outside 0..2147483647");
  expect_healthy();
}

TEST_F(GrpcBadInput, RankAboveSixIsRefused) {
  expect_status(raw({header({1, 1, 1, 1, 1, 1, 1}, {1, 1})}), grpc::StatusCode::INVALID_ARGUMENT,
                "operand a has rank 7, above the maximum 6");
  expect_healthy();
}

TEST_F(GrpcBadInput, ChunksRunningPastTheDeclaredShapesAreRefused) {
  // 2x2 and 2x2 floats: 32 bytes in all, but 40 are sent.
  expect_status(raw({header({2, 2}, {2, 2}), chunk(24), chunk(16)}),
                grpc::StatusCode::INVALID_ARGUMENT, "runs past the declared shapes (8 B missing)");
  expect_healthy();
}

TEST_F(GrpcBadInput, ChunksThatFallShortAreRefused) {
  expect_status(raw({header({2, 2}, {2, 2}), chunk(16), header({1, 1}, {1, 1}, 2)}),
                grpc::StatusCode::INVALID_ARGUMENT, "chunks must add up");
  expect_status(raw({header({2, 2}, {2, 2}), chunk(16)}), grpc::StatusCode::INVALID_ARGUMENT,
                "the stream ended in the middle of a request: request 1: 16 B of 32 B");
  expect_healthy();
}

TEST_F(GrpcBadInput, OversizedAndStrayChunksAreRefused) {
  expect_status(raw({chunk(8)}), grpc::StatusCode::INVALID_ARGUMENT,
                "chunk of 8 B with no request in progress");
  expect_status(raw({header({1024, 1024}, {1024, 1}), chunk(size_t{3} << 20 | 4)}),
                grpc::StatusCode::INVALID_ARGUMENT, "is outside 1 B..3.0 MiB");
  expect_healthy();
}

TEST_F(GrpcBadInput, HandshakeViolationsAreRefused) {
  wire::ClientFrame hello;
  hello.mutable_hello()->set_protocol_version(protocol::kProtocolVersion + 1);
  expect_status(raw({hello}, false), grpc::StatusCode::FAILED_PRECONDITION,
                "protocol version 2 is not supported: this worker speaks version 1");
  expect_status(raw({header({1, 1}, {1, 1})}, false), grpc::StatusCode::INVALID_ARGUMENT,
                "the first frame of a session must be Hello");
  hello.mutable_hello()->set_protocol_version(protocol::kProtocolVersion);
  expect_status(raw({hello}), grpc::StatusCode::INVALID_ARGUMENT, "Hello sent twice");
  expect_status(raw({wire::ClientFrame{}}), grpc::StatusCode::INVALID_ARGUMENT, "empty frame");
  expect_healthy();
}

TEST_F(GrpcBadInput, DataDeclaredForACachedOperandIsRefused) {
  wire::ClientFrame f = header({1, 1}, {1, 1});
  f.mutable_request()->mutable_a()->set_has_data(false);
  f.mutable_request()->mutable_a()->set_handle(3);
  expect_status(raw({f}), grpc::StatusCode::INVALID_ARGUMENT,
                "operand a declares a shape but no data");
  expect_healthy();
}

TEST_F(GrpcBadInput, UnknownHandlesAndBadShapesAreAnsweredInTheSessionWhichGoesOn) {
  wire::ClientFrame unknown = header({}, {2, 2}, 1);
  unknown.mutable_request()->mutable_a()->set_has_data(false);
  unknown.mutable_request()->mutable_a()->set_handle(42);
  wire::ClientFrame mismatch = header({2, 3}, {2, 2}, 2);  // inner dimensions 3 vs 2
  wire::ClientFrame unknown_op = header({1, 1}, {1, 1}, 3);
  unknown_op.mutable_request()->set_op(77);
  wire::ClientFrame good = header({1, 1}, {1, 1}, 4);
  std::vector<wire::ResponseHeader> rs;
  const grpc::Status s = raw(
      {unknown, chunk(16), mismatch, chunk(40), unknown_op, chunk(8), good, chunk(8)}, true, &rs);
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(rs[0].error().find("unknown handle 42"), std::string::npos) << rs[0].error();
  EXPECT_EQ(rs[1].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(rs[1].error().find("matmul"), std::string::npos) << rs[1].error();
  EXPECT_EQ(rs[2].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(rs[2].error().find("unknown op 77"), std::string::npos) << rs[2].error();
  EXPECT_EQ(rs[3].code(), 0) << rs[3].error();
  EXPECT_EQ(rs[3].id(), 4u);
  expect_healthy();
}

TEST_F(GrpcBadInput, SessionsBeyondTheLimitAreRefused) {
  server_.reset();
  worker::service::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.max_sessions = 1;
  o.log = [](const std::string&) {};
  server_ = std::make_unique<worker::service::WorkerServer>(o);
  remote::RemoteWorkerOptions c;
  c.address = server_->address();
  remote::RemoteWorkerChannel first(c);
  try {
    remote::RemoteWorkerChannel second(c);
    FAIL() << "a second session was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("RESOURCE_EXHAUSTED"), std::string::npos) << e.what();
  }
}

TEST_F(GrpcBadInput, BrokenStreamsAreLogged) {
  raw({chunk(8)});
  server_->shutdown();
  std::lock_guard lock(mu_);
  bool found = false;
  for (const auto& l : log_) found |= l.find("stream error: chunk of 8 B") != std::string::npos;
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace tempo
