// performer-export: a checkpoint's model as a safetensors file (train/interop.h, nn/safetensors.h):
// every parameter and buffer (random projections included) under its dotted state-dict name, F32,
// the model config in the metadata. Loadable by PyTorch (bench/torch_twin.py: load_safetensors) and
// by performer-train --init-from.
// Exit codes: 0 ok, 1 the file cannot be written, 2 bad flags or unreadable checkpoint.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/interop.h"
#include "train/run_directory.h"

namespace {

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "performer-export: error: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "performer-export: write a checkpoint's model as a safetensors file (the weight format of PyTorch and the\n"
      "Hugging Face tools): every parameter and buffer by dotted name, float32, the model config in the metadata.",
      "performer-export"};
  std::string checkpoint_path, out;
  app.add_option("--checkpoint", checkpoint_path, "checkpoint file (.ckpt) or run directory (its latest checkpoint)")
      ;
  app.add_option("--out", out, "the safetensors file to write (replaced atomically if it exists)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return pf::usage_exit_code(app.exit(e));
  }
  if (checkpoint_path.empty()) return fail(2, "--checkpoint is required: a checkpoint file or a run directory");
  if (out.empty()) return fail(2, "--out is required: the safetensors file to write");

  pf::OpenedCheckpoint opened;
  std::unique_ptr<pf::PerformerLM> model;
  try {
    opened = pf::open_checkpoint(checkpoint_path);
    model = pf::make_model(opened.checkpoint);
  } catch (const std::exception& e) {
    return fail(2, e.what());
  }
  std::error_code ec;
  if (std::filesystem::is_directory(out, ec)) return fail(2, "--out " + out + ": is a directory; give a file name");
  try {
    pf::export_safetensors(*model, opened.checkpoint.vocab, opened.checkpoint.progress.step, out);
  } catch (const std::exception& e) {
    return fail(1, std::string("--out: ") + e.what());
  }
  const pf::StateDict state = model->state_dict();
  long long values = 0;
  for (const auto& [name, t] : state) values += t.numel();
  const long long params = model->num_parameters();
  std::printf("wrote %s: %zu tensors, %lld float32 values (%lld parameters, %lld in buffers), %lld bytes; the model of "
              "%s at step %lld\n",
              out.c_str(), state.size(), values, params, values - params,
              static_cast<long long>(std::filesystem::file_size(out, ec)), opened.path.c_str(),
              static_cast<long long>(opened.checkpoint.progress.step));
  return 0;
}
