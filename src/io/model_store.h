// The models that ship with cae: model files named NAME.cae in a few known folders (share/cae/models
// under the install prefix, the source tree's models/ for a build tree) or in the one folder
// $CAE_MODELS names, found by name. `cae models` lists them; `cae repair` and `cae denoise` use them
// when no model file is given (docs/models.md).
#pragma once

#include <string>
#include <vector>

namespace cae::io {

// The folders searched for shipped models, first match wins: only `only` when it is not empty
// (the CLI and the Python module pass $CAE_MODELS, read by models_folder_from_environment() in
// tools/environment.h; the API its EngineOptions::models); else the configured install
// prefix's share/cae/models, share/cae/models beside the program or library (a tree installed
// under another prefix), then the source tree's models/ (so a build tree finds them before any
// install). Folders that do not exist are left out.
std::vector<std::string> model_folders(const std::string& only = "");

// One shipped model: its name (the file's stem) and the file.
struct ShippedModel {
  std::string name, path;
};

// Ensures every NAME.cae of the folders (model_folders(only)), a name found twice taken from
// the first folder, sorted by name.
std::vector<ShippedModel> shipped_models(const std::string& only = "");

// True when `text` can only be a model's name: letters, digits, '-' and '_', no path or suffix.
bool is_model_name(const std::string& text);

// Ensures the file of the shipped model `name` (shipped_models(only)). Throws cae::Error naming
// it, and the shipped models there are, when none has that name.
std::string shipped_path(const std::string& name, const std::string& only = "");

// Ensures the file `what` names: a path to an existing file as given, else a shipped model of
// that name (is_model_name, shipped_path). Throws cae::Error naming it, and the shipped models
// there are, when it is neither.
std::string resolve_model(const std::string& what, const std::string& only = "");

}  // namespace cae::io
