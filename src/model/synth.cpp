#include "contrail/model/synth.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "contrail/core/dtype.h"
#include "contrail/core/half.h"
#include "contrail/core/error.h"
#include "contrail/core/thread_pool.h"
#include "contrail/model/arch.h"
#include "model/loader_detail.h"

namespace contrail {
namespace {

struct Preset {
  const char* name;
  const char* arch;
  int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
  float theta, eps;
  bool tied;
};

// Shapes of the published checkpoints (config.json of each).
constexpr Preset kPresets[] = {
    {"tinyllama-1.1b", "llama", 32000, 2048, 22, 32, 4, 64, 5632, 2048, 10000.f, 1e-5f, false},
    {"llama2-7b", "llama", 32000, 4096, 32, 32, 32, 128, 11008, 4096, 10000.f, 1e-5f, false},
    {"mistral-7b", "llama", 32768, 4096, 32, 32, 8, 128, 14336, 32768, 1e6f, 1e-5f, false},
    {"gemma-2b", "gemma", 256000, 2048, 18, 8, 1, 256, 16384, 8192, 10000.f, 1e-6f, true},
    {"gpt2-124m", "gpt2", 50257, 768, 12, 12, 12, 64, 3072, 1024, 10000.f, 1e-5f, true},
    {"qwen2-0.5b", "qwen2", 151936, 896, 24, 14, 2, 64, 4864, 32768, 1e6f, 1e-6f, true},
};

// xoshiro256** with a splitmix64 seed: fast, reproducible across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& x : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      x = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0], s_[3] ^= s_[1], s_[1] ^= s_[2], s_[0] ^= s_[3], s_[2] ^= t, s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Standard normal pairs (Box-Muller).
  void normal2(float& a, float& b) {
    const double u = 1.0 - uniform(), v = uniform();
    const double r = std::sqrt(-2.0 * std::log(u));
    a = static_cast<float>(r * std::cos(2 * M_PI * v));
    b = static_cast<float>(r * std::sin(2 * M_PI * v));
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace

std::vector<std::string> synth_preset_names() {
  std::vector<std::string> out;
  for (const Preset& p : kPresets) out.emplace_back(p.name);
  return out;
}

ModelConfig synth_preset(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name != p.name) continue;
    ModelConfig c;
    c.arch = p.arch;
    c.name = p.name;
    c.n_vocab = p.n_vocab, c.n_embd = p.n_embd, c.n_layer = p.n_layer, c.n_head = p.n_head;
    c.n_head_kv = p.n_head_kv, c.head_dim = p.head_dim, c.n_ff = p.n_ff, c.n_ctx_train = p.n_ctx;
    c.norm_eps = p.eps;
    c.rope.n_rot = p.head_dim;
    c.rope.freq_base = p.theta;
    c.rope.mode = arch_traits(p.arch).rope_mode;
    c.tied_embeddings = p.tied;
    return c;
  }
  std::string known;
  for (const Preset& p : kPresets) known += (known.empty() ? "" : ", ") + std::string(p.name);
  throw InvalidArgument(fmt::format("synth: unknown preset '{}' (known: {})", name, known));
}

ModelFile synth_model(const ModelConfig& config, VocabData vocab, uint64_t seed) {
  ModelConfig c = config;
  if (!vocab.tokens.empty()) {
    if (static_cast<int64_t>(vocab.tokens.size()) != c.n_vocab)
      throw InvalidArgument(fmt::format("synth: the tokenizer has {} tokens but the model's n_vocab is {}",
                                        vocab.tokens.size(), c.n_vocab));
  }
  try {
    c.validate("synth");
  } catch (const FormatError& e) {
    throw InvalidArgument(e.what());
  }
  const ArchTraits& tr = arch_traits(c.arch);
  c.rope.mode = tr.rope_mode;
  ModelFile m;
  m.format = ModelFormat::Gguf;
  m.path = c.name.empty() ? "synth" : c.name;
  m.config = c;
  m.vocab = std::move(vocab);
  uint64_t index = 0;
  ThreadPool pool(0);
  detail::for_each_weight(c, tr, [&](const detail::ExpectedWeight& e) {
    ++index;  // each tensor has its own streams, so tensors do not depend on each other's sizes
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    const bool is_norm = e.name.find("norm") != std::string::npos;
    if (e.f32_kind || e.shape.size() == 1) {
      Tensor t = Tensor::empty(DType::F32, e.shape);
      float* p = t.data_as<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = is_norm ? 1.0f : 0.0f;
      m.tensors.emplace(e.name, std::move(t));
      return;
    }
    const bool qk = e.name.find("attn_q.") != std::string::npos || e.name.find("attn_k.") != std::string::npos;
    const float sd = qk ? 0.8f / std::sqrt(static_cast<float>(c.n_embd)) : 0.02f;
    Tensor t = Tensor::empty(DType::F16, e.shape);
    auto* p = static_cast<uint16_t*>(t.data());
    // Chunks of 1 Mi values, each with its own stream: the values depend on the seed, the tensor
    // and the chunk only, not on the number of threads.
    constexpr int64_t kChunk = int64_t{1} << 20;
    const uint64_t tensor_seed = seed * 0x100000001b3ull + index;
    pool.parallel_for((n + kChunk - 1) / kChunk, 1, [&](int64_t begin, int64_t end) {
      for (int64_t ch = begin; ch < end; ++ch) {
        Rng rng(tensor_seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(ch));
        const int64_t lo = ch * kChunk, hi = std::min(n, lo + kChunk);
        for (int64_t i = lo; i < hi; i += 2) {
          float a, b;
          rng.normal2(a, b);
          p[i] = f32_to_f16(a * sd);
          if (i + 1 < hi) p[i + 1] = f32_to_f16(b * sd);
        }
      }
    });
    m.tensors.emplace(e.name, std::move(t));
  });
  m.metadata.emplace_back("synth.seed", std::to_string(seed));
  return m;
}

}  // namespace contrail
