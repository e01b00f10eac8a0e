// libFuzzer entry point for the model-file parsers: GgufFile::parse (plus the GGUF -> model
// validation on every image it accepts) and the llama2.c header parser, on the same input.
// Contract under test: any input either parses or throws contrail::Error; any other exception,
// crash or sanitizer report is a bug. Build with clang, e.g.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
//     tests/fuzz_gguf.cpp <libcontrail built with -fsanitize=fuzzer-no-link,address,undefined> -lfmt
#include <cstddef>
#include <cstdint>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "model/loader_detail.h"

namespace {

// Reads everything a parsed file exposes so the sanitizers see every byte it points at.
void exercise(const std::shared_ptr<contrail::GgufFile>& g) {
  for (const contrail::GgufKV& kv : g->metadata()) (void)kv.value.to_display();
  static volatile uint8_t sink;
  for (const contrail::GgufTensorInfo& t : g->tensors()) {
    const contrail::Tensor v = g->tensor(t.name);
    const auto* p = static_cast<const uint8_t*>(v.data());
    for (size_t i = 0; i < v.nbytes(); ++i) sink = p[i];
  }
  contrail::ModelFile m;
  contrail::detail::read_gguf_weights(g, m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    exercise(contrail::GgufFile::parse(nullptr, data, size, "fuzz.gguf"));
  } catch (const contrail::Error&) {
  }
  try {
    (void)contrail::detail::parse_llama2c_header(data, size, "fuzz.bin");
  } catch (const contrail::Error&) {
  }
  return 0;
}
