// The corruption flags shared by train, eval, show and checkerboard.
#include "commands.h"

namespace cae::cli {

void CorruptionOptions::add(CLI::App* cmd) {
  const std::string group = "Corruption";
  cmd->add_option("--corruption", text,
                  "the damage as text, e.g. 'gaussian sigma=0.3 + masks count=2 min=4 max=8' "
                  "(docs/evaluation.md); the flags below override it")
      ->group(group);
  cmd->add_option("--noise", noise, "Gaussian noise sigma, clipped to [0,1] (0 = off)")
      ->check(in_range(0.0, 100.0))
      ->group(group);
  cmd->add_option("--speckle", speckle, "speckle sigma: x + x sigma N(0,1), clipped (0 = off)")
      ->check(in_range(0.0, 100.0))
      ->group(group);
  cmd->add_option("--salt-pepper", salt_pepper, "fraction of pixels set to 0 or 1 (0 = off)")
      ->check(in_range(0.0, 1.0))
      ->group(group);
  cmd->add_option("--masks", masks, "rectangles to blank out per image, for inpainting (0 = off)")
      ->check(in_range(0, 1000))
      ->group(group);
  cmd->add_option("--mask-min", mask_min, "smallest mask side in pixels (default 4)")
      ->check(in_range(1, 65536))
      ->group(group);
  cmd->add_option("--mask-max", mask_max, "largest mask side in pixels (default 8)")
      ->check(in_range(1, 65536))
      ->group(group);
  cmd->add_option("--mask-value", mask_value, "value masks are filled with (default 0)")
      ->check(in_range(0.0, 1.0))
      ->group(group);
  cmd->add_option("--lines", lines, "full-length horizontal or vertical lines per image (0 = off)")
      ->check(in_range(0, 1000))
      ->group(group);
  cmd->add_flag("--crosshair", crosshair, "a crosshair through the centre of each image")
      ->group(group);
  cmd->add_option("--line-thickness", thickness, "lines and crosshair: pixels (default 1)")
      ->check(in_range(1, 65536))
      ->group(group);
  cmd->add_option("--jitter", jitter, "crosshair: centre moves up to this many pixels (default 2)")
      ->check(in_range(0, 65536))
      ->group(group);
  cmd->add_option("--line-value", line_value, "lines and crosshair: value (default 1)")
      ->check(in_range(0.0, 1.0))
      ->group(group);
  cmd->add_option("--strokes", strokes,
                  "free-form brush strokes per image, for inpainting (0 = off; their length and "
                  "vertices through --corruption)")
      ->check(in_range(0, 1000))
      ->group(group);
  cmd->add_option("--stroke-min", stroke_min, "narrowest stroke in pixels (default 4)")
      ->check(in_range(1, 65536))
      ->group(group);
  cmd->add_option("--stroke-max", stroke_max, "widest stroke in pixels (default 8)")
      ->check(in_range(1, 65536))
      ->group(group);
  cmd->add_option("--stroke-value", stroke_value, "value strokes are painted with (default 1)")
      ->check(in_range(0.0, 1.0))
      ->group(group);
}

data::Corruption CorruptionOptions::apply(data::Corruption c) const {
  if (!text.empty()) c = data::parse_corruption(text);
  if (noise >= 0) c.gaussian_sigma = noise;
  if (speckle >= 0) c.speckle_sigma = speckle;
  if (salt_pepper >= 0) c.salt_pepper = salt_pepper;
  if (masks >= 0) c.masks = masks;
  if (mask_min >= 0) c.mask_min = mask_min;
  if (mask_max >= 0) c.mask_max = mask_max;
  if (mask_value >= 0) c.mask_value = mask_value;
  if (lines >= 0) c.lines = lines;
  if (crosshair) c.crosshair = true;
  if (thickness >= 0) c.line_thickness = thickness;
  if (jitter >= 0) c.crosshair_jitter = jitter;
  if (line_value >= 0) c.line_value = line_value;
  if (strokes >= 0) c.strokes = strokes;
  if (stroke_min >= 0) c.stroke_min = stroke_min;
  if (stroke_max >= 0) c.stroke_max = stroke_max;
  if (stroke_value >= 0) c.stroke_value = stroke_value;
  c.validate();
  return c;
}

}  // namespace cae::cli
