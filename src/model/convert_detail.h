// Internal steps of the GGUF conversion (contrail/model/convert.h), shared by its source files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "contrail/core/tensor.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_config.h"
#include "contrail/ops/rope.h"

namespace contrail::detail {

// The bytes of tensor `name` as stored in the GGUF: `src` (any dtype kernels::dequantize_row
// reads) in llama.cpp's layout for `target_rope` (attn_q/attn_k rows and biases permuted per head
// when c.rope.mode differs from it) and converted to `dst`, which must be f32, f16, bf16 or q8_0
// (q8_0 only for rows that are a multiple of 32). Throws InvalidArgument naming the tensor for
// an unsupported dtype or a layout it cannot permute (a fused attn_qkv, partial rotary).
std::vector<uint8_t> convert_tensor(const std::string& name, const Tensor& src, DType dst, const ModelConfig& c,
                                    ops::RopeMode target_rope);

// {arch}.* keys llama.cpp's converter takes from a Hugging Face config.json that ModelConfig does
// not keep: Phi-3's attention.sliding_window (written by Phi3MiniModel although llama.cpp, like
// the engine, disables the window for the family). Throws FormatError naming config.json.
void write_hf_config_extras(GgufWriter& w, const std::string& dir, const ModelConfig& c);

// llama.cpp's general.size_label of a model with n_params parameters ("4.2M", "132K", "7.2B").
std::string size_label(uint64_t n_params);

// llama.cpp's Metadata.id_to_title: '-' to ' ', all-lowercase words title-cased unless they are
// version numbers ("v0.1") or start with a digit ("8b").
std::string id_to_title(const std::string& id);

}  // namespace contrail::detail
