// The one list of subcommands, shared by main() and the CLI fuzz target (fuzz/fuzz_cli.cpp), so
// the fuzzer parses exactly the command line users get.
#include "commands.h"

namespace cae::cli {

void add_all_commands(CLI::App& app) {
  add_train_command(app);
  add_denoise_command(app);
  add_show_command(app);
  add_info_command(app);
  add_export_command(app);
  add_eval_command(app);
  add_repair_command(app);
  add_compare_command(app);
  add_models_command(app);
  add_serve_command(app);
  add_plot_command(app);
  add_checkerboard_command(app);
}

}  // namespace cae::cli
