// The main() of performer-eval and performer-generate: CLI11 reads the flags (a usage error exits 2,
// --help and --version 0), then `read` reads the number flags whole, --threads is applied, and `run`
// does the work; any exception is printed as "<program>: error: <what>" with exit code 2.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "autograd/parallel.h"
#include "train/cli.h"

namespace pf {

template <class Args, class Numbers, class Read, class Run>
int tool_main(CLI::App& app, int argc, char** argv, Args& args, Numbers& numbers, Read read, Run run) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return usage_exit_code(app.exit(e));
  }
  try {
    read(numbers, args);
    if (args.threads > 0) set_num_threads(static_cast<int>(args.threads));
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return 2;
  }
}

}  // namespace pf
