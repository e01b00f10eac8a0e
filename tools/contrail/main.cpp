// contrail: command-line client of libcontrail. Errors from the library are caught here and
// printed as "contrail: error: ..." with exit status 1; usage errors exit with status 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"Contrail: serve, run and measure open LLMs on CPU.\n"
               "Run `contrail <command> --help` for the options of a command."};
  app.require_subcommand(1);
  int status = 0;
  contrail::cli::register_run(app, status);
  contrail::cli::register_info(app, status);
  contrail::cli::register_tokenize(app, status);
  contrail::cli::register_logits(app, status);
  contrail::cli::register_bench(app, status);
  contrail::cli::register_pull(app, status);
  contrail::cli::register_convert(app, status);
  contrail::cli::register_chat(app, status);
  contrail::cli::register_serve(app, status);
  contrail::cli::register_synth(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "contrail: error: %s\n", e.what());
    return 1;
  }
  return status;
}
