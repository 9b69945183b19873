#include "data/idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cae/error.h"
#include "core/atomic_file.h"

namespace cae::data {

namespace {

constexpr std::uint8_t kUnsignedByte = 0x08;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

std::string hex(std::uint32_t value, int digits) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%0*x", digits, static_cast<unsigned>(value));
  return text;
}

std::string type_name(std::uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown type";
  }
}

// "60000×28×28"
std::string join_dims(const std::vector<std::uint32_t>& dims) {
  std::string text;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) text += "×";
    text += std::to_string(dims[i]);
  }
  return text;
}

bool multiply_checked(std::uint64_t a, std::uint64_t b, std::uint64_t* product) {
  return !__builtin_mul_overflow(a, b, product);
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// A forward-only stream of the IDX bytes, whatever the container.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Ensures up to n bytes are copied to dst; returns fewer only at the end of the data.
  virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
  // What the data is called in messages: "file" or "decompressed data".
  virtual const char* noun() const = 0;
};

class RawSource final : public ByteSource {
 public:
  RawSource(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    std::size_t got = std::fread(dst, 1, n, file_);
    if (got < n && std::ferror(file_))
      fail(path_, std::string("read error: ") + std::strerror(errno));
    return got;
  }
  const char* noun() const override { return "file"; }

 private:
  std::FILE* file_;
  std::string path_;
};

// Inflates gzip members chunk by chunk, so nothing larger than what the caller asks for is ever
// produced: a forged header cannot make us decompress (or allocate) more than the data holds.
class GzipSource final : public ByteSource {
 public:
  GzipSource(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {
    // 15 window bits + 16: gzip wrapper only, with its CRC-32 and length checked at the end.
    if (inflateInit2(&stream_, 15 + 16) != Z_OK) fail(path_, "cannot initialise zlib");
  }
  ~GzipSource() override { inflateEnd(&stream_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    stream_.next_out = dst;
    stream_.avail_out = 0;
    std::size_t left = n;
    while (left > 0 && !finished_) {
      // avail_out is 32-bit; feed large requests in slices.
      const auto slice = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
      stream_.avail_out = slice;
      while (stream_.avail_out > 0 && !finished_) step();
      left -= slice - stream_.avail_out;
    }
    return n - left;
  }
  const char* noun() const override { return "decompressed data"; }

 private:
  // True when more compressed bytes are available in the buffer after refilling it.
  bool refill() {
    if (stream_.avail_in > 0) return true;
    std::size_t got = std::fread(buffer_, 1, sizeof buffer_, file_);
    if (got == 0 && std::ferror(file_))
      fail(path_, std::string("read error: ") + std::strerror(errno));
    compressed_read_ += got;
    stream_.next_in = buffer_;
    stream_.avail_in = static_cast<uInt>(got);
    return got > 0;
  }

  void step() {
    if (!refill())
      fail(path_, "truncated gzip stream: the compressed data ends after " +
                      std::to_string(compressed_read_) + " bytes (" +
                      std::to_string(stream_.total_out + done_out_) +
                      " bytes decompressed) without the gzip end-of-stream trailer");
    int status = inflate(&stream_, Z_NO_FLUSH);
    if (status == Z_STREAM_END) {
      member_end();
      return;
    }
    if (status == Z_OK || status == Z_BUF_ERROR) return;  // progress made, or needs more input
    fail(path_, std::string("corrupt gzip data after ") +
                    std::to_string(stream_.total_out + done_out_) +
                    " decompressed bytes: " + (stream_.msg ? stream_.msg : zError(status)));
  }

  // A gzip file may hold several members back to back (gzip(1) concatenates them); anything
  // else after a member is trailing garbage.
  void member_end() {
    if (!refill()) {
      finished_ = true;
      return;
    }
    if (stream_.next_in[0] != 0x1f)
      fail(path_, "trailing bytes after the end of the gzip stream (byte " +
                      hex(stream_.next_in[0], 2) + " at offset " +
                      std::to_string(compressed_read_ - stream_.avail_in) +
                      ", expected end of file)");
    done_out_ += stream_.total_out;
    inflateReset(&stream_);
  }

  std::FILE* file_;
  std::string path_;
  z_stream stream_{};
  std::uint8_t buffer_[1 << 16];
  std::uint64_t compressed_read_ = 0;
  std::uint64_t done_out_ = 0;  // bytes produced by earlier members
  bool finished_ = false;
};

struct IdxData {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> payload;
};

// Reads a whole IDX ubyte file whose dimension count is in allowed_ndims. what names the payload
// in messages ("pixels", "labels").
IdxData read_idx(const std::string& path, const std::vector<int>& allowed_ndims,
                 const std::string& expected_dims_text, const std::string& what) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(::fileno(file.get()), &info) != 0 || !S_ISREG(info.st_mode))
    fail(path, "not a regular file");
  const auto file_size = static_cast<std::uint64_t>(info.st_size);

  std::uint8_t magic_bytes[4] = {};
  const std::size_t sniffed = std::fread(magic_bytes, 1, 2, file.get());
  const bool gzip = sniffed == 2 && magic_bytes[0] == 0x1f && magic_bytes[1] == 0x8b;
  std::rewind(file.get());
  std::unique_ptr<ByteSource> source;
  if (gzip)
    source = std::make_unique<GzipSource>(file.get(), path);
  else
    source = std::make_unique<RawSource>(file.get(), path);

  std::size_t got = source->read(magic_bytes, 4);
  if (got < 4)
    fail(path, std::string("truncated: an IDX header needs at least 4 bytes, ") + source->noun() +
                   " has " + std::to_string(got));
  const std::uint32_t magic = std::uint32_t(magic_bytes[0]) << 24 |
                              std::uint32_t(magic_bytes[1]) << 16 |
                              std::uint32_t(magic_bytes[2]) << 8 | magic_bytes[3];
  const std::uint8_t type = magic_bytes[2];
  const int ndims = magic_bytes[3];
  std::string expected_magic;
  for (int n : allowed_ndims) {
    if (!expected_magic.empty()) expected_magic += " or ";
    expected_magic += hex(std::uint32_t(kUnsignedByte) << 8 | std::uint32_t(n), 8);
  }
  if (magic_bytes[0] != 0 || magic_bytes[1] != 0)
    fail(path, "not an IDX file: magic " + hex(magic, 8) + ", expected " + expected_magic);
  if (type != kUnsignedByte)
    fail(path, "IDX element type " + hex(type, 2) + " (" + type_name(type) + "), expected " +
                   hex(kUnsignedByte, 2) + " (unsigned byte)");
  if (std::find(allowed_ndims.begin(), allowed_ndims.end(), ndims) == allowed_ndims.end())
    fail(path, "IDX file has " + std::to_string(ndims) + " dimensions (magic " + hex(magic, 8) +
                   "), expected " + expected_dims_text + " (magic " + expected_magic + ")");

  const std::size_t header_size = 4 + 4 * std::size_t(ndims);
  std::uint8_t size_bytes[4 * 255];
  got = source->read(size_bytes, 4 * std::size_t(ndims));
  if (got < 4 * std::size_t(ndims))
    fail(path, "truncated: the IDX header needs " + std::to_string(header_size) + " bytes, " +
                   source->noun() + " has " + std::to_string(4 + got));

  IdxData data;
  std::uint64_t claimed = 1;
  bool overflow = false;
  for (int i = 0; i < ndims; ++i) {
    const std::uint8_t* b = size_bytes + 4 * i;
    data.dims.push_back(std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 |
                        std::uint32_t(b[2]) << 8 | b[3]);
    overflow = overflow || !multiply_checked(claimed, data.dims.back(), &claimed);
  }
  for (int i = 0; i < ndims; ++i) {
    if (data.dims[i] == 0)
      fail(path, "dimension " + std::to_string(i) + " is 0 (header says " + join_dims(data.dims) +
                     "), expected every dimension > 0");
    if (data.dims[i] > std::uint32_t(INT_MAX))
      fail(path, "dimension " + std::to_string(i) + " is " + std::to_string(data.dims[i]) +
                     ", expected at most " + std::to_string(INT_MAX));
  }
  const std::string claim_text =
      "header says " + join_dims(data.dims) + " = " +
      (overflow ? std::string("more than 2^64") : std::to_string(claimed)) + " bytes of " + what;

  if (!gzip) {
    // The file size is known: settle the claim before allocating anything for it.
    const std::uint64_t present = file_size - header_size;
    if (overflow || present < claimed)
      fail(path, "truncated: " + claim_text + ", file has " + std::to_string(present));
    if (present > claimed)
      fail(path, std::to_string(present - claimed) + " trailing bytes: " + claim_text +
                     ", file has " + std::to_string(present));
    data.payload.resize(claimed);
    got = source->read(data.payload.data(), claimed);
    if (got < claimed)  // the file shrank under us
      fail(path, "truncated: " + claim_text + ", could read only " + std::to_string(got));
    return data;
  }

  // Gzip: the size is only known by decompressing, so grow the buffer with the data actually
  // produced (never beyond the claim) instead of trusting the header with one allocation.
  std::uint64_t have = 0;
  while (!overflow && have < claimed) {
    const std::uint64_t next =
        std::min<std::uint64_t>(claimed, std::max<std::uint64_t>(2 * have, 1 << 20));
    data.payload.resize(next);
    got = source->read(data.payload.data() + have, next - have);
    have += got;
    if (have < next) break;
  }
  if (overflow || have < claimed)
    fail(path, "truncated: " + claim_text + ", decompressed data has " + std::to_string(have));
  // Drive the stream to its end: this verifies the gzip CRC and rejects extra payload.
  std::uint8_t extra[4096];
  std::uint64_t extra_bytes = 0;
  while ((got = source->read(extra, sizeof extra)) > 0) {
    extra_bytes += got;
    if (extra_bytes > (1u << 20)) break;  // enough to say it is wrong
  }
  if (extra_bytes > 0)
    fail(path, (extra_bytes > (1u << 20) ? "more than " : "") + std::to_string(extra_bytes) +
                   " trailing bytes: " + claim_text + ", decompressed data is longer");
  return data;
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  out.push_back(std::uint8_t(value >> 24));
  out.push_back(std::uint8_t(value >> 16));
  out.push_back(std::uint8_t(value >> 8));
  out.push_back(std::uint8_t(value));
}

}  // namespace

ImageSet read_idx_images(const std::string& path) {
  IdxData data = read_idx(path, {3, 4}, "3 (n×h×w) or 4 (n×h×w×c)", "pixels");
  ImageSet set;
  set.n = int(data.dims[0]);
  set.h = int(data.dims[1]);
  set.w = int(data.dims[2]);
  set.c = data.dims.size() == 4 ? int(data.dims[3]) : 1;
  set.pixels = std::move(data.payload);
  return set;
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  return read_idx(path, {1}, "1 (n labels)", "labels").payload;
}

void write_idx_images(const std::string& path, const ImageSet& set) {
  if (set.n <= 0 || set.h <= 0 || set.w <= 0 || set.c <= 0)
    fail(path, "cannot write IDX images of " + std::to_string(set.n) + "×" + std::to_string(set.h) +
                   "×" + std::to_string(set.w) + "×" + std::to_string(set.c) +
                   ": expected every dimension > 0");
  std::uint64_t expected = 0;
  if (!multiply_checked(std::uint64_t(set.n), set.image_size(), &expected) ||
      expected != set.pixels.size())
    fail(path, "cannot write IDX images: " + std::to_string(set.n) + "×" + std::to_string(set.h) +
                   "×" + std::to_string(set.w) + "×" + std::to_string(set.c) + " needs " +
                   std::to_string(expected) + " bytes of pixels, found " +
                   std::to_string(set.pixels.size()));
  const bool with_channels = set.c != 1;
  std::vector<std::uint8_t> bytes;
  bytes.reserve(20 + set.pixels.size());
  put_u32(bytes, std::uint32_t(kUnsignedByte) << 8 | (with_channels ? 4u : 3u));
  put_u32(bytes, std::uint32_t(set.n));
  put_u32(bytes, std::uint32_t(set.h));
  put_u32(bytes, std::uint32_t(set.w));
  if (with_channels) put_u32(bytes, std::uint32_t(set.c));
  bytes.insert(bytes.end(), set.pixels.begin(), set.pixels.end());
  write_file_atomic(path, bytes);
}

}  // namespace cae::data
