// Usage errors: the checks options run on their values, and the one line any CLI11 parse error
// becomes. main() prints it as `cae: error: <line>` and exits 2 (docs/usage.md, Errors).
#pragma once

#include <CLI/CLI.hpp>
#include <initializer_list>
#include <string>
#include <vector>

namespace cae::cli {

// Option checks whose messages say what was expected and what was found; CLI11 puts the option's
// name in front ("--batch: value 0 is not in 1 … 65536"). Numbers are read as CLI11 reads them.
// in_range: lo ≤ value ≤ hi ("value 0 is not in 1 … 65536", "'abc' is not an integer").
CLI::Validator in_range(int lo, int hi);
// in_range for real values; NaN is never in range ("'x' is not a number").
CLI::Validator in_range(double lo, double hi);
// lo ≤ value ≤ the largest int ("value -3 is below 0").
CLI::Validator at_least(int lo);
// A finite value above lo ("value 0 is not above 0").
CLI::Validator above(double lo);
// One of the names ("'frob' is not one of dnnl, ref, cuda").
CLI::Validator one_of(std::vector<std::string> names);
// One of the integers ("value 12 is not one of 8, 16").
CLI::Validator one_of(std::initializer_list<int> values);

// The parse error e of app (not a CLI::Success: --help and --version are app.exit's) as one line
// without the `cae: error: ` prefix, naming the option or argument, what it expected and what it
// found, and ending with where to read more: `--batch: value 0 is not in 1 … 65536 (see 'cae
// train --help')`. No newline in it; throws only std::bad_alloc.
std::string usage_error(const CLI::App& app, const CLI::ParseError& e);

}  // namespace cae::cli
