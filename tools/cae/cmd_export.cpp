// cae export: a model file to an ONNX graph (src/export/onnx_export.h says what the graph holds).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "export/onnx_export.h"

namespace cae::cli {

void add_export_command(CLI::App& app) {
  auto model_path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("export", "write a model as an ONNX graph (opset 13)");
  cmd->add_option("model", *model_path, "model file")->required();
  cmd->add_option("-o,--out", *out, "the ONNX file to write, e.g. model.onnx")->required();
  cmd->final_callback([model_path, out] {
    nn::Model model = load_model(*model_path);
    io::export_onnx(model, *out);
    const ops::Dims d = model.output();
    if (model.informed())
      std::fprintf(stderr,
                   "wrote %s (informed: inputs '%s' batchx%dx%dx%d and '%s' batchx1x%dx%d, "
                   "damaged where > 0; output '%s' batchx%dx%dx%d, the input outside the "
                   "damage)\n",
                   out->c_str(), io::kOnnxImageName, d.c, d.h, d.w, io::kOnnxMaskName, d.h, d.w,
                   io::kOnnxRepairName, d.c, d.h, d.w);
    else
      std::fprintf(stderr, "wrote %s (input '%s' batchx%dx%dx%d, output '%s')\n", out->c_str(),
                   io::kOnnxInputName, model.input().c, model.input().h, model.input().w,
                   io::kOnnxOutputName);
  });
}

}  // namespace cae::cli
