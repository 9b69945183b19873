// cae models: the models that ship with cae, with what each is for (docs/models.md).
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "io/model_store.h"
#include "nn/fill.h"

namespace cae::cli {

namespace {

// What a model is for, from the model itself: an informed model repairs what a mask marks, a
// blind one denoises; then the images it takes and the damage it learnt.
std::string purpose(const nn::Model& m) {
  const ops::Dims d = m.output();
  std::string text = m.informed() ? "repair: fills what a mask marks (cae repair)"
                                  : "denoise: removes noise (cae denoise)";
  text += std::string(", ") + (d.c == 3 ? "colour and gray" : "gray") + " photos of any size in " +
          std::to_string(d.w) + "x" + std::to_string(d.h) + " tiles";
  if (m.fill_settings()) text += ", correcting " + nn::describe_fill(*m.fill_settings());
  for (const auto& [key, value] : m.meta())
    if (key == "corruption") text += "; trained on '" + value + "'";
  return text;
}

}  // namespace

void add_models_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "models", "list the models that ship with cae: their names (for -m NAME) and what each is for");
  cmd->footer(
      "Searched in share/cae/models of the install, then in the source tree's models/; "
      "$CAE_MODELS names a folder to search instead. cae repair uses 'inpaint' and cae denoise "
      "'denoise' when no -m is given; docs/models.md has each model's card.");
  cmd->final_callback([] {
    const std::string only = models_folder_from_environment();
    const std::vector<io::ShippedModel> all = io::shipped_models(only);
    if (all.empty()) {
      std::printf("no shipped models found (looked in: ");
      const std::vector<std::string> folders = io::model_folders(only);
      for (std::size_t i = 0; i < folders.size(); ++i)
        std::printf("%s%s", i ? ", " : "", folders[i].c_str());
      std::printf("%s)\n", folders.empty() ? "no folder exists" : "");
      return;
    }
    for (const io::ShippedModel& m : all) {
      const nn::Model model = load_model(m.path);
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(m.path, ec);
      std::printf("%-10s %s\n%-10s %s (%.2f MB)\n", m.name.c_str(), purpose(model).c_str(), "",
                  m.path.c_str(), ec ? 0.0 : double(bytes) / 1e6);
    }
  });
}

}  // namespace cae::cli
