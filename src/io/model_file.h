// The cae model file: one self-checking binary file that holds a trained model or a training
// checkpoint (architecture spec, ordered metadata, named float tensors). The byte layout is
// documented in docs/model-format.md so that other programs can read it without this code.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace cae::io {

// Limits a reader enforces before it allocates; the writer refuses anything beyond them too.
inline constexpr std::uint32_t kModelFormatVersion = 1;
inline constexpr std::uint32_t kMaxStringBytes = 1u << 20;  // any string, the spec included
inline constexpr std::uint32_t kMaxMetaEntries = 4096;
inline constexpr std::uint32_t kMaxTensors = 65536;
inline constexpr std::uint32_t kMaxRank = 8;
inline constexpr std::int64_t kMaxTensorElements = std::int64_t(1) << 31;

struct NamedTensor {
  std::string name;                 // e.g. "op0.weight", "adam.m.op0.weight"
  std::vector<std::int64_t> shape;  // canonical layout (NCHW / OIHW / IOHW ...); {} is a scalar
  std::vector<float> data;          // product(shape) floats
};

struct ModelFile {
  std::string kind;  // "model" or "checkpoint"
  std::string spec;  // the architecture spec text (may contain newlines)
  std::vector<std::pair<std::string, std::string>> meta;  // ordered key/value text pairs
  std::vector<NamedTensor> tensors;

  // Ensures the tensor called name is returned; throws cae::Error naming it when absent.
  const NamedTensor& tensor(const std::string& name) const;
  // Ensures the tensor called name, or nullptr when absent.
  const NamedTensor* find_tensor(const std::string& name) const;
  // Ensures the value stored under key is returned; throws cae::Error naming it when absent.
  const std::string& meta_value(const std::string& key) const;
  // Ensures the value stored under key, or nullptr when absent.
  const std::string* find_meta(const std::string& key) const;
  // Ensures key maps to value: an existing entry keeps its place, a new one goes last.
  void set_meta(const std::string& key, const std::string& value);
};

// Requires file within the limits above, kind "model" or "checkpoint", unique non-empty tensor
// names and meta keys, data.size() == product(shape), valid UTF-8 strings. Ensures path holds
// the whole file, or (on any error: bad input, missing directory, disk full) throws cae::Error
// and leaves any previous file at path untouched.
void write_model_file(const std::string& path, const ModelFile& file);

// Same requirements as write_model_file. Ensures the exact bytes write_model_file would write.
std::vector<std::uint8_t> encode_model_file(const ModelFile& file);

// Ensures the file held in bytes is returned, or throws cae::Error naming `what` (a file name
// for messages) and the first problem found: too short, bad magic, version, length, checksum,
// then structure. Never allocates more than bytes.size() on behalf of a claim in the file.
ModelFile decode_model_file(std::span<const std::uint8_t> bytes, const std::string& what);

// Ensures the file at path is returned; throws cae::Error naming path (unreadable or invalid).
ModelFile read_model_file(const std::string& path);

}  // namespace cae::io
