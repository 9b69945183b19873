// The model file format: round trips, the documented byte layout, and refusal of every damaged
// or forged file with a precise message and without allocating what the file claims.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "io/model_file.h"
#include "support.h"

// Records the largest single allocation while tracking is on, to prove that a reader refuses a
// forged size before it allocates for it.
namespace {
std::atomic<bool> g_tracking{false};
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_tracking.load(std::memory_order_relaxed)) {
    std::size_t prev = g_largest_allocation.load();
    while (n > prev && !g_largest_allocation.compare_exchange_weak(prev, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// Out of line, or GCC pairs the inlined free() with operator new and warns of a mismatch.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace cae::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// Builds a file byte by byte as docs/model-format.md describes it, independently of the
// encoder, so that the tests can check the encoder against the document and forge files.
class HandFile {
 public:
  HandFile& raw(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  HandFile& u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    return *this;
  }
  HandFile& u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    return *this;
  }
  HandFile& str(std::string_view s) { return u32(std::uint32_t(s.size())).raw(s); }
  HandFile& pad64(std::uint8_t fill = 0) {
    while (b.size() % 64) b.push_back(fill);
    return *this;
  }
  HandFile& f32(float x) { return u32(std::bit_cast<std::uint32_t>(x)); }
  HandFile& header(std::uint32_t version = 1) { return raw("CAEMODEL").u32(version).u64(0); }
  // Tensor record up to and including the padding.
  HandFile& tensor_head(std::string_view name, std::vector<std::int64_t> dims,
                        std::uint64_t byte_length, std::uint32_t dtype = 1) {
    str(name).u32(std::uint32_t(dims.size()));
    for (auto d : dims) u64(std::uint64_t(d));
    return u32(dtype).u64(byte_length).pad64();
  }
  // Patches the total length and appends a correct CRC-32.
  Bytes finish() const {
    Bytes out = b;
    std::uint64_t total = out.size() + 4;
    for (int i = 0; i < 8; ++i) out[12 + i] = std::uint8_t(total >> (8 * i));
    std::uint32_t crc = std::uint32_t(crc32(0, out.data(), uInt(out.size())));
    for (int i = 0; i < 4; ++i) out.push_back(std::uint8_t(crc >> (8 * i)));
    return out;
  }
  Bytes b;
};

// Recomputes the checksum of a file edited in place.
void fix_crc(Bytes& bytes) {
  std::uint32_t crc = std::uint32_t(crc32(0, bytes.data(), uInt(bytes.size() - 4)));
  for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = std::uint8_t(crc >> (8 * i));
}

std::string decode_error(const Bytes& bytes, const std::string& what = "forged.cae") {
  try {
    decode_model_file(bytes, what);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "decoding did not throw";
  return "";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp on the null data() of an empty vector is undefined, even for 0 bytes (UBSan).
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void expect_same(const ModelFile& a, const ModelFile& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.meta, b.meta);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape) << a.tensors[i].name;
    EXPECT_TRUE(same_bits(a.tensors[i].data, b.tensors[i].data)) << a.tensors[i].name;
  }
}

Bytes file_bytes(const std::string& path) { return cae::read_file(path); }

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

// The file of the documented example (docs/model-format.md, "Example").
ModelFile doc_example() {
  ModelFile f;
  f.kind = "model";
  f.spec = "a\nb";
  f.meta = {{"k", "v"}};
  f.tensors = {{"w", {2}, {1.0f, -2.0f}}};
  return f;
}

// A file with every kind of tensor the format allows.
ModelFile rich_file() {
  ModelFile f;
  f.kind = "checkpoint";
  f.spec = "input 28x28x1\nconv 32 3x3 relu\n  maxpool 2\n\ttconv 1 3x3 sigmoid \xc3\x97 2\n";
  f.meta = {{"zeta", "last letter first"}, {"alpha", ""}, {"mid", "two\nlines"}, {"step", "42"}};
  f.tensors.push_back({"op0.weight", {32, 1, 3, 3}, test::random_floats(288, 1)});
  f.tensors.push_back({"op0.bias", {32}, test::random_floats(32, 2)});
  f.tensors.push_back({"adam.step", {}, {7.0f}});
  f.tensors.push_back({"empty", {0, 3}, {}});
  f.tensors.push_back({"rank8", {1, 2, 1, 1, 1, 1, 1, 3}, test::random_floats(6, 3)});
  const float nan_payload = std::bit_cast<float>(std::uint32_t(0x7fc12345));
  f.tensors.push_back(
      {"specials",
       {7},
       {nan_payload, -0.0f, std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
        std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest()}});
  return f;
}

TEST(ModelFile, EncoderWritesTheDocumentedExampleByteForByte) {
  HandFile h;
  h.header().str("model").str("a\nb").u32(1).str("k").str("v").u32(1);
  h.str("w").u32(1).u64(2).u32(1).u64(8);
  EXPECT_EQ(h.b.size(), 83u);  // the doc's table: padding starts at 83
  h.pad64();
  ASSERT_EQ(h.b.size(), 128u);
  h.raw(std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8));  // 1.0f, -2.0f
  Bytes expected = h.finish();
  ASSERT_EQ(expected.size(), 140u);
  EXPECT_EQ(expected[12], 0x8c);

  Bytes encoded = encode_model_file(doc_example());
  EXPECT_EQ(encoded, expected);
  expect_same(decode_model_file(expected, "hand.cae"), doc_example());
}

TEST(ModelFile, TensorDataIsAlignedTo64BytesFromTheFileStart) {
  ModelFile f = rich_file();
  Bytes bytes = encode_model_file(f);
  // Find each tensor's data by its bytes; every occurrence must start on a 64-byte boundary.
  for (const NamedTensor& t : f.tensors) {
    if (t.data.empty()) continue;
    auto* p = reinterpret_cast<const std::uint8_t*>(t.data.data());
    auto it = std::search(bytes.begin(), bytes.end(), p, p + t.data.size() * 4);
    ASSERT_NE(it, bytes.end()) << t.name;
    EXPECT_EQ((it - bytes.begin()) % 64, 0) << t.name;
  }
}

TEST(ModelFile, RoundTripKeepsEveryTensorBitAndTheMetaOrder) {
  std::string path = test::scratch_dir() + "/rich.cae";
  ModelFile f = rich_file();
  write_model_file(path, f);
  ModelFile back = read_model_file(path);
  expect_same(back, f);
  ASSERT_EQ(back.meta.size(), 4u);
  EXPECT_EQ(back.meta[0].first, "zeta");  // not sorted
  EXPECT_EQ(back.meta[2].second, "two\nlines");
  EXPECT_EQ(back.tensor("adam.step").shape.size(), 0u);
  EXPECT_EQ(back.tensor("adam.step").data, std::vector<float>{7.0f});
  EXPECT_TRUE(back.tensor("empty").data.empty());
  EXPECT_EQ(file_bytes(path), encode_model_file(f));
}

TEST(ModelFile, AnEmptyFileRoundTrips) {
  ModelFile f;
  f.kind = "model";
  expect_same(decode_model_file(encode_model_file(f), "empty"), f);
}

TEST(ModelFile, LookupsFindByNameAndNameWhatIsMissing) {
  ModelFile f = rich_file();
  EXPECT_EQ(f.find_tensor("op0.bias"), &f.tensors[1]);
  EXPECT_EQ(f.find_tensor("op9.bias"), nullptr);
  try {
    f.tensor("op9.bias");
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("op9.bias"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f.meta_value("step"), "42");
  EXPECT_EQ(f.find_meta("nope"), nullptr);
  try {
    f.meta_value("epoch");
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("epoch"), std::string::npos) << e.what();
  }
  f.set_meta("alpha", "replaced");
  f.set_meta("new", "appended");
  ASSERT_EQ(f.meta.size(), 5u);
  EXPECT_EQ(f.meta[1], (std::pair<std::string, std::string>("alpha", "replaced")));
  EXPECT_EQ(f.meta[4], (std::pair<std::string, std::string>("new", "appended")));
}

TEST(ModelFile, EveryPrefixIsRejectedAsShortOrTruncated) {
  Bytes bytes = encode_model_file(doc_example());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Bytes prefix(bytes.begin(), bytes.begin() + n);
    std::string msg = decode_error(prefix, "cut.cae");
    EXPECT_NE(msg.find("'cut.cae'"), std::string::npos) << msg;
    if (n < 8) {
      EXPECT_NE(msg.find("too short"), std::string::npos) << n << ": " << msg;
    } else if (n < 24) {
      EXPECT_NE(msg.find("truncated"), std::string::npos) << n << ": " << msg;
    } else {
      EXPECT_NE(
          msg.find("length mismatch (truncated): expected 140 bytes, found " + std::to_string(n)),
          std::string::npos)
          << msg;
    }
  }
  Bytes longer = bytes;
  longer.push_back(0);
  EXPECT_NE(decode_error(longer).find("extra bytes at the end): expected 140 bytes, found 141"),
            std::string::npos);
}

TEST(ModelFile, EverySingleByteFlipIsDetected) {
  ModelFile f = doc_example();
  f.tensors.push_back({"s", {}, {3.5f}});
  Bytes bytes = encode_model_file(f);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
      Bytes bad = bytes;
      bad[i] ^= mask;
      std::string msg = decode_error(bad);
      const char* expected = i < 8    ? "bad magic"
                             : i < 12 ? "unsupported model file format version"
                             : i < 20 ? "length mismatch"
                                      : "checksum mismatch (file corrupted)";
      EXPECT_NE(msg.find(expected), std::string::npos) << "byte " << i << ": " << msg;
    }
  }
}

TEST(ModelFile, BadMagicQuotesWhatWasFound) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  std::string msg = decode_error(png, "digit.png");
  EXPECT_NE(msg.find("'digit.png' is not a cae model file"), std::string::npos) << msg;
  EXPECT_NE(msg.find(R"(found "\x89PNG\x0d\x0a\x1a\x0a")"), std::string::npos) << msg;
}

TEST(ModelFile, WrongVersionSaysFoundAndSupported) {
  Bytes bytes = encode_model_file(doc_example());
  bytes[8] = 2;
  fix_crc(bytes);
  std::string msg = decode_error(bytes, "future.cae");
  EXPECT_NE(msg.find("'future.cae': unsupported model file format version 2 (this build reads "
                     "version 1)"),
            std::string::npos)
      << msg;
}

struct Forgery {
  const char* what;
  Bytes bytes;
  const char* expected;  // a part of the message
};

// A valid prefix: header, kind, spec, no meta; then the caller adds the tensors.
HandFile model_with_tensors(std::uint32_t count) {
  HandFile h;
  h.header().str("model").str("spec").u32(0).u32(count);
  return h;
}

std::vector<Forgery> forgeries() {
  std::vector<Forgery> out;
  const std::int64_t big = std::int64_t(1) << 40;
  out.push_back({"dim of 2^40 elements",
                 model_with_tensors(1).tensor_head("w", {big}, std::uint64_t(big) * 4).finish(),
                 "tensor 0 (\"w\"): dim 0 is 1099511627776, more than the limit"});
  out.push_back(
      {"dims whose product is 2^40",
       model_with_tensors(1).tensor_head("w", {1 << 20, 1 << 20}, std::uint64_t(big) * 4).finish(),
       "tensor 0 (\"w\"): shape [1048576, 1048576] holds more than the limit of 2147483648"});
  out.push_back({"1M floats claimed, none present",
                 model_with_tensors(1).tensor_head("w", {1000000}, 4000000).finish(),
                 "tensor 0 (\"w\") data at byte 128 needs 4000000 bytes, only 0 remain"});
  out.push_back({"byte length disagrees with the shape",
                 model_with_tensors(1).tensor_head("w", {2, 3}, 20).finish(),
                 "tensor 0 (\"w\"): byte length 20 does not match shape [2, 3] of f32 (expected "
                 "24)"});
  out.push_back({"byte length of 2^63",
                 model_with_tensors(1).tensor_head("w", {2}, std::uint64_t(1) << 63).finish(),
                 "byte length 9223372036854775808 does not match"});
  out.push_back({"rank 9",
                 model_with_tensors(1).tensor_head("w", {1, 1, 1, 1, 1, 1, 1, 1, 1}, 4).finish(),
                 "tensor 0 (\"w\"): rank 9 is more than the limit of 8"});
  out.push_back({"negative dim", model_with_tensors(1).tensor_head("w", {3, -1}, 0).finish(),
                 "tensor 0 (\"w\"): dim 1 is -1, must be >= 0"});
  out.push_back({"float64 dtype", model_with_tensors(1).tensor_head("w", {1}, 8, 2).finish(),
                 "tensor 0 (\"w\"): dtype code 2 is not supported"});
  {
    HandFile h = model_with_tensors(1).tensor_head("w", {1}, 4);
    h.b[h.b.size() - 1] = 0x5a;
    h.f32(1.0f);
    out.push_back({"non-zero padding", h.finish(), "tensor 0 (\"w\") padding at byte"});
  }
  out.push_back({"duplicate tensor names",
                 model_with_tensors(2)
                     .tensor_head("w", {1}, 4)
                     .f32(1.0f)
                     .tensor_head("w", {1}, 4)
                     .f32(2.0f)
                     .finish(),
                 "tensor 1 (\"w\") repeats the name"});
  out.push_back({"empty tensor name", model_with_tensors(1).tensor_head("", {}, 4).f32(1).finish(),
                 "tensor 0 (\"\") has an empty name"});
  out.push_back({"bytes after the last tensor",
                 model_with_tensors(1).tensor_head("w", {1}, 4).f32(1.0f).u32(0).finish(),
                 "4 unexpected bytes after the last tensor"});
  out.push_back({"tensor count 70000", model_with_tensors(70000).finish(),
                 "tensor count 70000 is more than the limit of 65536"});
  out.push_back({"more tensors than present", model_with_tensors(3).finish(),
                 "tensor 0 name length at byte"});
  out.push_back({"spec of 1 GiB claimed",
                 HandFile().header().str("model").u32(1u << 30).raw("tiny").finish(),
                 "spec length 1073741824 is more than the limit of 1048576"});
  out.push_back({"kind longer than the file", HandFile().header().u32(100).raw("model").finish(),
                 "kind at byte 24 needs 100 bytes, only 5 remain"});
  out.push_back({"unknown kind", HandFile().header().str("weights").str("").u32(0).u32(0).finish(),
                 "kind is \"weights\", must be \"model\" or \"checkpoint\""});
  out.push_back({"meta count 5000", HandFile().header().str("model").str("").u32(5000).finish(),
                 "meta count 5000 is more than the limit of 4096"});
  out.push_back({"duplicate meta key",
                 HandFile()
                     .header()
                     .str("model")
                     .str("")
                     .u32(2)
                     .str("epoch")
                     .str("1")
                     .str("epoch")
                     .str("2")
                     .u32(0)
                     .finish(),
                 "meta entry 1 (\"epoch\") repeats the key"});
  out.push_back({"invalid UTF-8 name (overlong slash)",
                 model_with_tensors(1).tensor_head("a\xc0\xaf", {}, 4).f32(1).finish(),
                 "tensor 0 name \"a\\xc0\\xaf\" is not valid UTF-8"});
  return out;
}

TEST(ModelFile, ForgedFilesWithValidChecksumsAreRefusedBeforeAllocating) {
  for (const Forgery& forgery : forgeries()) {
    g_largest_allocation = 0;
    g_tracking = true;
    std::string msg;
    try {
      decode_model_file(forgery.bytes, "forged.cae");
    } catch (const Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      msg = std::string("not a cae::Error: ") + e.what();
    }
    g_tracking = false;
    EXPECT_NE(msg.find("'forged.cae'"), std::string::npos) << forgery.what << ": " << msg;
    EXPECT_NE(msg.find(forgery.expected), std::string::npos) << forgery.what << ": " << msg;
    // Messages and small vectors only: nothing near what any forged size claims.
    EXPECT_LT(g_largest_allocation.load(), 4096u) << forgery.what;
  }
}

TEST(ModelFile, WriterRefusesWhatAReaderWouldRefuse) {
  std::string path = test::scratch_dir() + "/keep.cae";
  write_model_file(path, doc_example());
  const Bytes old_bytes = file_bytes(path);

  auto with = [](auto edit) {
    ModelFile f = doc_example();
    edit(f);
    return f;
  };
  std::vector<std::pair<ModelFile, std::string>> cases = {
      {with([](ModelFile& f) {
         f.tensors.push_back({"w", {1}, {0.f}});
       }),
       "tensor 1 (\"w\") repeats the name"},
      {with([](ModelFile& f) { f.tensors[0].shape = {3}; }),
       "shape [3] holds 3 floats but data has 2"},
      {with([](ModelFile& f) { f.tensors[0].shape = {}; }),
       "shape [] holds 1 floats but data has 2"},
      {with([](ModelFile& f) { f.tensors[0].shape = {2, 1, 1, 1, 1, 1, 1, 1, 1}; }),
       "rank 9 is more than the limit of 8"},
      {with([](ModelFile& f) {
         f.tensors[0].shape = {-2, -1};
       }),
       "dim 0 is -2, must be >= 0"},
      {with([](ModelFile& f) { f.tensors[0].name = ""; }), "has an empty name"},
      {with([](ModelFile& f) { f.kind = "Model"; }), "kind is \"Model\""},
      {with([](ModelFile& f) { f.spec.assign((1u << 20) + 1, 'x'); }),
       "spec is 1048577 bytes, more than the limit of 1048576"},
      {with([](ModelFile& f) {
         f.meta.push_back({"k", "again"});
       }),
       "meta entry 1 (\"k\") repeats the key"},
      {with([](ModelFile& f) { f.meta[0].second = "\xff"; }), "value is not valid UTF-8"},
  };
  for (const auto& [file, expected] : cases) {
    try {
      encode_model_file(file);
      ADD_FAILURE() << "encode did not throw: " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
    try {
      write_model_file(path, file);
      ADD_FAILURE() << "write did not throw: " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_EQ(file_bytes(path), old_bytes) << expected;
  }
  EXPECT_EQ(dir_entries(fs::path(path).parent_path().string()),
            std::vector<std::string>{"keep.cae"});
}

TEST(ModelFile, WritingIntoAMissingDirectoryThrowsAndCreatesNothing) {
  std::string dir = test::scratch_dir();
  std::string path = dir + "/no/such/dir/model.cae";
  try {
    write_model_file(path, doc_example());
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/no/such/dir/model.cae"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(dir_entries(dir).empty());
}

// A write that really fails, even as root: the child process may not grow any file past a few
// bytes (RLIMIT_FSIZE; SIGXFSZ ignored so write() returns EFBIG instead of killing it).
TEST(ModelFile, AFailedWriteLeavesThePreviousFileIntact) {
  std::string dir = test::scratch_dir();
  std::string path = dir + "/model.cae";
  write_model_file(path, doc_example());
  const Bytes old_bytes = file_bytes(path);
  ModelFile bigger = rich_file();
  bigger.tensors.push_back({"big", {64, 64}, test::random_floats(4096, 4)});  // 16 KiB
  ASSERT_GT(encode_model_file(bigger).size(), 16384u);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{1024, 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    try {
      write_model_file(path, bigger);
    } catch (const Error& e) {
      ::_exit(std::string(e.what()).find(path) != std::string::npos ? 0 : 4);
    } catch (...) {
      ::_exit(5);
    }
    ::_exit(6);  // the write succeeded: the test setup failed to make it fail
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died, status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3 setrlimit, 4 message lacks path, 5 other exception, "
                                       "6 write did not fail";
  EXPECT_EQ(file_bytes(path), old_bytes);
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"model.cae"});  // no temporary left
  expect_same(read_model_file(path), doc_example());

  write_model_file(path, bigger);  // and without the limit, the same write succeeds
  expect_same(read_model_file(path), bigger);
}

// A writer killed before its rename leaves path.tmp.PID; the next write of path removes it once
// that process is gone, and nothing else.
TEST(ModelFile, AWriteRemovesTheTemporariesOfDeadWriters) {
  const std::string dir = test::scratch_dir();
  const pid_t dead = fork();  // a process that has exited and been reaped
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string stale = "model.cae.tmp." + std::to_string(dead);
  const std::string live = "model.cae.tmp." + std::to_string(::getppid());
  const std::vector<std::string> kept = {"model.cae.tmp.x1", "other.cae.tmp." + std::to_string(dead),
                                         live};
  for (const std::string& name : kept) std::ofstream(dir + "/" + name) << "partial";
  std::ofstream(dir + "/" + stale) << "partial";
  write_model_file(dir + "/model.cae", doc_example());
  std::vector<std::string> want = kept;
  want.push_back("model.cae");
  std::ranges::sort(want);
  std::vector<std::string> got = dir_entries(dir);
  std::ranges::sort(got);
  EXPECT_EQ(got, want);
}

TEST(ModelFile, ReadingAMissingFileNamesIt) {
  std::string path = test::scratch_dir() + "/absent.cae";
  try {
    read_model_file(path);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// Runs the Python reader printed in docs/model-format.md on a file from the C++ writer, so the
// document cannot drift from the code.
TEST(ModelFile, ThePythonReaderInTheDocReadsOurFiles) {
  std::ifstream doc_in(std::string(CAE_SOURCE_DIR) + "/docs/model-format.md");
  ASSERT_TRUE(doc_in) << "docs/model-format.md not found";
  std::stringstream doc;
  doc << doc_in.rdbuf();
  std::string text = doc.str();
  std::size_t start = text.find("```python\n");
  ASSERT_NE(start, std::string::npos);
  start += 10;
  std::size_t end = text.find("\n```", start);
  ASSERT_NE(end, std::string::npos);

  std::string dir = test::scratch_dir();
  {
    std::ofstream script(dir + "/reader.py");
    script << text.substr(start, end - start) << "\n\n"
           << "import json, sys\n"
           << "kind, spec, meta, tensors = read_cae_model(sys.argv[1])\n"
           << "print(json.dumps({'kind': kind, 'spec': spec, 'meta': meta, 'tensors': "
              "[[n, s, list(d)] for n, (s, d) in tensors.items()]}))\n";
  }
  ModelFile f = rich_file();
  f.tensors.pop_back();  // JSON has no NaN or infinity
  write_model_file(dir + "/model.cae", f);

  if (std::system("python3 -c 'import struct, zlib, json' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 not available";
  std::string command = "python3 '" + dir + "/reader.py' '" + dir + "/model.cae' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0) << output;

  nlohmann::json got = nlohmann::json::parse(output);
  EXPECT_EQ(got["kind"], f.kind);
  EXPECT_EQ(got["spec"], f.spec);
  ASSERT_EQ(got["meta"].size(), f.meta.size());
  for (std::size_t i = 0; i < f.meta.size(); ++i) {
    EXPECT_EQ(got["meta"][i][0], f.meta[i].first);
    EXPECT_EQ(got["meta"][i][1], f.meta[i].second);
  }
  ASSERT_EQ(got["tensors"].size(), f.tensors.size());
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    const NamedTensor& t = f.tensors[i];
    EXPECT_EQ(got["tensors"][i][0], t.name);
    EXPECT_EQ(got["tensors"][i][1].get<std::vector<std::int64_t>>(), t.shape) << t.name;
    std::vector<float> data;
    for (double x : got["tensors"][i][2]) data.push_back(float(x));  // Python prints exact
    EXPECT_TRUE(same_bits(data, t.data)) << t.name;
  }
}

}  // namespace
}  // namespace cae::io
