// The command line (tools/cae): the same CLI11 app that main() builds, with the same
// subcommands and options, parses fuzzed argument lists; only parsing and option validation
// run, never a command. CLI11 runs the top app's parse-complete callback after every option of
// every subcommand is parsed and validated and before any subcommand's callback; here it throws,
// which stops the parse right there. (Replacing the subcommands' callbacks instead would free the
// option storage those callbacks own: the first finding of this target, a harness bug.)
// An input is an argument list, arguments separated by NUL bytes (the corpus files read like
// argv).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "commands.h"
#include "usage.h"

namespace {

struct ParsedOnly {};  // thrown when parsing is done, before any command runs

void build_app(CLI::App& app) {
  app.require_subcommand(1);
  app.set_version_flag("--version", "cae fuzz");
  cae::cli::add_all_commands(app);
  app.parse_complete_callback([] { throw ParsedOnly{}; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args;  // CLI11 wants them last to first
  std::string current;
  for (std::size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current += char(data[i]);
    }
  }
  if (!current.empty()) args.push_back(current);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  CLI::App app{"cae"};
  build_app(app);
  try {
    app.parse(reversed);
  } catch (const CLI::Success&) {
    // --help and --version, as in main(); nothing ran.
  } catch (const CLI::ParseError& e) {
    // Bad usage: main() prints this as its one line; the wording must hold for any input.
    if (cae::cli::usage_error(app, e).find('\n') != std::string::npos) std::abort();
  } catch (const ParsedOnly&) {
    // A valid command line: main() would run the command now.
  }
  return 0;
}
