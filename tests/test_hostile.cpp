// Forged headers: IDX, PNG, JPEG and model files that claim billions of images, 2^31-wide images
// or giant tensors are refused with a message that names the file and the claim, and nothing
// near the claimed size is allocated. This executable replaces the global operator new to record
// the largest single request, so "no large allocation" is measured, not assumed (allocations that
// the C libraries make with malloc are not seen; their inputs are bounded by the checks tested).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "data/idx.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "support.h"
#if __has_include("data/jpeg_io.h")
#include "data/jpeg_io.h"
#define CAE_HAVE_JPEG 1
#endif

namespace {
std::atomic<std::size_t> largest_request{0};
}  // namespace

// GCC pairs the free() below with the operator new it inlines at each call site and warns of a
// mismatch; both halves are ours and agree, so the warning is wrong here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  std::size_t seen = largest_request.load(std::memory_order_relaxed);
  while (size > seen && !largest_request.compare_exchange_weak(seen, size)) {
  }
  // A regression must fail here, not take the machine's memory: no test needs 1 GiB.
  if (size > (std::size_t(1) << 30)) throw std::bad_alloc();
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace cae;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {

constexpr std::size_t kSmall = 4u << 20;  // nothing a forged header asks for may pass this

// Runs f (which must throw cae::Error) and returns the message; fails the test when f allocated
// a block larger than kSmall on the way.
template <class F>
std::string refused(F&& f) {
  largest_request = 0;
  std::string message = test::error_of(f);
  EXPECT_LE(largest_request.load(), kSmall) << "a forged header made the reader allocate";
  return message;
}

using Bytes = std::vector<std::uint8_t>;

void put_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
}

void save(const std::string& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              std::streamsize(bytes.size()));
}

Bytes idx_header(std::vector<std::uint32_t> dims) {
  Bytes out = {0, 0, 0x08, std::uint8_t(dims.size())};
  for (std::uint32_t d : dims) put_be32(out, d);
  return out;
}

Bytes gzip(const Bytes& raw) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, uLong(raw.size())) + 64);
  z.next_in = const_cast<Bytef*>(raw.data());
  z.avail_in = uInt(raw.size());
  z.next_out = out.data();
  z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST(HostileIdx, BillionsOfImagesInARawFile) {
  const std::string path = test::scratch_dir() + "/forged-idx3-ubyte";
  Bytes file = idx_header({2000000000u, 28, 28});
  file.resize(file.size() + 784, 7);  // one real image's worth of bytes
  save(path, file);
  EXPECT_THAT(refused([&] { data::read_idx_images(path); }),
              AllOf(HasSubstr(path), HasSubstr("truncated"),
                    HasSubstr("2000000000×28×28 = 1568000000000 bytes of pixels"),
                    HasSubstr("file has 784")));
}

TEST(HostileIdx, BillionsOfImagesBehindGzip) {
  const std::string path = test::scratch_dir() + "/forged-idx3-ubyte.gz";
  Bytes raw = idx_header({2000000000u, 28, 28});
  raw.resize(raw.size() + 3 * 784, 0);
  save(path, gzip(raw));
  // The buffer grows with the data actually decompressed (1 MiB first), never to the claim.
  EXPECT_THAT(refused([&] { data::read_idx_images(path); }),
              AllOf(HasSubstr(path), HasSubstr("truncated"),
                    HasSubstr("1568000000000 bytes of pixels"),
                    HasSubstr("decompressed data has 2352")));
}

TEST(HostileIdx, CountsAboveTheIntRangeAndOverflowingProducts) {
  const std::string dir = test::scratch_dir();
  save(dir + "/a", idx_header({4000000000u, 28, 28}));
  EXPECT_THAT(refused([&] { data::read_idx_images(dir + "/a"); }),
              HasSubstr("dimension 0 is 4000000000, expected at most 2147483647"));
  save(dir + "/b", idx_header({1, 1, 2147483648u}));  // a 2^31-wide image
  EXPECT_THAT(refused([&] { data::read_idx_images(dir + "/b"); }),
              HasSubstr("dimension 2 is 2147483648, expected at most 2147483647"));
  save(dir + "/c", idx_header({2147483647u, 2147483647u, 2147483647u, 2147483647u}));
  EXPECT_THAT(refused([&] { data::read_idx_images(dir + "/c"); }),
              AllOf(HasSubstr("more than 2^64 bytes of pixels"), HasSubstr("truncated")));
  save(dir + "/d", idx_header({4294967295u}));
  EXPECT_THAT(refused([&] { data::read_idx_labels(dir + "/d"); }),
              HasSubstr("dimension 0 is 4294967295"));
}

namespace {

void put_chunk(Bytes& png, const char* type, const Bytes& data) {
  put_be32(png, std::uint32_t(data.size()));
  const std::size_t start = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  put_be32(png, std::uint32_t(crc32(0, png.data() + start, uInt(png.size() - start))));
}

// A PNG whose IHDR (checksummed, so only the claim is forged) says width × height 8-bit gray,
// followed by one short IDAT and IEND.
Bytes forged_png(std::uint32_t width, std::uint32_t height) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});  // depth 8, gray, deflate, filter 0, no interlace
  put_chunk(png, "IHDR", ihdr);
  Bytes row(64, 0);
  uLongf packed_size = compressBound(uLong(row.size()));
  Bytes packed(packed_size);
  EXPECT_EQ(compress(packed.data(), &packed_size, row.data(), uLong(row.size())), Z_OK);
  packed.resize(packed_size);
  put_chunk(png, "IDAT", packed);
  put_chunk(png, "IEND", {});
  return png;
}

}  // namespace

TEST(HostilePng, WidthOf2To31IsRefused) {
  const std::string path = test::scratch_dir() + "/wide.png";
  save(path, forged_png(2147483648u, 1));  // beyond PNG's own limit of 2^31 - 1
  EXPECT_THAT(refused([&] { data::read_png(path); }),
              AllOf(HasSubstr(path),
                    HasSubstr("PNG header says width 2147483648, more than PNG's limit")));
  save(path, forged_png(2147483647u, 1));  // legal PNG, beyond libpng's limit of 10^6
  EXPECT_THAT(refused([&] { data::read_png(path); }),
              AllOf(HasSubstr(path), HasSubstr("invalid PNG"), HasSubstr("width")));
}

TEST(HostilePng, SizeThatTheFileCannotHoldIsRefusedBeforeDecoding) {
  const std::string path = test::scratch_dir() + "/big.png";
  const Bytes png = forged_png(1000000, 1000000);  // within libpng's limits: 10^12 pixels
  save(path, png);
  EXPECT_THAT(refused([&] { data::read_png(path); }),
              AllOf(HasSubstr(path), HasSubstr("1000000×1000000 pixels"),
                    HasSubstr("more than a " + std::to_string(png.size()) +
                              "-byte file can hold")));
}

#ifdef CAE_HAVE_JPEG
TEST(HostileJpeg, SizeThatTheFileCannotHoldIsRefused) {
  const std::string path = test::scratch_dir() + "/big.jpg";
  data::Image small;
  small.h = small.w = 8;
  small.pixels.assign(64, 100);
  data::write_jpeg(path, small);
  std::ifstream in(path, std::ios::binary);
  Bytes jpeg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // SOF0 (ff c0): length (2), precision (1), height (2), width (2). 65500 is JPEG's ceiling.
  std::size_t sof = 0;
  for (std::size_t i = 2; i + 8 < jpeg.size() && !sof; ++i)
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) sof = i;
  ASSERT_NE(sof, 0u) << "no SOF0 marker in a baseline JPEG";
  for (std::size_t at : {sof + 5, sof + 7}) {
    jpeg[at] = 65500 >> 8;
    jpeg[at + 1] = 65500 & 0xff;
  }
  save(path, jpeg);
  EXPECT_THAT(refused([&] { data::read_jpeg(path); }),
              AllOf(HasSubstr(path), HasSubstr("65500×65500"), HasSubstr("can hold")));
}
#endif

namespace {

// A model file written field by field from docs/model-format.md, so that any field can be forged;
// finish() adds the header's length and the CRC, so only the claims inside are wrong.
class ForgedModel {
 public:
  ForgedModel& u32(std::uint32_t v) { return le(v, 4); }
  ForgedModel& u64(std::uint64_t v) { return le(v, 8); }
  ForgedModel& text(const std::string& s) {
    u32(std::uint32_t(s.size()));
    body_.insert(body_.end(), s.begin(), s.end());
    return *this;
  }
  ForgedModel& pad() {
    while ((20 + body_.size()) % 64) body_.push_back(0);
    return *this;
  }
  ForgedModel& floats(std::size_t n) {
    body_.resize(body_.size() + 4 * n, 0);
    return *this;
  }
  Bytes finish() const {
    Bytes file = {'C', 'A', 'E', 'M', 'O', 'D', 'E', 'L'};
    le_into(file, 1, 4);
    le_into(file, 20 + body_.size() + 4, 8);
    file.insert(file.end(), body_.begin(), body_.end());
    le_into(file, crc32(0, file.data(), uInt(file.size())), 4);
    return file;
  }

 private:
  ForgedModel& le(std::uint64_t v, int n) {
    le_into(body_, v, n);
    return *this;
  }
  static void le_into(Bytes& out, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(std::uint8_t(v >> (8 * i)));
  }
  Bytes body_;
};

ForgedModel model_head(const std::string& spec, int side, int meta_extra = 0) {
  ForgedModel m;
  m.text("model").text(spec).u32(4 + meta_extra);
  m.text("input_height").text(std::to_string(side)).text("input_width").text(std::to_string(side));
  m.text("input_channels").text("1").text("loss").text("bce");
  return m;
}

}  // namespace

TEST(HostileModelFile, CountsAndLengthsBeyondTheFileAreRefused) {
  const std::string dir = test::scratch_dir();
  save(dir + "/count.cae", model_head("conv channels k1", 4).u32(4000000000u).finish());
  EXPECT_THAT(refused([&] { io::read_model_file(dir + "/count.cae"); }),
              AllOf(HasSubstr("count.cae"),
                    HasSubstr("tensor count 4000000000 is more than the limit of 65536")));

  ForgedModel giant = model_head("conv channels k1", 4).u32(1);
  giant.text("op0.weight").u32(3).u64(65536).u64(65536).u64(65536).u32(1);
  save(dir + "/giant.cae", giant.u64(std::uint64_t(1) << 50).finish());
  EXPECT_THAT(refused([&] { io::read_model_file(dir + "/giant.cae"); }),
              AllOf(HasSubstr("giant.cae"), HasSubstr("[65536, 65536, 65536]"),
                    HasSubstr("more than the limit of 2147483648 elements")));

  // Within the element limit, but the data is not in the file.
  ForgedModel absent = model_head("conv channels k1", 4).u32(1);
  absent.text("op0.weight").u32(2).u64(32768).u64(32768).u32(1).u64(std::uint64_t(1) << 32);
  save(dir + "/absent.cae", absent.pad().floats(4).finish());
  EXPECT_THAT(refused([&] { io::read_model_file(dir + "/absent.cae"); }),
              AllOf(HasSubstr("absent.cae"), HasSubstr("needs 4294967296 bytes"),
                    HasSubstr("remain before the checksum")));

  ForgedModel long_name = model_head("conv channels k1", 4).u32(1);
  long_name.u32(0xffffffffu);
  save(dir + "/name.cae", long_name.finish());
  EXPECT_THAT(refused([&] { io::read_model_file(dir + "/name.cae"); }),
              HasSubstr("tensor 0 name length 4294967295 is more than the limit of 1048576"));
}

TEST(HostileModelFile, SpecClaimingGiantWeightsIsRefusedBeforeAllocating) {
  // A few hundred bytes whose spec asks for 65536 x 65536 = 2^32 weights (16 GiB) in op1: the
  // file does not hold them, and the reader must see that before allocating for the spec.
  const std::string path = test::scratch_dir() + "/spec.cae";
  ForgedModel m = model_head("conv 65536 k1\nconv 65536 k1\nconv channels k1", 1).u32(1);
  m.text("op0.weight").u32(4).u64(65536).u64(1).u64(1).u64(1).u32(1).u64(4 * 65536);
  save(path, m.pad().floats(65536).finish());
  const io::ModelFile file = io::read_model_file(path);
  EXPECT_THAT(refused([&] { nn::Model::from_file(file, path); }),
              AllOf(HasSubstr(path), HasSubstr("op0.bias"), HasSubstr("missing")));
}

TEST(HostileModelFile, EveryBitFlipOfARealModelIsRefusedByTheChecksum) {
  // Independent of the forged cases: corruption anywhere in a real file is caught.
  const std::string dir = test::scratch_dir();
  nn::Model model(nn::parse_spec("conv 2 relu; pool; resize mirror; conv channels"), {1, 6, 6},
                  nn::LossKind::bce);
  model.init_glorot(1);
  io::write_model_file(dir + "/m.cae", model.to_file());
  std::ifstream in(dir + "/m.cae", std::ios::binary);
  const Bytes good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (std::size_t i = 20; i < good.size(); i += 7) {
    Bytes bad = good;
    bad[i] ^= 0x10;
    const std::string message =
        test::error_of([&] { io::decode_model_file(bad, "m.cae"); });
    EXPECT_THAT(message, HasSubstr("m.cae")) << "byte " << i;
    if (i + 4 < good.size()) {
      EXPECT_THAT(message, HasSubstr("checksum mismatch")) << "byte " << i;
    }
  }
}

TEST(HostileSpec, SizesBeyond65536AreRefusedBeforeShapeArithmetic) {
  // fuzz_spec found `resize 2147483647` followed by a pool overflowing an int in build_net.
  EXPECT_THAT(test::error_of([] { nn::parse_spec("relu\nresize 2147483647\npool"); }),
              AllOf(HasSubstr("line 2"), HasSubstr("'2147483647'"),
                    HasSubstr("sizes from 1 to 65536")));
  // A transposed conv may not grow past it either: 40000 x 2 would be 80000.
  const nn::Architecture grow = nn::parse_spec("resize 40000x5; tconv 1 s2");
  EXPECT_THAT(test::error_of([&] { nn::build_net(grow, {1, 8, 8}, 1); }),
              HasSubstr("transposed conv cannot produce 80000x10"));
  const nn::Architecture any = nn::parse_spec("conv channels");
  EXPECT_THAT(test::error_of([&] { nn::build_net(any, {1, 1, 2147483647}, 1); }),
              HasSubstr("larger than 65536"));
}
