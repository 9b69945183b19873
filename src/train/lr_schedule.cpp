#include "train/lr_schedule.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <sstream>
#include <vector>

#include "cae/error.h"
#include "core/text.h"

namespace cae::train {

namespace {

const char* const kForms =
    "constant, step every=N [gamma=G], cosine [min=M] or plateau [factor=F] [patience=P] "
    "[min=M]";

double number(const std::string& word, const std::string& value) {
  double v = 0;
  const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || r.ec != std::errc() || r.ptr != value.data() + value.size() ||
      !std::isfinite(v))
    throw Error("'" + word + "' is not a number");
  return v;
}

int whole(const std::string& word, const std::string& value) {
  const double v = number(word, value);
  if (v != std::floor(v) || v < 1 || v > 1e9)
    throw Error("'" + word + "' is not a whole number of at least 1");
  return int(v);
}

double fraction(const std::string& word, const std::string& value) {
  const double v = number(word, value);
  if (!(v > 0 && v <= 1)) throw Error("'" + word + "' is not in (0, 1]");
  return v;
}

}  // namespace

LrSchedule parse_lr_schedule(const std::string& text) {
  std::istringstream words(text);
  std::string name;
  if (!(words >> name)) throw Error("empty schedule (expected " + std::string(kForms) + ")");
  LrSchedule s;
  if (name == "constant")
    s.kind = LrScheduleKind::constant;
  else if (name == "step")
    s.kind = LrScheduleKind::step;
  else if (name == "cosine")
    s.kind = LrScheduleKind::cosine;
  else if (name == "plateau")
    s.kind = LrScheduleKind::plateau;
  else
    throw Error("unknown schedule '" + name + "' (expected " + kForms + ")");
  bool has_every = false;
  std::vector<std::string> seen;
  std::string word;
  while (words >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("'" + word + "': expected key=value after '" + name + "'");
    const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (std::find(seen.begin(), seen.end(), key) != seen.end())
      throw Error("'" + word + "': key '" + key + "' appears twice");
    seen.push_back(key);
    using K = LrScheduleKind;
    if (s.kind == K::step && key == "every") {
      s.every = whole(word, value);
      has_every = true;
    } else if (s.kind == K::step && key == "gamma") {
      s.gamma = fraction(word, value);
    } else if (s.kind == K::plateau && key == "factor") {
      s.factor = fraction(word, value);
    } else if (s.kind == K::plateau && key == "patience") {
      s.patience = whole(word, value);
    } else if ((s.kind == K::cosine || s.kind == K::plateau) && key == "min") {
      s.min_lr = number(word, value);
      if (s.min_lr < 0) throw Error("'" + word + "' is negative");
    } else {
      throw Error("'" + word + "': unknown key for '" + name + "' (expected " + kForms + ")");
    }
  }
  if (s.kind == LrScheduleKind::step && !has_every)
    throw Error("'step' needs every=N (epochs between decays)");
  return s;
}

void check_lr_schedule(const LrSchedule& s, float base_lr) {
  const bool has_floor = s.kind == LrScheduleKind::cosine || s.kind == LrScheduleKind::plateau;
  if (has_floor && float(s.min_lr) >= base_lr)
    throw Error("lr schedule '" + format_lr_schedule(s) +
                "': the floor min=" + exact_text(s.min_lr) + " must be below the starting lr " +
                exact_text(base_lr) + " (--lr)");
}

std::string format_lr_schedule(const LrSchedule& s) {
  switch (s.kind) {
    case LrScheduleKind::constant:
      return "constant";
    case LrScheduleKind::step:
      return "step every=" + std::to_string(s.every) + " gamma=" + exact_text(s.gamma);
    case LrScheduleKind::cosine:
      return "cosine min=" + exact_text(s.min_lr);
    case LrScheduleKind::plateau:
      return "plateau factor=" + exact_text(s.factor) + " patience=" + std::to_string(s.patience) +
             " min=" + exact_text(s.min_lr);
  }
  return "constant";
}

LrState initial_lr_state(double base_lr) {
  LrState state;
  state.lr = base_lr;
  return state;
}

double lr_of_epoch(const LrSchedule& s, double base_lr, int epoch, int epochs,
                   const LrState& state) {
  switch (s.kind) {
    case LrScheduleKind::constant:
      return base_lr;
    case LrScheduleKind::step:
      return base_lr * std::pow(s.gamma, (epoch - 1) / s.every);
    case LrScheduleKind::cosine: {
      if (epochs <= 1) return base_lr;
      const double t = double(epoch - 1) / double(epochs - 1);
      return s.min_lr + (base_lr - s.min_lr) * (1 + std::cos(std::numbers::pi * t)) / 2;
    }
    case LrScheduleKind::plateau:
      return state.lr;
  }
  return base_lr;
}

void end_lr_epoch(const LrSchedule& s, double test_loss, LrState& state) {
  if (s.kind != LrScheduleKind::plateau) return;
  if (test_loss < state.best) {
    state.best = test_loss;
    state.since = 0;
    return;
  }
  if (++state.since >= s.patience) {
    state.lr = std::max(state.lr * s.factor, s.min_lr);
    state.since = 0;
  }
}

std::string format_lr_state(const LrState& state) {
  return "best=" + exact_text(state.best) + " since=" + std::to_string(state.since) +
         " lr=" + exact_text(state.lr);
}

LrState parse_lr_state(const std::string& text) {
  LrState state;
  std::istringstream words(text);
  std::string best, since, lr;
  words >> best >> since >> lr;
  try {
    if (best.rfind("best=", 0) != 0 || since.rfind("since=", 0) != 0 || lr.rfind("lr=", 0) != 0)
      throw Error("expected 'best=B since=S lr=L'");
    const std::string b = best.substr(5);
    state.best = b == "inf" ? std::numeric_limits<double>::infinity() : number(best, b);
    state.since = std::stoi(since.substr(6));
    state.lr = number(lr, lr.substr(3));
  } catch (const std::exception& e) {
    throw Error("lr schedule state '" + text + "': " + e.what());
  }
  return state;
}

}  // namespace cae::train
