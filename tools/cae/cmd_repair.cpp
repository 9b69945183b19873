// cae repair: the user's own damaged photos, repaired where their mask says (a mask file, a
// folder of masks matched by name, or the damage's colour), written at the photo's size,
// channels and bit depth with every undamaged pixel as it was. Everything the command line
// names is checked before any photo is read, and the outputs are written all or none.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "cae/error.h"
#include "commands.h"
#include "core/atomic_file.h"
#include "data/folder.h"
#include "data/image_io.h"
#include "data/mask.h"
#include "train/repair.h"

namespace cae::cli {

namespace {

namespace fs = std::filesystem;

struct RepairCommand {
  CommonOptions common;
  AdaptFlags adapt;
  std::vector<std::string> inputs;
  std::string model_path = "inpaint", mask, mask_color, out;
  int grow = 0, overlap = -1, ensemble = 1;
  double max_megapixels = train::kDefaultMaxMegapixels;
  std::uint64_t seed = 0;
};

// One photo to repair: where it is, its mask file ("" when the colour alone finds the damage),
// and where its repair goes.
struct Job {
  std::string photo, mask, target;
};

// The photos the arguments name: files as they are, folders as their image files.
std::vector<std::string> photo_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    if (fs::is_directory(in)) {
      const std::vector<std::string> found = data::list_images(in);
      if (found.empty()) throw Error(in + ": the folder holds no PNG or JPEG file");
      files.insert(files.end(), found.begin(), found.end());
    } else if (!fs::exists(in)) {
      throw Error(in + ": no such file or folder");
    } else {
      files.push_back(in);
    }
  }
  return files;
}

// The mask of each photo: one file for all, or the file of a folder with the photo's name (its
// stem: photo.jpg takes photo.png, photo.jpg or photo.jpeg).
std::vector<std::string> mask_files(const std::vector<std::string>& photos, const std::string& mask) {
  if (mask.empty()) return std::vector<std::string>(photos.size());
  if (!fs::is_directory(mask)) {
    if (!fs::exists(mask)) throw Error(mask + ": no such mask file or folder");
    return std::vector<std::string>(photos.size(), mask);
  }
  std::map<std::string, std::vector<std::string>> by_stem;
  for (const std::string& file : data::list_images(mask))
    by_stem[fs::path(file).stem().string()].push_back(file);
  std::vector<std::string> masks;
  for (const std::string& photo : photos) {
    const std::string stem = fs::path(photo).stem().string();
    const auto it = by_stem.find(stem);
    if (it == by_stem.end())
      throw Error(photo + ": no mask for it in " + mask + " (looked for " + stem + ".png, " +
                  stem + ".jpg or " + stem + ".jpeg)");
    if (it->second.size() > 1)
      throw Error(photo + ": " + mask + " holds " + std::to_string(it->second.size()) +
                  " masks named " + stem + " (" + it->second[0] + ", " + it->second[1] +
                  "): keep one");
    masks.push_back(it->second.front());
  }
  return masks;
}

// Where each repair goes: -o is a file (.png) for one photo, else a folder that takes each photo
// as NAME.png.
std::vector<std::string> targets(const std::vector<std::string>& photos, const std::string& out) {
  const std::string ext = lower_extension(out);
  if (ext == ".jpg" || ext == ".jpeg")
    throw Error("-o " + out +
                ": repairs are written as PNG (a JPEG would change every pixel, the undamaged "
                "ones too); name a .png file or a folder");
  std::vector<std::string> files;
  if (ext == ".png") {
    if (fs::is_directory(out))
      throw Error("-o " + out + " names a file, but it is an existing folder");
    if (photos.size() != 1)
      throw Error("-o " + out + " names one file, but " + std::to_string(photos.size()) +
                  " photos are given: name a folder");
    files.push_back(out);
  } else {
    if (fs::exists(out) && !fs::is_directory(out))
      throw Error("-o " + out + ": exists and is not a folder (name a .png file or a folder)");
    std::map<std::string, std::string> taken;
    for (const std::string& photo : photos) {
      const std::string file = (fs::path(out) / fs::path(photo).stem()).string() + ".png";
      if (const auto [it, fresh] = taken.emplace(file, photo); !fresh)
        throw Error(photo + " and " + it->second + " would both be written to " + file);
      files.push_back(file);
    }
  }
  for (std::size_t i = 0; i < photos.size(); ++i) {
    std::error_code ec;
    if (fs::exists(files[i]) && fs::equivalent(files[i], photos[i], ec))
      throw Error("-o: the repair of " + photos[i] + " would replace the photo itself");
  }
  return files;
}

data::ReadOptions read_options(double max_megapixels) {
  data::ReadOptions r;
  r.max_pixels = std::uint64_t(std::llround(max_megapixels * 1e6));
  r.limit_flag = "--max-megapixels";
  r.keep_alpha = true;
  return r;
}

// The photo's damage: its mask file, the damage's colour, or both together, then grown.
template <class Img>
data::Mask photo_mask(const Job& job, const Img& photo, const RepairCommand& o,
                      const std::optional<data::MaskColor>& color) {
  data::Mask mask;
  if (!job.mask.empty()) {
    mask = data::read_mask(job.mask, read_options(o.max_megapixels));
    if (mask.w != photo.w || mask.h != photo.h)
      throw Error(job.mask + ": the mask is " + std::to_string(mask.w) + "×" +
                  std::to_string(mask.h) + ", the photo " + job.photo + " is " +
                  std::to_string(photo.w) + "×" + std::to_string(photo.h));
  }
  if (color) {
    const data::Mask drawn = data::mask_from_color(photo, *color);
    if (mask.pixels.empty())
      mask = drawn;
    else
      data::add_mask(mask, drawn);
  }
  data::grow_mask(mask, o.grow);
  return mask;
}

// The photo (data::Image or Image16: its own depth) repaired, as the PNG file's bytes.
template <class Img>
std::vector<std::uint8_t> repaired_png(const Job& job, const Img& photo, const nn::Model& model,
                                       const train::RepairOptions& options, const RepairCommand& o,
                                       const std::optional<data::MaskColor>& color,
                                       train::RepairReport& report) {
  const data::Mask mask = photo_mask(job, photo, o, color);
  Img out = photo;
  try {
    out.pixels = train::repair_samples(model, {photo.pixels, photo.h, photo.w, photo.c},
                                       mask.pixels, options, &report);
  } catch (const Error& e) {
    throw Error(job.photo + ": " + e.what());
  }
  return data::png_bytes(out, job.target);
}

// Repairs one photo into batch; says on stderr what it did.
void repair_one(const Job& job, const nn::Model& model, const train::RepairOptions& options,
                const RepairCommand& o, const std::optional<data::MaskColor>& color,
                FileBatch& batch) {
  const auto start = std::chrono::steady_clock::now();
  const data::ReadOptions read = read_options(o.max_megapixels);
  // 8-bit samples for files of 8 bits or fewer, so that the repair is what cae eval scores;
  // a 16-bit PNG's own samples otherwise.
  const int bits = data::image_bits(job.photo) <= 8 ? 8 : 16;
  train::RepairReport report;
  int w = 0, h = 0;
  std::vector<std::uint8_t> png;
  if (bits == 8) {
    const data::Image photo = data::read_image(job.photo, read);
    w = photo.w, h = photo.h;
    png = repaired_png(job, photo, model, options, o, color, report);
  } else {
    const data::Image16 photo = data::read_image16(job.photo, read);
    w = photo.w, h = photo.h;
    png = repaired_png(job, photo, model, options, o, color, report);
  }
  batch.add(job.target, png);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (report.damaged == 0)
    std::fprintf(stderr, "cae: warning: %s: the mask marks no damage; the photo is copied "
                         "unchanged\n", job.photo.c_str());
  const double share = 100.0 * double(report.damaged) / (double(w) * h);
  const std::string adapted =
      report.adapted ? ", adapted " + std::to_string(o.adapt.steps) + " steps" : "";
  std::fprintf(stderr, "%s (%dx%d, %d-bit): %zu damaged pixels (%.2f%%), %d of %d tiles run%s, "
                       "%.2f s -> %s\n",
               job.photo.c_str(), w, h, bits, report.damaged, share, report.tiles.tiles_run,
               report.tiles.tiles, adapted.c_str(), seconds, job.target.c_str());
}

void run(const RepairCommand& o) {
  if (o.mask.empty() && o.mask_color.empty())
    throw Error(
        "repair: say where the damage is: --mask FILE|FOLDER or --mask-color R,G,B[:TOLERANCE] "
        "(cae compare damages a clean photo itself and compares the repair with cv::inpaint)");
  std::optional<data::MaskColor> color;
  if (!o.mask_color.empty()) color = data::parse_mask_color(o.mask_color);
  const std::vector<std::string> photos = photo_files(o.inputs);
  const std::vector<std::string> masks = mask_files(photos, o.mask);
  const std::vector<std::string> files = targets(photos, o.out);
  const ops::Backend backend = o.common.apply();
  const nn::Model model = load_model(o.model_path);
  if (!model.informed())
    throw Error(o.model_path +
                ": the model is blind: it takes no mask and denoises whole images (cae "
                "denoise); repairing a mask needs an informed model (trained with --informed)");
  train::RepairOptions options;
  options.tiles.backend = backend;
  options.tiles.executor = o.common.executor_options();
  options.tiles.overlap = o.overlap;
  options.tiles.ensemble = o.ensemble;
  options.adapt = o.adapt.options(model, backend, options.tiles.executor, o.seed);

  // A folder this run makes is removed again when the run writes nothing into it.
  const bool folder = lower_extension(o.out) != ".png", made = folder && !fs::exists(o.out);
  if (folder) fs::create_directories(o.out);
  try {
    FileBatch batch;
    for (std::size_t i = 0; i < photos.size(); ++i)
      repair_one({photos[i], masks[i], files[i]}, model, options, o, color, batch);
    batch.commit();
  } catch (...) {
    std::error_code ignored;
    if (made) fs::remove(o.out, ignored);  // only when empty
    throw;
  }
  if (photos.size() > 1)
    std::fprintf(stderr, "repaired %zu photos into %s\n", photos.size(), o.out.c_str());
}

}  // namespace

void add_repair_command(CLI::App& app) {
  auto o = std::make_shared<RepairCommand>();
  CLI::App* cmd = app.add_subcommand(
      "repair",
      "repair your own damaged photos where a mask says: written at the photo's size, channels "
      "and bit depth, every undamaged pixel as it was");
  o->common.add(cmd);
  cmd->add_option("photos", o->inputs, "photos (PNG of any depth, or JPEG) or folders of them")
      ->required();
  cmd->add_option("-m,--model", o->model_path,
                  "an informed model: a file, or a shipped model's name (default: inpaint; cae "
                  "models lists them)");
  cmd->add_option("--mask", o->mask,
                  "the damage: an image of the photo's size, non-zero = repair (an alpha channel, "
                  "when it has one, decides; a JPEG mask counts from 128), or a folder of masks "
                  "named as the photos (photo.jpg takes photo.png, .jpg or .jpeg)");
  cmd->add_option("--mask-color", o->mask_color,
                  "the damage is drawn in the photo in this colour: R,G,B, or R,G,B:TOLERANCE to "
                  "take every colour that far from it per channel (0-255; default 0, exact); "
                  "with --mask, both mark damage");
  cmd->add_option("--grow", o->grow,
                  "grow the damage by N pixels in every direction, to cover a drawing's soft edge "
                  "(default 0)")
      ->check(in_range(0, 1000));
  cmd->add_option("-o,--out", o->out,
                  "where to write: a .png file (one photo) or a folder (created; each photo as "
                  "NAME.png)")
      ->required();
  o->adapt.add(cmd);
  cmd->add_option("--seed", o->seed, "seed of --adapt's crops and their damage (default 0)");
  cmd->add_option("--overlap", o->overlap, "pixels shared by neighbouring tiles (default: 1/4)")
      ->check(at_least(0));
  add_ensemble_option(cmd, o->ensemble);
  cmd->add_option("--max-megapixels", o->max_megapixels,
                  "refuse photos and masks larger than this, before reading them (default 50)")
      ->check(in_range(1e-6, 1e5));
  cmd->footer(
      "Only the tiles that touch the damage run. A photo whose mask marks nothing is copied "
      "unchanged, with a warning. Nothing is written unless every photo is repaired. "
      "docs/repair.md has the mask conventions and examples.");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
