// Internal steps of the model loaders (model_file.h), exposed so that tests and fuzzers can drive
// them on in-memory images without a tokenizer. Not part of the public API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"

namespace contrail::detail {

// Header of a llama2.c checkpoint (run.c's Config: 7 little-endian int32), validated.
struct Llama2cHeader {
  static constexpr size_t kBytes = 7 * 4;
  int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0;
  int64_t vocab_size = 0;  // absolute value of the stored field
  int64_t seq_len = 0;
  bool shared_classifier = true;  // stored vocab_size > 0: the classifier is the token embedding
  int64_t head_size = 0;          // dim / n_heads
  uint64_t file_bytes = 0;        // exact file size the header implies
};

// Parses the header at the start of a `size`-byte image and checks that `size` is exactly what it
// implies. Throws FormatError naming `source`, the field, its value and the limit.
Llama2cHeader parse_llama2c_header(const uint8_t* data, size_t size, const std::string& source);

// Fills out.config, out.tensors, out.metadata and out.gguf from a parsed GGUF (everything but the
// vocabulary). Throws FormatError for unsupported architectures, missing/invalid hyperparameters
// and missing, unexpected, misshapen or unsupported-dtype tensors.
void read_gguf_weights(const std::shared_ptr<GgufFile>& gguf, ModelFile& out);

}  // namespace contrail::detail
