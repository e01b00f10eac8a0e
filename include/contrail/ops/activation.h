// Elementwise activations and arithmetic on f32 tensors of equal shape.
#pragma once
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

// out = silu(gate) * up, silu(x) = x / (1 + exp(-x)). out may alias gate or up.
void swiglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool& pool);

// out = gelu(gate) * up with the tanh approximation of GELU (Gemma's GeGLU, HF
// "gelu_pytorch_tanh"): gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// out may alias gate or up.
void geglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool& pool);

// x = gelu(x), the same tanh approximation (GPT-2 "gelu_new"), in place.
void gelu_inplace(Tensor& x, ThreadPool& pool);

// x = cap * tanh(x / cap), in place (Gemma 2 final logit soft-capping). cap > 0.
void softcap_inplace(Tensor& x, float cap, ThreadPool& pool);

// x *= s, in place (Gemma's sqrt(n_embd) embedding scale).
void scale_inplace(Tensor& x, float s, ThreadPool& pool);

// y += x (residual connection).
void add_inplace(Tensor& y, const Tensor& x, ThreadPool& pool);

}  // namespace contrail::ops
