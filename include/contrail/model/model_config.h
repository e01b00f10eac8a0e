// Architecture hyperparameters, independent of the file format they came from.
#pragma once
#include <cstdint>
#include <string>

#include "contrail/ops/rope.h"

namespace contrail {

struct ModelConfig {
  std::string arch = "llama";  // GGUF general.architecture
  std::string name;            // general.name if present
  int64_t n_vocab = 0;
  int64_t n_embd = 0;     // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // == n_head without GQA
  int64_t head_dim = 0;   // usually n_embd / n_head
  int64_t n_ff = 0;       // feed-forward hidden size
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  ops::RopeParams rope;   // n_rot defaults to head_dim
  bool tied_embeddings = false;  // output projection reuses token_embd

  // Throws FormatError naming `source`, the field and the value when a field is missing,
  // non-positive or inconsistent (n_head % n_head_kv, head_dim parity, absurd sizes > 1<<24 ...).
  void validate(const std::string& source) const;
};

}  // namespace contrail
