// deploy/gramine/tempo.manifest.template renders (plain substitution, no Gramine needed) into a
// manifest with what an SGX master needs: entrypoint, measured arguments, trusted files, an
// encrypted checkpoint mount, enclave size and threads, DCAP attestation.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(TEMPO_SOURCE_DIR) / "deploy/gramine";

/// `p` in single quotes for the shell. Built piecewise: GCC 12 reports a false -Wrestrict on
/// `"literal" + std::string`.
std::string quoted(const fs::path& p) {
  std::string s(1, '\'');
  s += p.string();
  s += "' ";
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class GramineManifest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = fs::temp_directory_path() / ("tempo_manifest_" + std::to_string(::getpid()));
    fs::create_directories(out_);
  }
  void TearDown() override { fs::remove_all(out_); }

  int render(const std::string& extra = "") {
    std::string cmd = quoted(kDir / "render.sh");
    cmd += quoted(kDir / "tempo.manifest.template");
    cmd += quoted(out_ / "tempo.manifest");
    cmd +=
        "tempo_binary=/opt/tempo/bin/tempo 'tempo_argv=[\"tempo\", \"train\", \"--data\", "
        "\"/data/fm.tds\"]' gramine.libos=/usr/lib/gramine/libsysdb.so "
        "'gramine.runtimedir()=/usr/lib/gramine/runtime/glibc' arch_libdir=/lib/x86_64-linux-gnu "
        "data_dir=/srv/data checkpoint_dir=/srv/ckpt key_dir=/srv/keys enclave_size=8G "
        "max_threads=64 omp_threads=16 log_level=error ";
    cmd += extra;
    cmd += " 2>/dev/null";
    return std::system(cmd.c_str());
  }
  fs::path out_;
};

TEST_F(GramineManifest, RendersWithEveryRequiredSetting) {
  ASSERT_EQ(render(), 0);
  const std::string m = slurp(out_ / "tempo.manifest");
  EXPECT_EQ(m.find("{{"), std::string::npos);
  for (const char* needle :
       {"libos.entrypoint = \"/opt/tempo/bin/tempo\"", "sgx.remote_attestation = \"dcap\"",
        "sgx.enclave_size = \"8G\"", "sgx.max_threads = 64", "sgx.debug = false",
        "\"file:/opt/tempo/bin/tempo\",", "type = \"encrypted\", path = \"/checkpoints\"",
        "key_name = \"_sgx_mrenclave\"", "loader.argv = [\"tempo\", \"train\""})
    EXPECT_NE(m.find(needle), std::string::npos) << needle;
}

TEST_F(GramineManifest, RenderedManifestIsValidToml) {
  if (std::system("/usr/bin/python3 -c 'import tomllib' 2>/dev/null") != 0)
    GTEST_SKIP() << "no Python 3.11 tomllib";
  ASSERT_EQ(render(), 0);
  std::string check =
      "/usr/bin/python3 -c \"import tomllib,sys; d=tomllib.load(open(sys.argv[1],'rb')); "
      "s=d['sgx']; m=d['fs']['mounts']; "
      "assert s['remote_attestation']=='dcap'; assert s['max_threads']==64; "
      "assert any(x.get('type')=='encrypted' and x['path']=='/checkpoints' for x in m); "
      "assert 'file:/opt/tempo/bin/tempo' in s['trusted_files']\" ";
  check += quoted(out_ / "tempo.manifest");
  EXPECT_EQ(std::system(check.c_str()), 0);
}

TEST_F(GramineManifest, UnsetPlaceholdersFailTheRender) {
  std::string cmd = quoted(kDir / "render.sh");
  cmd += quoted(kDir / "tempo.manifest.template");
  cmd += quoted(out_ / "x");
  cmd += "tempo_binary=/x 2>/dev/null";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_FALSE(fs::exists(out_ / "x"));
}

}  // namespace
