// cae info and cae presets: describe a model file; print the built-in specs.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cae/error.h"
#include "commands.h"
#include "io/model_file.h"
#include "nn/spec.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/dnnl/kernel_choice.h"

namespace cae::cli {

void add_info_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto plan = std::make_shared<bool>(false);
  auto kernels = std::make_shared<bool>(false);
  auto inference = std::make_shared<bool>(false);
  auto backend = std::make_shared<std::string>("dnnl");
  auto batch = std::make_shared<int>(50);
  CLI::App* cmd = app.add_subcommand("info", "describe a model or checkpoint file");
  cmd->add_option("model", *path, "model file")->required();
  cmd->add_flag("--plan", *plan,
                "also print the dnnl backend's memory plan of a training pass: per activation and "
                "gradient its bytes, first and last step, and the buffer it shares");
  cmd->add_flag("--kernels", *kernels,
                "also print the kernel the backend runs at each step of a training pass, every "
                "op it runs on another kernel than its first choice, with why, and how each "
                "conv's kernel was chosen: the times of its candidates when measured "
                "(CAE_KERNELS, docs/performance.md)");
  cmd->add_flag("--inference", *inference,
                "--kernels of an inference pass (forward only, a batchnorm folded), as cae denoise, "
                "repair and serve run it, instead of a training pass");
  cmd->add_option("--backend", *backend, "the backend of --kernels: dnnl (default), ref or cuda")
      ->check(one_of({"dnnl", "ref", "cuda"}));
  cmd->add_option("--batch", *batch,
                  "images per pass of the plan and the kernels (default 50: the passes of the "
                  "default batch 200)")
      ->check(in_range(1, 65536));
  cmd->final_callback([path, plan, kernels, inference, backend, batch] {
    // Said before anything is printed.
    const ops::Backend chosen = ops::parse_backend(*backend);
    if (const std::string why = ops::backend_unavailable_reason(chosen); *kernels && !why.empty())
      throw Error(*backend + " backend: " + why);
    io::ModelFile file = io::read_model_file(*path);
    nn::Model model = nn::Model::from_file(file, *path);
    // Trained parameters, as PyTorch counts them; a batchnorm's running statistics apart.
    std::size_t params = 0, statistics = 0;
    for (const auto& info : model.param_infos())
      (info.name.starts_with("running_") ? statistics : params) += info.size();
    std::printf("kind: %s\ninput: %dx%dx%d\nloss: %s\nparameters: %zu\n", file.kind.c_str(),
                model.input().h, model.input().w, model.input().c, nn::loss_name(model.loss()),
                params);
    if (statistics > 0) std::printf("running statistics: %zu (batchnorm, not trained)\n", statistics);
    for (const auto& [key, value] : file.meta)
      if (key != "history") std::printf("%s: %s\n", key.c_str(), value.c_str());
    std::printf("spec:\n%s", file.spec.c_str());
    // The CAE_* options, where an executor is built: the plan and the kernels are the CLI's.
    const ops::ExecutorOptions options =
        *plan || *kernels ? executor_options_from_environment() : ops::ExecutorOptions{};
    if (*plan) {
      auto exec = model.make_executor(ops::Backend::dnnl, *batch, options);
      std::printf("memory plan (dnnl, batch %d, %s):\n%s", *batch, ops::dnnl_isa().c_str(),
                  ops::format_dnnl_plan(ops::dnnl_plan(*exec)).c_str());
    }
    if (*kernels) {
      auto exec = *inference ? model.make_inference_executor(chosen, *batch, options)
                             : model.make_executor(chosen, *batch, options);
      const ops::NetDesc& net = exec->desc();
      std::printf("kernels (%s, batch %d%s, %s pass):\n", backend->c_str(), *batch,
                  chosen == ops::Backend::dnnl ? (", " + ops::dnnl_isa()).c_str() : "",
                  *inference ? "inference" : "training");
      for (const ops::KernelUse& k : exec->kernels())
        if (!*inference || k.pass == "forward")
          std::printf("  %-15s %-4s %-8s %-34s %s\n", k.pass.c_str(),
                      k.op < 0 ? "-" : std::to_string(k.op).c_str(),
                      k.op < 0 ? "" : ops::op_kind_name(net.ops[k.op].kind), k.name.c_str(),
                      k.impl.c_str());
      const std::vector<std::string> fallbacks = exec->fallbacks();
      std::printf("fallbacks: %s\n", fallbacks.empty() ? "none" : "");
      for (const std::string& line : fallbacks) std::printf("  %s\n", line.c_str());
      if (chosen == ops::Backend::dnnl)
        std::printf("%s", ops::format_kernel_choice(ops::dnnl_kernel_choice(*exec), net).c_str());
    }
  });

  CLI::App* presets = app.add_subcommand("presets", "print the built-in architecture specs");
  presets->final_callback([] {
    for (const auto& name : nn::preset_names())
      std::printf("# %s\n%s\n", name.c_str(), nn::preset_spec(name).c_str());
  });
}

}  // namespace cae::cli
