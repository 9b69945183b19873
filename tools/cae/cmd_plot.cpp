// cae plot: the loss curves of a training run as a PNG (gnuplot).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "train/figures.h"

namespace cae::cli {

namespace {

struct PlotOptions {
  std::string input, out = "losses.png", title;
};

void run(const PlotOptions& o) {
  std::string csv = o.input;
  if (std::filesystem::is_directory(csv)) csv += "/losses.csv";
  train::plot_losses(csv, o.out, o.title.empty() ? csv : o.title);
  std::fprintf(stderr, "wrote %s\n", o.out.c_str());
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto o = std::make_shared<PlotOptions>();
  CLI::App* cmd = app.add_subcommand("plot", "plot a run's losses.csv as a PNG (needs gnuplot)");
  cmd->add_option("run", o->input, "a training output directory or its losses.csv")->required();
  cmd->add_option("-o,--out", o->out, "PNG to write (default losses.png)");
  cmd->add_option("--title", o->title, "plot title (default: the CSV's path)");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
