#include "io/model_file.h"

#include <zlib.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "cae/error.h"
#include "core/atomic_file.h"

namespace cae::io {

namespace {

// Byte layout (docs/model-format.md): header = magic, u32 version, u64 total file length;
// body; trailer = u32 CRC-32 of every byte before it.
constexpr std::string_view kMagic = "CAEMODEL";
constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kLengthOffset = 12;
constexpr std::size_t kHeaderBytes = 20;
constexpr std::size_t kChecksumBytes = 4;
constexpr std::size_t kDataAlignment = 64;  // from the file start, so a reader can mmap
constexpr std::uint32_t kDtypeF32 = 1;

bool valid_kind(std::string_view kind) { return kind == "model" || kind == "checkpoint"; }

// Text from an untrusted file goes into messages escaped, and cut short, so that a forged
// name cannot hide the rest of the message.
std::string printable(std::string_view s, std::size_t max_chars = 64) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == max_chars) return out + "...";
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += printable(s);
  out += '"';
  return out;
}

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, so that any reader
// that decodes the strings (Python's bytes.decode) accepts what we write.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      extra = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += extra + 1;
  }
  return true;
}

// Ensures the element count of shape; throws cae::Error(context + problem) when a dim is
// negative or the count exceeds kMaxTensorElements. Each factor is bounded before the
// multiplication, so a forged dim cannot overflow the product.
std::int64_t element_count(std::span<const std::int64_t> shape, const std::string& context) {
  bool has_zero = false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0)
      throw Error(context + ": dim " + std::to_string(i) + " is " + std::to_string(shape[i]) +
                  ", must be >= 0");
    if (shape[i] > kMaxTensorElements)
      throw Error(context + ": dim " + std::to_string(i) + " is " + std::to_string(shape[i]) +
                  ", more than the limit of " + std::to_string(kMaxTensorElements) + " elements");
    has_zero = has_zero || shape[i] == 0;
  }
  if (has_zero) return 0;
  std::int64_t count = 1;
  for (std::int64_t dim : shape) {
    count *= dim;  // both factors <= 2^31: no overflow
    if (count > kMaxTensorElements)
      throw Error(context + ": shape " + shape_text(shape) + " holds more than the limit of " +
                  std::to_string(kMaxTensorElements) + " elements");
  }
  return count;
}

std::uint32_t crc32_of(std::span<const std::uint8_t> bytes) {
  return static_cast<std::uint32_t>(crc32_z(0, bytes.data(), bytes.size()));
}

// ---------------------------------------------------------------------------------------------
// Writing

void check_string(std::string_view s, const std::string& context, const std::string& field) {
  if (s.size() > kMaxStringBytes)
    throw Error(context + ": " + field + " is " + std::to_string(s.size()) +
                " bytes, more than the limit of " + std::to_string(kMaxStringBytes));
  if (!valid_utf8(s)) throw Error(context + ": " + field + " is not valid UTF-8");
}

// Ensures file can be written and read back; throws cae::Error(context + problem) otherwise.
void check_writable(const ModelFile& file, const std::string& context) {
  if (!valid_kind(file.kind))
    throw Error(context + ": kind is " + quoted(file.kind) +
                ", must be \"model\" or \"checkpoint\"");
  check_string(file.spec, context, "spec");
  if (file.meta.size() > kMaxMetaEntries)
    throw Error(context + ": " + std::to_string(file.meta.size()) +
                " meta entries, more than the limit of " + std::to_string(kMaxMetaEntries));
  std::unordered_set<std::string_view> keys;
  for (std::size_t i = 0; i < file.meta.size(); ++i) {
    const auto& [key, value] = file.meta[i];
    std::string field = "meta entry " + std::to_string(i) + " (" + quoted(key) + ")";
    check_string(key, context, field + " key");
    check_string(value, context, field + " value");
    if (key.empty()) throw Error(context + ": " + field + " has an empty key");
    if (!keys.insert(key).second) throw Error(context + ": " + field + " repeats the key");
  }
  if (file.tensors.size() > kMaxTensors)
    throw Error(context + ": " + std::to_string(file.tensors.size()) +
                " tensors, more than the limit of " + std::to_string(kMaxTensors));
  std::unordered_set<std::string_view> names;
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    const NamedTensor& t = file.tensors[i];
    std::string where = context + ": tensor " + std::to_string(i) + " (" + quoted(t.name) + ")";
    check_string(t.name, where, "name");
    if (t.name.empty()) throw Error(where + " has an empty name");
    if (!names.insert(t.name).second) throw Error(where + " repeats the name");
    if (t.shape.size() > kMaxRank)
      throw Error(where + ": rank " + std::to_string(t.shape.size()) +
                  " is more than the limit of " + std::to_string(kMaxRank));
    std::int64_t count = element_count(t.shape, where);
    if (t.data.size() != std::uint64_t(count))
      throw Error(where + ": shape " + shape_text(t.shape) + " holds " + std::to_string(count) +
                  " floats but data has " + std::to_string(t.data.size()));
  }
}

class ByteWriter {
 public:
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(std::uint8_t(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(std::uint8_t(v >> (8 * i)));
  }
  void text(std::string_view s) {
    u32(std::uint32_t(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void pad_to(std::size_t alignment) {
    out_.resize((out_.size() + alignment - 1) / alignment * alignment, 0);
  }
  void floats(std::span<const float> data) {
    if constexpr (std::endian::native == std::endian::little) {
      const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
      out_.insert(out_.end(), p, p + data.size_bytes());
    } else {
      for (float x : data) u32(std::bit_cast<std::uint32_t>(x));
    }
  }
  void patch_u64(std::size_t offset, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_[offset + i] = std::uint8_t(v >> (8 * i));
  }
  std::vector<std::uint8_t>& bytes() { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

std::vector<std::uint8_t> encode(const ModelFile& file, const std::string& context) {
  check_writable(file, context);
  ByteWriter w;
  w.bytes().insert(w.bytes().end(), kMagic.begin(), kMagic.end());
  w.u32(kModelFormatVersion);
  w.u64(0);  // total length, patched below
  w.text(file.kind);
  w.text(file.spec);
  w.u32(std::uint32_t(file.meta.size()));
  for (const auto& [key, value] : file.meta) {
    w.text(key);
    w.text(value);
  }
  w.u32(std::uint32_t(file.tensors.size()));
  for (const NamedTensor& t : file.tensors) {
    w.text(t.name);
    w.u32(std::uint32_t(t.shape.size()));
    for (std::int64_t dim : t.shape) w.u64(std::uint64_t(dim));
    w.u32(kDtypeF32);
    w.u64(t.data.size() * sizeof(float));
    w.pad_to(kDataAlignment);
    w.floats(t.data);
  }
  w.patch_u64(kLengthOffset, w.bytes().size() + kChecksumBytes);
  w.u32(crc32_of(w.bytes()));
  return std::move(w.bytes());
}

// ---------------------------------------------------------------------------------------------
// Reading

std::uint32_t load_u32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
         std::uint32_t(p[3]) << 24;
}

std::uint64_t load_u64(const std::uint8_t* p) {
  return std::uint64_t(load_u32(p)) | std::uint64_t(load_u32(p + 4)) << 32;
}

// Walks the body (the bytes between header and checksum) and checks every claim against what is
// left before it takes anything.
class BodyReader {
 public:
  BodyReader(std::span<const std::uint8_t> file_without_checksum, const std::string& what)
      : bytes_(file_without_checksum), pos_(kHeaderBytes), what_(what) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error("'" + what_ + "': " + problem);
  }

  std::span<const std::uint8_t> take(std::uint64_t n, const std::string& field) {
    std::size_t left = bytes_.size() - pos_;
    if (n > left)
      fail(field + " at byte " + std::to_string(pos_) + " needs " + std::to_string(n) +
           " bytes, only " + std::to_string(left) + " remain before the checksum");
    auto out = bytes_.subspan(pos_, std::size_t(n));
    pos_ += std::size_t(n);
    return out;
  }
  std::uint32_t u32(const std::string& field) { return load_u32(take(4, field).data()); }
  std::uint64_t u64(const std::string& field) { return load_u64(take(8, field).data()); }

  std::string text(const std::string& field) {
    std::uint32_t n = u32(field + " length");
    if (n > kMaxStringBytes)
      fail(field + " length " + std::to_string(n) + " is more than the limit of " +
           std::to_string(kMaxStringBytes));
    auto raw = take(n, field);
    std::string s(raw.begin(), raw.end());
    if (!valid_utf8(s)) fail(field + " " + quoted(s) + " is not valid UTF-8");
    return s;
  }

  void skip_padding(const std::string& field) {
    std::size_t aligned = (pos_ + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
    std::size_t start = pos_;
    for (std::uint8_t b : take(aligned - pos_, field))
      if (b != 0) fail(field + " at byte " + std::to_string(start) + " is not zero");
  }

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return bytes_.size() - pos_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_;
  const std::string& what_;
};

void read_floats(std::span<const std::uint8_t> raw, std::vector<float>& out) {
  out.resize(raw.size() / sizeof(float));
  if constexpr (std::endian::native == std::endian::little) {
    if (!raw.empty()) std::memcpy(out.data(), raw.data(), raw.size());
  } else {
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = std::bit_cast<float>(load_u32(raw.data() + 4 * i));
  }
}

// Requires header, length and checksum verified. Ensures the body parsed and checked.
ModelFile decode_body(std::span<const std::uint8_t> file_without_checksum,
                      const std::string& what) {
  BodyReader r(file_without_checksum, what);
  ModelFile file;
  file.kind = r.text("kind");
  if (!valid_kind(file.kind))
    r.fail("kind is " + quoted(file.kind) + ", must be \"model\" or \"checkpoint\"");
  file.spec = r.text("spec");

  std::uint32_t meta_count = r.u32("meta count");
  if (meta_count > kMaxMetaEntries)
    r.fail("meta count " + std::to_string(meta_count) + " is more than the limit of " +
           std::to_string(kMaxMetaEntries));
  std::unordered_set<std::string> keys;
  for (std::uint32_t i = 0; i < meta_count; ++i) {
    std::string field = "meta entry " + std::to_string(i);
    std::string key = r.text(field + " key");
    field += " (" + quoted(key) + ")";
    if (key.empty()) r.fail(field + " has an empty key");
    if (!keys.insert(key).second) r.fail(field + " repeats the key");
    std::string value = r.text(field + " value");
    file.meta.emplace_back(std::move(key), std::move(value));
  }

  std::uint32_t tensor_count = r.u32("tensor count");
  if (tensor_count > kMaxTensors)
    r.fail("tensor count " + std::to_string(tensor_count) + " is more than the limit of " +
           std::to_string(kMaxTensors));
  std::unordered_set<std::string> names;
  for (std::uint32_t i = 0; i < tensor_count; ++i) {
    std::string field = "tensor " + std::to_string(i);
    NamedTensor t;
    t.name = r.text(field + " name");
    field += " (" + quoted(t.name) + ")";
    if (t.name.empty()) r.fail(field + " has an empty name");
    if (!names.insert(t.name).second) r.fail(field + " repeats the name");

    std::uint32_t rank = r.u32(field + " rank");
    if (rank > kMaxRank)
      r.fail(field + ": rank " + std::to_string(rank) + " is more than the limit of " +
             std::to_string(kMaxRank));
    auto dims = r.take(std::uint64_t(rank) * 8, field + " dims");
    for (std::uint32_t d = 0; d < rank; ++d)
      t.shape.push_back(static_cast<std::int64_t>(load_u64(dims.data() + 8 * d)));
    std::int64_t count = element_count(t.shape, "'" + what + "': " + field);

    std::uint32_t dtype = r.u32(field + " dtype");
    if (dtype != kDtypeF32)
      r.fail(field + ": dtype code " + std::to_string(dtype) + " is not supported (only " +
             std::to_string(kDtypeF32) + " = f32)");
    std::uint64_t byte_length = r.u64(field + " byte length");
    std::uint64_t expected = std::uint64_t(count) * sizeof(float);
    if (byte_length != expected)
      r.fail(field + ": byte length " + std::to_string(byte_length) + " does not match shape " +
             shape_text(t.shape) + " of f32 (expected " + std::to_string(expected) + ")");
    r.skip_padding(field + " padding");
    read_floats(r.take(byte_length, field + " data"), t.data);
    file.tensors.push_back(std::move(t));
  }
  if (r.left() != 0)
    r.fail(std::to_string(r.left()) + " unexpected bytes after the last tensor, at byte " +
           std::to_string(r.pos()));
  return file;
}

}  // namespace

const NamedTensor* ModelFile::find_tensor(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const NamedTensor& ModelFile::tensor(const std::string& name) const {
  if (const NamedTensor* t = find_tensor(name)) return *t;
  std::string known;
  for (std::size_t i = 0; i < tensors.size() && i < 8; ++i)
    known += (i ? ", " : "") + tensors[i].name;
  if (tensors.size() > 8) known += ", ...";
  throw Error("model file has no tensor '" + name + "' (it has " + std::to_string(tensors.size()) +
              ": " + known + ")");
}

const std::string* ModelFile::find_meta(const std::string& key) const {
  for (const auto& [k, v] : meta)
    if (k == key) return &v;
  return nullptr;
}

const std::string& ModelFile::meta_value(const std::string& key) const {
  if (const std::string* v = find_meta(key)) return *v;
  std::string known;
  for (std::size_t i = 0; i < meta.size(); ++i) known += (i ? ", " : "") + meta[i].first;
  throw Error("model file has no meta entry '" + key + "' (keys: " + known + ")");
}

void ModelFile::set_meta(const std::string& key, const std::string& value) {
  for (auto& [k, v] : meta)
    if (k == key) {
      v = value;
      return;
    }
  meta.emplace_back(key, value);
}

std::vector<std::uint8_t> encode_model_file(const ModelFile& file) {
  return encode(file, "cannot encode model file");
}

void write_model_file(const std::string& path, const ModelFile& file) {
  write_file_atomic(path, encode(file, "cannot write model file '" + path + "'"));
}

ModelFile decode_model_file(std::span<const std::uint8_t> bytes, const std::string& what) {
  const std::string name = "'" + what + "'";
  const std::size_t size = bytes.size();
  if (size < kMagic.size())
    throw Error(name + " is not a cae model file: too short (" + std::to_string(size) +
                " bytes, the magic alone is " + std::to_string(kMagic.size()) + ")");
  std::string_view magic(reinterpret_cast<const char*>(bytes.data()), kMagic.size());
  if (magic != kMagic)
    throw Error(name + " is not a cae model file: bad magic, expected \"" + std::string(kMagic) +
                "\", found " + quoted(magic));
  if (size >= kVersionOffset + 4) {
    std::uint32_t version = load_u32(bytes.data() + kVersionOffset);
    if (version != kModelFormatVersion)
      throw Error(name + ": unsupported model file format version " + std::to_string(version) +
                  " (this build reads version " + std::to_string(kModelFormatVersion) + ")");
  }
  if (size < kHeaderBytes + kChecksumBytes)
    throw Error(name + " is truncated: found " + std::to_string(size) +
                " bytes, a model file has at least " +
                std::to_string(kHeaderBytes + kChecksumBytes));
  std::uint64_t expected = load_u64(bytes.data() + kLengthOffset);
  if (expected != size)
    throw Error(name + ": length mismatch (" +
                (expected > size ? "truncated" : "extra bytes at the end") + "): expected " +
                std::to_string(expected) + " bytes, found " + std::to_string(size));
  auto covered = bytes.first(size - kChecksumBytes);
  std::uint32_t stored = load_u32(bytes.data() + size - kChecksumBytes);
  std::uint32_t computed = crc32_of(covered);
  if (stored != computed) {
    char text[64];
    std::snprintf(text, sizeof text, "stored crc32 %08x, computed %08x", stored, computed);
    throw Error(name + ": checksum mismatch (file corrupted): " + text);
  }
  return decode_body(covered, what);
}

ModelFile read_model_file(const std::string& path) {
  return decode_model_file(read_file(path), path);
}

}  // namespace cae::io
