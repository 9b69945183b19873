// The cae command: parses arguments, reads the environment (tools/environment.h), runs one
// subcommand, turns any error into one message and a non-zero exit. The only code that exits. Exit
// status: 0 done (also --help, --version), 1 an error in the input, data, model or files, 2 a usage
// error (docs/usage.md, Errors).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cae/error.h"
#include "commands.h"
#include "environment.h"
#include "usage.h"

int main(int argc, char** argv) {
  CLI::App app{"cae: convolutional autoencoders for image denoising and reconstruction"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cae " CAE_VERSION);
  cae::cli::add_all_commands(app);
  // The process's instruction-set cap (CAE_MAX_ISA, ONEDNN_MAX_CPU_ISA), before any kernel runs.
  // A bad value is reported where the first kernel is chosen, so a command that runs none (cae
  // presets, cae models) still runs. The other variables are read where each command needs them.
  cae::apply_isa_cap_from_environment();
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version: on stdout, status 0
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cae: error: %s\n", cae::cli::usage_error(app, e).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cae: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
