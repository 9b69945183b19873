// cae compare: one clean photo damaged by cae's own corruption, then repaired by the model and by
// cv::inpaint Telea, drawn side by side with the original and a zoomed crop of the damage: the
// figure that shows how the two compare. (cae repair repairs a user's own damaged photo.)
#include <cstdio>
#include <memory>

#include "commands.h"
#include "data/png_io.h"
#include "train/figures.h"
#include "train/photo_eval.h"

namespace cae::cli {

namespace {

struct CompareOptions {
  CommonOptions common;
  CorruptionOptions corruption;
  AdaptFlags adapt;
  std::string photo, model_path, figure = "compare.png";
  int zoom = 4, overlap = -1, ensemble = 1;
  std::uint64_t seed = 0;
};

void run(const CompareOptions& o) {
  train::TileOptions tiles;
  tiles.backend = o.common.apply();
  tiles.overlap = o.overlap;
  tiles.ensemble = o.ensemble;
  const nn::Model model = load_model(o.model_path);
  const data::Image photo = train::read_photos({o.photo}, model.output().c).front();
  const data::Corruption corruption = o.corruption.apply(model_corruption(model));
  tiles.executor = o.common.executor_options();
  const train::AdaptOptions adapt = o.adapt.options(model, tiles.backend, tiles.executor, o.seed);
  const train::PhotoRepair r =
      train::repair_photo(model, photo, corruption, o.seed, tiles, adapt.on() ? &adapt : nullptr);
  std::fprintf(stderr,
               "%s (%dx%d), corruption '%s': PSNR inside the damage: damaged %.2f dB, cae%s "
               "%.2f dB, Telea (r=%g) %.2f dB\n",
               o.photo.c_str(), photo.w, photo.h, corruption.describe().c_str(),
               r.damaged.psnr_region, adapt.on() ? " adapted" : "", r.model.psnr_region,
               r.telea_radius, r.telea.psnr_region);
  std::fprintf(stderr, "cae ran %d of its %d tiles%s\n", r.tiles.tiles_run, r.tiles.tiles,
               model.informed() ? " (an informed model's: those that hold damage)" : "");
  const data::Image figure = train::repair_figure(r, o.zoom);
  data::write_png(o.figure, figure);
  std::fprintf(stderr, "wrote %s (%dx%d)\n", o.figure.c_str(), figure.w, figure.h);
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "damage a clean photo, repair it with a model and with cv::inpaint Telea, and write the "
      "figure: damaged | cae | Telea | original, then the same zoomed on the damage");
  o->common.add(cmd);
  o->corruption.add(cmd);
  cmd->add_option("photo", o->photo, "a clean photo (PNG or JPEG, any size) to damage")->required();
  cmd->add_option("-m,--model", o->model_path, "model file")->required();
  cmd->add_option("-o,--out", o->figure, "PNG to write (default compare.png)");
  cmd->add_option("--zoom", o->zoom,
                  "magnification of the bottom row's crop around the damage (default 4)")
      ->check(in_range(1, 32));
  o->adapt.add(cmd);
  cmd->add_option("--seed", o->seed, "seed of the damage (default 0: as cae eval's first photo)");
  cmd->add_option("--overlap", o->overlap, "pixels shared by neighbouring tiles (default: 1/4)")
      ->check(at_least(0));
  add_ensemble_option(cmd, o->ensemble);
  cmd->footer(
      "The damage is the corruption's (the model's own unless --corruption or flags say "
      "otherwise) and must include masks, lines, the crosshair or strokes. Telea's radius is the "
      "one of 1, 3, 5, 9 with the best PSNR inside the damage on this photo; each top panel's "
      "label gives that PSNR.");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
