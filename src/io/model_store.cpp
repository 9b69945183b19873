#include "io/model_store.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>

#include "cae/error.h"

#ifndef CAE_MODELS_INSTALL_DIR
#error "CAE_MODELS_INSTALL_DIR must be defined (cmake/install.cmake)"
#endif
#ifndef CAE_MODELS_SOURCE_DIR
#error "CAE_MODELS_SOURCE_DIR must be defined (cmake/install.cmake)"
#endif

namespace cae::io {

namespace fs = std::filesystem;

namespace {

// share/cae/models beside the program or library this code was linked into, for a tree installed
// under another prefix than the one configured: <prefix>/bin/cae and <prefix>/lib/libcae.so both
// reach <prefix>/share (the library one or two folders down, as multiarch puts it).
std::vector<std::string> beside_this_binary() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&beside_this_binary), &info) || !info.dli_fname) return {};
  std::error_code ec;
  const fs::path self = fs::canonical(info.dli_fname, ec);
  if (ec) return {};
  const fs::path dir = self.parent_path();
  return {(dir / "../share/cae/models").lexically_normal().string(),
          (dir / "../../share/cae/models").lexically_normal().string()};
}

}  // namespace

std::vector<std::string> model_folders(const std::string& only) {
  std::vector<std::string> folders, candidates = {only};
  if (only.empty()) {
    candidates.push_back(CAE_MODELS_INSTALL_DIR);
    for (const std::string& dir : beside_this_binary()) candidates.push_back(dir);
    candidates.push_back(CAE_MODELS_SOURCE_DIR);
  }
  for (const std::string& dir : candidates) {
    std::error_code ec;
    if (!dir.empty() && fs::is_directory(dir, ec) &&
        std::find(folders.begin(), folders.end(), dir) == folders.end())
      folders.push_back(dir);
  }
  return folders;
}

std::vector<ShippedModel> shipped_models(const std::string& only) {
  std::vector<ShippedModel> found;
  for (const std::string& dir : model_folders(only)) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path p = it->path();
      if (p.extension() != ".cae" || !it->is_regular_file(ec)) continue;
      const std::string name = p.stem().string();
      if (!is_model_name(name)) continue;
      if (std::none_of(found.begin(), found.end(), [&](const auto& m) { return m.name == name; }))
        found.push_back({name, p.string()});
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return found;
}

bool is_model_name(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  });
}

std::string shipped_path(const std::string& name, const std::string& only) {
  const std::vector<ShippedModel> all = shipped_models(only);
  for (const ShippedModel& m : all)
    if (m.name == name) return m.path;
  std::string names;
  for (const ShippedModel& m : all) names += (names.empty() ? "" : ", ") + m.name;
  throw Error(name + ": no such model file, and no shipped model of that name (" +
              (names.empty() ? std::string("none is installed") : "shipped: " + names) +
              "; cae models lists them)");
}

std::string resolve_model(const std::string& what, const std::string& only) {
  std::error_code ec;
  if (fs::exists(what, ec) || !is_model_name(what)) return what;  // the reader says what is wrong
  return shipped_path(what, only);
}

}  // namespace cae::io
