#include "ops/dnnl/kernel_choice.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "core/isa.h"
#include "core/rng.h"
#include "core/warn.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/net_check.h"

namespace cae::ops {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr const char* kCacheFormat = "cae kernel cache";
// Raised whenever a kernel changes in a way that could change which one is fastest, so that
// choices measured on older kernels are measured again.
constexpr int kCacheVersion = 1;

// Each candidate build is timed for at least this long (one pass after the warm-up at least,
// ten at most): a pass of the seed at batch 200 takes ~40 ms, at batch 1 ~0.1 ms.
constexpr double kTimedMs = 30;
constexpr int kMaxPasses = 10;
constexpr double kLongPassMs = 100;  // a pass this long is timed once
// The combination keeps its place unless it is this much slower than the best single build.
constexpr double kCombinationSlack = 1.03;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// What, besides the op, decides which kernel is fastest: the CPU, the tier its kernels run on
// (a cap included), the threads, the batch, whether backward runs and whether bf16 is among the
// candidates (ExecutorOptions::precision).
std::string machine_key(const NetDesc& net, const ExecutorOptions& options) {
  return cpu_model() + " | " + dnnl_isa() + " | threads " + std::to_string(omp_get_max_threads()) +
         " | batch " + std::to_string(net.batch) + " | " +
         (options.forward_only ? "inference" : "training") +
         (options.precision == ExecutorOptions::Precision::bf16 ? " | bf16" : "");
}

// Everything about op i that its candidates' speed and feasibility depend on.
std::string op_key(const NetDesc& net, int i) {
  const OpDesc& op = net.ops[i];
  const char* act = activation_info(op.act).spec_word;
  std::string key = "conv " + dims_string(op.in) + " -> " + dims_string(op.out) + " k" +
                    std::to_string(op.kernel) + " s" + std::to_string(op.stride) + " pad " +
                    std::to_string(op.pad_top) + "," + std::to_string(op.pad_left) + "," +
                    std::to_string(op.pad_bottom) + "," + std::to_string(op.pad_right) + " " +
                    (*act ? act : "linear") + (op.bias ? "" : " nobias");
  if (i == 0) key += " first";
  if (i + 1 < int(net.ops.size()) && net.ops[i + 1].kind == OpKind::maxpool) key += " pooled";
  return key;
}

// The cache file, read once per build. Entries: key -> {kernel, ms: {kernel: ms}}.
struct Cache {
  std::string path;
  Json entries = Json::object();
};

// Warns once per process per file and reason.
void warn_once(const std::string& message, std::vector<std::string>& notes) {
  static std::mutex mutex;
  static std::set<std::string> said;
  notes.push_back(message);
  std::lock_guard lock(mutex);
  if (said.insert(message).second) warn(message);
}

Cache read_cache(const std::string& path, std::vector<std::string>& notes) {
  Cache cache{path, Json::object()};
  if (path.empty() || !std::filesystem::exists(path)) return cache;
  try {
    const std::vector<std::uint8_t> bytes = read_file(path);
    const Json doc = Json::parse(bytes.begin(), bytes.end());
    if (!doc.is_object() || doc.value("format", "") != kCacheFormat ||
        !doc.contains("version") || !doc["version"].is_number_integer() ||
        !doc.contains("entries") || !doc["entries"].is_object()) {
      warn_once("kernel cache " + path + " is not a cae kernel cache: ignored (it will be rewritten)",
                notes);
      return cache;
    }
    if (doc["version"].get<int>() != kCacheVersion) {
      notes.push_back("kernel cache " + path + " is of version " +
                      std::to_string(doc["version"].get<int>()) + ", not " +
                      std::to_string(kCacheVersion) + ": measured again");
      return cache;
    }
    cache.entries = doc["entries"];
  } catch (const std::exception& e) {  // Json::parse_error, or a read error
    warn_once("kernel cache " + path + " could not be read (" + e.what() +
                  "): ignored (it will be rewritten)",
              notes);
  }
  return cache;
}

// The cached choice for key among candidates, or nothing when there is none (or it is not one
// of them, or malformed).
std::optional<OpChoice> cached_choice(const Cache& cache, const std::string& key, int op,
                                      const std::vector<ConvKernel>& candidates) {
  const auto it = cache.entries.find(key);
  if (it == cache.entries.end() || !it->is_object()) return std::nullopt;
  try {
    OpChoice choice{op, parse_conv_kernel(it->at("kernel").get<std::string>()), {}, true};
    if (std::find(candidates.begin(), candidates.end(), choice.kernel) == candidates.end())
      return std::nullopt;
    for (const auto& [name, ms] : it->at("ms").items())
      choice.times.push_back({parse_conv_kernel(name), ms.get<double>()});
    // In ConvKernel's order, as a fresh measurement lists them (JSON keeps them by name).
    std::ranges::sort(choice.times, {}, &KernelTime::kernel);
    return choice;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Writes the new choices over what the file holds now (another process may have added some).
void write_cache(const Cache& cache, const std::map<std::string, OpChoice>& fresh,
                 std::vector<std::string>& notes) {
  if (cache.path.empty() || fresh.empty()) return;
  std::vector<std::string> ignored;
  Cache now = read_cache(cache.path, ignored);
  for (const auto& [key, choice] : fresh) {
    Json ms = Json::object();
    for (const KernelTime& t : choice.times) ms[conv_kernel_name(t.kernel)] = t.ms;
    now.entries[key] = {{"kernel", conv_kernel_name(choice.kernel)}, {"ms", ms}};
  }
  const Json doc = {{"format", kCacheFormat}, {"version", kCacheVersion}, {"entries", now.entries}};
  const std::string text = doc.dump(1) + "\n";
  try {
    std::filesystem::create_directories(std::filesystem::path(cache.path).parent_path());
    write_file_atomic(cache.path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  } catch (const std::exception& e) {
    warn_once("kernel cache " + cache.path + " could not be written (" + e.what() +
                  "): the choices will be measured again next time",
              notes);
  }
}

// One build's times: per op, its own steps per pass; and the whole pass.
struct BuildTime {
  std::vector<double> op_ms;
  double total_ms = 0;
};

// Requires exec built for net. Runs one warm-up pass, then timed passes until kTimedMs has gone
// (one at least, kMaxPasses at most), each step timed on its own (profile_dnnl_steps); per op
// the quickest pass is kept, so that a pass slowed by another process (threads preempted in an
// OpenMP barrier cost milliseconds) does not decide.
BuildTime time_build(Executor& exec, const NetDesc& net, bool backward) {
  Rng rng({0x6b65726e656c73ull});  // "kernels": the same data for every candidate
  // Weights and inputs of a trained net's scale: no denormals, no NaN from unset memory.
  for (float& p : exec.params()) p = 0.05f * (rng.uniform() - 0.5f);
  std::vector<float> x(std::size_t(net.batch) * net.input.size());
  for (float& v : x) v = rng.uniform();
  std::vector<float> d_out(std::size_t(net.batch) * net.output().size());
  for (float& v : d_out) v = 1e-3f * (rng.uniform() - 0.5f);
  BuildTime best;
  best.op_ms.assign(net.ops.size(), std::numeric_limits<double>::infinity());
  best.total_ms = std::numeric_limits<double>::infinity();
  double spent = 0;
  // Two passes at least where a pass is short, so that the quicker may be a clean one.
  const auto enough = [&](int passes) {
    return passes >= kMaxPasses || (spent >= kTimedMs && (passes >= 2 || spent >= kLongPassMs));
  };
  for (int pass = 0; !enough(pass); ++pass) {
    const auto steps = profile_dnnl_steps(exec, x.data(), d_out.data(), 1, backward, pass == 0);
    std::vector<double> op_ms(net.ops.size(), 0.0);
    double total = 0;
    for (const StepTime& s : steps) {
      if (s.op >= 0) op_ms[s.op] += s.ms;
      total += s.ms;
    }
    for (std::size_t i = 0; i < op_ms.size(); ++i) best.op_ms[i] = std::min(best.op_ms[i], op_ms[i]);
    best.total_ms = std::min(best.total_ms, total);
    spent += total;
  }
  return best;
}

bool winograd_allowed(const ExecutorOptions& options, bool ours) {
  using W = ExecutorOptions::Winograd;
  return options.winograd == W::cae || (options.winograd == W::onednn && !ours);
}

}  // namespace

std::vector<ConvKernel> conv_candidates(const NetDesc& net, int i, const ExecutorOptions& options,
                                        ConvKernel rule) {
  const OpDesc& op = net.ops[i];
  if (op.kind != OpKind::conv) return {};
  std::vector<ConvKernel> out{rule};
  auto add = [&](ConvKernel k) {
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  };
  add(ConvKernel::direct);
  if (options.thin_convs && thin_conv_fits(op)) add(ConvKernel::thin);
  if (i > 0 && winograd_allowed(options, true)) {
    if (own_winograd_fits(op, 4)) add(ConvKernel::winograd4);
    if (own_winograd_fits(op, 2)) add(ConvKernel::winograd2);
  }
  if (winograd_allowed(options, false) && onednn_winograd_fits(op, true))
    add(ConvKernel::onednn_winograd);
  if (options.precision == ExecutorOptions::Precision::bf16) add(ConvKernel::onednn_bf16);
  return out;
}

std::unique_ptr<Executor> make_measured_dnnl_executor(const NetDesc& net,
                                                      const ExecutorOptions& options) {
  const auto t0 = Clock::now();
  ExecutorOptions build = options;
  build.kernels = ExecutorOptions::Kernels::fixed;
  build.conv_kernels.clear();
  KernelChoice choice;
  choice.policy = ExecutorOptions::Kernels::measured;
  choice.cache = options.kernel_cache;
  choice.machine = machine_key(net, options);

  // Every choice cached: one build. Which kernels an op may run does not depend on the rule.
  const int n = int(net.ops.size());
  std::vector<std::vector<ConvKernel>> candidates(n);
  for (int i = 0; i < n; ++i) candidates[i] = conv_candidates(net, i, options, ConvKernel::direct);
  Cache cache = read_cache(options.kernel_cache, choice.notes);
  std::vector<ConvKernel> chosen(n, ConvKernel::rule);
  std::vector<int> open;  // ops to measure
  std::map<int, OpChoice> decided;
  for (int i = 0; i < n; ++i) {
    if (candidates[i].size() < 2) continue;
    if (auto c = cached_choice(cache, choice.machine + " | " + op_key(net, i), i, candidates[i])) {
      chosen[i] = c->kernel;
      decided[i] = *c;
    } else {
      open.push_back(i);
    }
  }
  auto finish = [&](std::unique_ptr<Executor> exec) {
    const std::vector<ConvKernel> ran = dnnl_conv_kernels(*exec);
    for (int i = 0; i < n; ++i) {
      if (net.ops[i].kind != OpKind::conv) continue;
      OpChoice c = decided.contains(i) ? decided[i] : OpChoice{i, ran[i], {}, false};
      c.kernel = ran[i];
      choice.ops.push_back(c);
    }
    choice.measuring_ms = open.empty() ? 0 : ms_since(t0);
    set_dnnl_kernel_choice(*exec, std::move(choice));
    return exec;
  };
  if (open.empty()) {
    if (!decided.empty()) build.conv_kernels = chosen;
    return finish(build_dnnl_executor(net, build));
  }
  // The rule's build: its kernels head each open op's candidates, and with no cached op it is
  // the first candidate rank's build itself.
  std::unique_ptr<Executor> rule_exec = build_dnnl_executor(net, build);
  const std::vector<ConvKernel> rule = dnnl_conv_kernels(*rule_exec);
  for (int i : open) candidates[i] = conv_candidates(net, i, options, rule[i]);

  // One build per candidate rank; an op keeps its last candidate after its own run out, a
  // cached op its cached kernel.
  std::size_t ranks = 0;
  for (int i : open) ranks = std::max(ranks, candidates[i].size());
  std::vector<std::map<ConvKernel, double>> times(n);
  std::vector<ConvKernel> best_build;
  double best_total = std::numeric_limits<double>::infinity();
  for (std::size_t r = 0; r < ranks; ++r) {
    std::unique_ptr<Executor> exec;
    if (r == 0 && decided.empty()) {
      exec = std::move(rule_exec);
    } else {
      rule_exec.reset();
      std::vector<ConvKernel> asked = chosen;
      for (int i : open) asked[i] = candidates[i][std::min(r, candidates[i].size() - 1)];
      build.conv_kernels = asked;
      exec = build_dnnl_executor(net, build);
    }
    const BuildTime t = time_build(*exec, net, !options.forward_only);
    const std::vector<ConvKernel> ran = dnnl_conv_kernels(*exec);
    for (int i : open)  // an op that fell back is timed under the kernel it ran
      if (!times[i].contains(ran[i])) times[i][ran[i]] = t.op_ms[i];
    if (t.total_ms < best_total) {
      best_total = t.total_ms;
      best_build = ran;
    }
  }
  std::map<std::string, OpChoice> fresh;
  for (int i : open) {
    OpChoice c{i, ConvKernel::direct, {}, false};
    double best = std::numeric_limits<double>::infinity();
    for (const auto& [kernel, ms] : times[i]) {
      c.times.push_back({kernel, ms});
      if (ms < best) best = ms, c.kernel = kernel;
    }
    chosen[i] = c.kernel;
    decided[i] = c;
  }
  build.conv_kernels = chosen;
  std::unique_ptr<Executor> exec = build_dnnl_executor(net, build);
  // The combination is one of the builds already timed when every chosen op ran so there.
  const bool timed = std::ranges::all_of(
      decided, [&](const auto& entry) { return best_build[entry.first] == chosen[entry.first]; });
  if (!timed) {
    const double combined = time_build(*exec, net, !options.forward_only).total_ms;
    if (combined > kCombinationSlack * best_total) {
      char line[200];
      std::snprintf(line, sizeof line,
                    "the fastest kernel per op together took %.3f ms a pass, one build %.3f ms: "
                    "that build's kernels kept",
                    combined, best_total);
      choice.notes.push_back(line);
      exec.reset();
      build.conv_kernels = best_build;
      exec = build_dnnl_executor(net, build);
    }
  }
  const std::vector<ConvKernel> ran = dnnl_conv_kernels(*exec);
  for (int i : open) {
    OpChoice kept = decided[i];
    kept.kernel = ran[i];
    fresh[choice.machine + " | " + op_key(net, i)] = kept;
  }
  write_cache(cache, fresh, choice.notes);
  return finish(std::move(exec));
}

std::string kernel_choice_line(const KernelChoice& choice) {
  std::string out;
  if (choice.forced) {
    out = "named by the caller:";
  } else if (choice.policy == ExecutorOptions::Kernels::fixed) {
    out = "fixed rules:";
  } else if (choice.measuring_ms > 0) {
    char head[64];
    std::snprintf(head, sizeof head, "measured in %.0f ms:", choice.measuring_ms);
    out = head;
  } else {
    out = "measured earlier (cache):";
  }
  for (std::size_t k = 0; k < choice.ops.size(); ++k)
    out += std::string(k ? ", op " : " op ") + std::to_string(choice.ops[k].op) + " " +
           conv_kernel_name(choice.ops[k].kernel);
  return out;
}

std::string format_kernel_choice(const KernelChoice& choice, const NetDesc& net) {
  std::string out;
  const bool measured = choice.policy == ExecutorOptions::Kernels::measured && !choice.forced;
  out += std::string("conv kernels (") +
         (choice.forced ? "named by the caller"
          : measured    ? "measured, the fastest kept"
                        : "the fixed rules") +
         "):\n";
  if (measured) {
    out += "  machine: " + choice.machine + "\n";
    out += "  cache: " + (choice.cache.empty() ? std::string("none") : choice.cache) + "\n";
    char line[96];
    std::snprintf(line, sizeof line, "  measuring: %.0f ms%s\n", choice.measuring_ms,
                  choice.measuring_ms == 0 ? " (every choice from the cache)" : "");
    out += line;
  }
  for (const OpChoice& c : choice.ops) {
    const OpDesc& op = net.ops[c.op];
    char head[160];
    std::snprintf(head, sizeof head, "  op %-3d %-24s %-16s", c.op,
                  (dims_string(op.in) + " -> " + dims_string(op.out)).c_str(),
                  conv_kernel_name(c.kernel));
    out += head;
    if (c.times.empty()) {
      out += measured ? "(one candidate)" : "";
    } else {
      for (const KernelTime& t : c.times) {
        char cell[64];
        std::snprintf(cell, sizeof cell, " %s%s %.3f ms", t.kernel == c.kernel ? "*" : "",
                      conv_kernel_name(t.kernel), t.ms);
        out += cell;
      }
      if (c.cached) out += " (cached)";
    }
    out += "\n";
  }
  for (const std::string& note : choice.notes) out += "  note: " + note + "\n";
  return out;
}

}  // namespace cae::ops
