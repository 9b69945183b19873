// Usage errors in the house form. CLI11 (Debian 12: 2.1.2) words its parse errors for a
// programmer ("Could not convert: --seed = abc", "The following arguments were not expected:
// x --bar") and prints a second line; here each kind of error is reworded from the error's type,
// its text and the app it came from. Only plain string searches read CLI11's text: the fuzz target
// (fuzz/fuzz_cli.cpp) feeds this code arbitrary argument lists.
#include "usage.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace cae::cli {

namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string range_text(const std::string& lo, const std::string& hi) { return lo + " … " + hi; }

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

// Integers and reals are read exactly as CLI11 then converts them for the option.
bool read_integer(const std::string& text, std::int64_t& v) {
  return CLI::detail::lexical_cast(text, v);
}
bool read_real(const std::string& text, double& v) { return CLI::detail::lexical_cast(text, v); }

}  // namespace

// Each check describes itself in --help as CLI11's Range, NonNegativeNumber and PositiveNumber do,
// in ASCII: CLI11 aligns the help's columns by bytes.
CLI::Validator in_range(int lo, int hi) {
  const std::string range = range_text(std::to_string(lo), std::to_string(hi));
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        std::int64_t v;
        if (!read_integer(input, v)) return in_quotes(input) + " is not an integer";
        if (v < lo || v > hi) return "value " + input + " is not in " + range;
        return {};
      },
      "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

CLI::Validator in_range(double lo, double hi) {
  const std::string range = range_text(number_text(lo), number_text(hi));
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        double v;
        if (!read_real(input, v)) return in_quotes(input) + " is not a number";
        if (!(v >= lo && v <= hi)) return "value " + input + " is not in " + range;
        return {};
      },
      "FLOAT in [" + number_text(lo) + " - " + number_text(hi) + "]");
}

CLI::Validator at_least(int lo) {
  return CLI::Validator(
      [lo](std::string& input) -> std::string {
        constexpr int most = std::numeric_limits<int>::max();
        std::int64_t v;
        if (!read_integer(input, v)) return in_quotes(input) + " is not an integer";
        if (v < lo) return "value " + input + " is below " + std::to_string(lo);
        if (v > most) return "value " + input + " is above " + std::to_string(most);
        return {};
      },
      lo == 0 ? "NONNEGATIVE" : "INT >= " + std::to_string(lo));
}

CLI::Validator above(double lo) {
  return CLI::Validator(
      [lo](std::string& input) -> std::string {
        double v;
        if (!read_real(input, v)) return in_quotes(input) + " is not a number";
        if (!std::isfinite(v)) return "value " + input + " is not a finite number";
        if (!(v > lo)) return "value " + input + " is not above " + number_text(lo);
        return {};
      },
      lo == 0 ? "POSITIVE" : "FLOAT > " + number_text(lo));
}

CLI::Validator one_of(std::vector<std::string> names) {
  return CLI::Validator(
      [names](std::string& input) -> std::string {
        if (std::find(names.begin(), names.end(), input) != names.end()) return {};
        return in_quotes(input) + " is not one of " + joined(names, ", ");
      },
      "{" + joined(names, ",") + "}");
}

CLI::Validator one_of(std::initializer_list<int> list) {
  const std::vector<int> values(list);
  std::vector<std::string> names;
  for (int v : values) names.push_back(std::to_string(v));
  return CLI::Validator(
      [values, names](std::string& input) -> std::string {
        std::int64_t v;
        if (!read_integer(input, v))
          return in_quotes(input) + " is not one of " + joined(names, ", ");
        if (std::find(values.begin(), values.end(), v) != values.end()) return {};
        return "value " + input + " is not one of " + joined(names, ", ");
      },
      "{" + joined(names, ",") + "}");
}

namespace {

// The command being parsed when the error came: the last subcommand named on the line, or the
// app itself.
const CLI::App& current_command(const CLI::App& app) {
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().back();
  return *at;
}

// "cae train": the app's own name is argv[0], so the words come from the subcommands.
std::string command_words(const CLI::App& app, const CLI::App& command) {
  std::string words = "cae";
  for (const CLI::App* at = &app; at != &command;) {
    at = at->get_subcommands().back();
    words += " " + at->get_name();
  }
  return words;
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

bool looks_like_option(const std::string& arg) {
  double number;
  return arg.size() > 1 && arg[0] == '-' && !read_real(arg, number);
}

// Edit distance, for "did you mean": small strings only (option names).
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The command's long option nearest to an unknown one ("--bach": "--batch"), or "".
std::string nearest_option(const CLI::App& command, const std::string& arg) {
  if (arg.size() < 3 || arg.size() > 64 || arg.compare(0, 2, "--") != 0) return "";
  const std::string name = arg.substr(0, arg.find('='));
  std::string best;
  std::size_t best_distance = 3;  // at most two edits away
  for (const CLI::Option* opt : command.get_options())
    for (const std::string& lname : opt->get_lnames()) {
      const std::size_t d = distance(name, "--" + lname);
      if (d < best_distance) best = "--" + lname, best_distance = d;
    }
  return best;
}

// "--model" or "argument 'model'", for an option's or a positional's name.
std::string argument_name(const std::string& name) {
  return name.empty() || name[0] == '-' ? name : "argument " + in_quotes(name);
}

// The option's help text after a colon, or nothing when it has none.
std::string described(const CLI::App& command, const std::string& name) {
  const CLI::Option* opt = command.get_option_no_throw(name);
  return opt && !opt->get_description().empty() ? ": " + opt->get_description() : "";
}

// What an option's values must look like, from its type, for CLI11's failed conversions.
std::string expected_kind(const CLI::Option* opt) {
  if (!opt) return "a valid value";
  if (opt->get_items_expected_max() == 0) return "true or false";
  std::string type = opt->get_type_name();
  type = type.substr(0, type.find(':'));
  if (type == "INT") return "an integer";
  if (type == "UINT") return "a non-negative integer";
  if (type == "FLOAT") return "a number";
  return "a valid " + (type.empty() ? std::string("value") : type);
}

// CLI11's "NAME: text" split at the first ": " (name empty when there is none).
std::pair<std::string, std::string> name_and_text(const std::string& message) {
  const std::size_t colon = message.find(": ");
  if (colon == std::string::npos || colon == 0) return {"", message};
  return {message.substr(0, colon), message.substr(colon + 2)};
}

std::string lower_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = char(s[0] - 'A' + 'a');
  return s;
}

// Any other error: CLI11's own words, in the house's case.
std::string generic(const std::string& message) {
  const auto [name, text] = name_and_text(message);
  return name.empty() ? lower_first(text) : name + ": " + lower_first(text);
}

// The number after `key` in text ("At Most 1 required but received 2", "received "), or -1.
long number_after(const std::string& text, const std::string& key) {
  const std::size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  const std::string rest = text.substr(at + key.size());
  std::size_t digits = 0;
  while (digits < rest.size() && digits < 9 && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
  return digits ? std::stol(rest.substr(0, digits)) : -1;
}

std::string values_text(long n) { return std::to_string(n) + (n == 1 ? " value" : " values"); }

std::string missing_command(const CLI::App& app) {
  const std::string expected = "expected one of " + joined(command_names(app), ", ");
  const std::vector<std::string> extra = app.remaining();
  if (extra.empty()) return "no command given: " + expected;
  if (looks_like_option(extra[0]))
    return "unknown option " + extra[0] + " before the command: " + expected;
  return "unknown command " + in_quotes(extra[0]) + ": " + expected;
}

std::string required(const CLI::App& app, const CLI::App& command, const std::string& message) {
  if (message == "A subcommand is required") return missing_command(app);
  const std::string suffix = " is required";
  if (message.size() <= suffix.size() ||
      message.compare(message.size() - suffix.size(), suffix.size(), suffix) != 0)
    return generic(message);
  const std::string name = message.substr(0, message.size() - suffix.size());
  return argument_name(name) + suffix + described(command, name);
}

std::string extras(const CLI::App& app, const CLI::App& command, const CLI::ExtrasError& e) {
  // The error is named after the app that refused the arguments; its remaining() are them.
  const CLI::App* refusing = &command;
  if (e.get_name() != command.get_name())
    for (const CLI::App* at = &app; at;
         at = at->get_subcommands().empty() ? nullptr : at->get_subcommands().back())
      if (at->get_name() == e.get_name()) refusing = at;
  const std::vector<std::string> args = refusing->remaining();
  if (args.empty()) return generic(e.what());
  std::vector<std::string> options, others;
  for (const std::string& arg : args) (looks_like_option(arg) ? options : others).push_back(arg);
  // Words after an unknown option are most likely its values: the option is the news.
  if (!options.empty()) {
    std::string what =
        (options.size() == 1 ? "unknown option " : "unknown options ") + joined(options, ", ");
    if (options.size() == 1)
      if (const std::string near = nearest_option(*refusing, options[0]); !near.empty())
        what += " (did you mean " + near + "?)";
    return what;
  }
  for (std::string& arg : others) arg = in_quotes(arg);
  const bool takes_none =
      refusing->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
  return (others.size() == 1 ? "unexpected argument " : "unexpected arguments ") +
         joined(others, ", ") +
         (takes_none && refusing != &app ? ": " + refusing->get_name() + " takes no arguments"
                                         : "");
}

std::string conversion(const CLI::App& command, const std::string& message) {
  const std::string prefix = "Could not convert: ";
  const std::size_t equals = message.find(" = ");
  if (message.compare(0, prefix.size(), prefix) != 0 || equals == std::string::npos)
    return generic(message);
  const std::string name = message.substr(prefix.size(), equals - prefix.size());
  const std::string found = message.substr(equals + 3);
  return name + ": " + in_quotes(found) + " is not " +
         expected_kind(command.get_option_no_throw(name));
}

std::string argument_count(const CLI::App& command, const std::string& message) {
  const auto [name, text] = name_and_text(message);
  if (!name.empty() && text.size() > 8 && text.compare(text.size() - 8, 8, " missing") == 0)
    return argument_name(name) + " needs a value" + described(command, name);
  const long received = number_after(text, "received ");
  if (!name.empty() && received >= 0) {
    if (const long most = number_after(text, "At Most "); most >= 0)
      return name + ": expected " + (most == 1 ? "1 value" : "at most " + values_text(most)) +
             ", found " + std::to_string(received);
    if (const long least = number_after(text, "At least "); least >= 0)
      return name + ": expected at least " + values_text(least) + ", found " +
             std::to_string(received);
  }
  return generic(message);
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

}  // namespace

std::string usage_error(const CLI::App& app, const CLI::ParseError& e) {
  try {
    const CLI::App& command = current_command(app);
    std::string what;
    if (dynamic_cast<const CLI::RequiredError*>(&e))
      what = required(app, command, e.what());
    else if (const auto* extra = dynamic_cast<const CLI::ExtrasError*>(&e))
      what = extras(app, command, *extra);
    else if (dynamic_cast<const CLI::ConversionError*>(&e))
      what = conversion(command, e.what());
    else if (dynamic_cast<const CLI::ArgumentMismatch*>(&e))
      what = argument_count(command, e.what());
    else  // ValidationError: the checks above already speak the house form
      what = generic(e.what());
    return one_line(what + " (see '" + command_words(app, command) + " --help')");
  } catch (...) {  // what this code did not foresee: CLI11's own words
    return one_line(e.what());
  }
}

}  // namespace cae::cli
