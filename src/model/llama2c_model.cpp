// llama2.c checkpoints (Karpathy's legacy "version 0" .bin, as read by run.c): a 7 x int32 header
// followed by f32 arrays, presented as per-layer tensor views into the mapping (no copies).
//
// Layout after the header, all f32, exactly as run.c's memory_map_weights walks it
// (L = n_layers, hs = head_size = dim / n_heads, q_dim = n_heads * hs, kv_dim = n_kv_heads * hs):
//   token_embedding (vocab, dim) | rms_att (L, dim) | wq (L, q_dim, dim) | wk (L, kv_dim, dim) |
//   wv (L, kv_dim, dim) | wo (L, dim, q_dim) | rms_ffn (L, dim) | w1 (L, hidden, dim) |
//   w2 (L, dim, hidden) | w3 (L, hidden, dim) | rms_final (dim) | freq_cis_real (seq_len, hs/2) |
//   freq_cis_imag (seq_len, hs/2) | wcls (vocab, dim), present only when the stored vocab_size < 0.
// Matrices are (out, in) row-major like GGUF's; Q/K rows already use the interleaved rotary layout.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/model/model_file.h"
#include "model/loader_detail.h"

namespace contrail {
namespace detail {
namespace {

constexpr int64_t kMaxField = int64_t(1) << 24;  // same bound as ModelConfig::validate
constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42": llama2.c export versions 1 and 2

using u128 = unsigned __int128;

std::string to_string(u128 v) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return s;
}

int64_t field(ByteReader& r, const char* name) {
  const int64_t v = r.i32(name);
  if (v < 1 || v > kMaxField)
    throw FormatError(fmt::format("{}: llama2.c header field {} is {} (must be in [1, {}])", r.source(), name, v,
                                  kMaxField));
  return v;
}

}  // namespace

Llama2cHeader parse_llama2c_header(const uint8_t* data, size_t size, const std::string& source) {
  ByteReader r(data, size, source);
  if (size >= 8) {
    ByteReader m(data, size, source);
    if (m.u32("magic") == kVersionedMagic)
      throw FormatError(fmt::format(
          "{}: llama2.c export version {} (magic 0x616b3432) is not supported; only the legacy version-0 "
          "checkpoint that run.c reads",
          source, m.i32("version")));
  }
  Llama2cHeader h;
  h.dim = field(r, "dim");
  h.hidden_dim = field(r, "hidden_dim");
  h.n_layers = field(r, "n_layers");
  h.n_heads = field(r, "n_heads");
  h.n_kv_heads = field(r, "n_kv_heads");
  const int64_t vocab = r.i32("vocab_size");
  if (vocab == 0 || vocab < -kMaxField || vocab > kMaxField)
    throw FormatError(fmt::format("{}: llama2.c header field vocab_size is {} (|vocab_size| must be in [1, {}])",
                                  source, vocab, kMaxField));
  h.vocab_size = vocab < 0 ? -vocab : vocab;
  h.shared_classifier = vocab > 0;
  h.seq_len = field(r, "seq_len");
  if (h.dim % h.n_heads != 0)
    throw FormatError(
        fmt::format("{}: llama2.c header n_heads {} does not divide dim {}", source, h.n_heads, h.dim));
  if (h.n_heads % h.n_kv_heads != 0)
    throw FormatError(fmt::format("{}: llama2.c header n_kv_heads {} does not divide n_heads {}", source,
                                  h.n_kv_heads, h.n_heads));
  h.head_size = h.dim / h.n_heads;
  if (h.head_size % 2 != 0)
    throw FormatError(fmt::format("{}: llama2.c header head size dim/n_heads = {} is odd (RoPE rotates pairs)", source,
                                  h.head_size));

  // Every field is <= 2^24, so these products stay below 2^77: count in 128 bits.
  const u128 L = static_cast<u128>(h.n_layers), dim = static_cast<u128>(h.dim);
  const u128 q_dim = dim, kv_dim = static_cast<u128>(h.n_kv_heads * h.head_size);
  const u128 hidden = static_cast<u128>(h.hidden_dim), vocab_rows = static_cast<u128>(h.vocab_size);
  const u128 floats = vocab_rows * dim                         // token_embedding
                      + L * dim * 2                            // rms_att, rms_ffn
                      + L * dim * (2 * q_dim + 2 * kv_dim)     // wq, wo, wk, wv
                      + L * dim * hidden * 3                   // w1, w2, w3
                      + dim                                    // rms_final
                      + static_cast<u128>(h.seq_len) * static_cast<u128>(h.head_size)  // freq_cis real + imag
                      + (h.shared_classifier ? 0 : vocab_rows * dim);                  // wcls
  const u128 bytes = Llama2cHeader::kBytes + floats * 4;
  const std::string dims = fmt::format(
      "dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, vocab_size {}, seq_len {}, {} classifier", h.dim,
      h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len,
      h.shared_classifier ? "shared" : "separate");
  if (bytes > static_cast<u128>(size))
    throw FormatError(fmt::format("{}: llama2.c file is truncated: file size {} but the header ({}) implies {} bytes",
                                  source, size, dims, to_string(bytes)));
  if (bytes < static_cast<u128>(size))
    throw FormatError(fmt::format("{}: llama2.c file size {} exceeds the {} bytes its header ({}) implies", source,
                                  size, to_string(bytes), dims));
  h.file_bytes = static_cast<uint64_t>(bytes);
  return h;
}

}  // namespace detail

namespace {

namespace fs = std::filesystem;

// Default tokenizer of a llama2.c model: "tokenizer.bin" beside it, else the single "tok*.bin".
std::string find_llama2c_tokenizer(const std::string& model_path) {
  const fs::path model(model_path);
  const fs::path dir = model.has_parent_path() ? model.parent_path() : fs::path(".");
  std::error_code ec;
  if (fs::is_regular_file(dir / "tokenizer.bin", ec)) return (dir / "tokenizer.bin").string();
  std::vector<std::string> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("tok", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0 &&
        name != model.filename().string() && it->is_regular_file(ec))
      found.push_back(it->path().string());
  }
  if (found.size() == 1) return found[0];
  std::sort(found.begin(), found.end());
  if (found.empty())
    throw Error(fmt::format(
        "{}: no tokenizer given and neither tokenizer.bin nor a tok*.bin file is beside it (LoadOptions::tokenizer_path)",
        model_path));
  std::string list;
  for (const std::string& f : found) list += (list.empty() ? "" : ", ") + f;
  throw Error(fmt::format("{}: no tokenizer given and several candidates are beside it ({}); choose one", model_path,
                          list));
}

}  // namespace

ModelFile load_llama2c_model(const std::string& path, const std::string& tokenizer_path) {
  const std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const detail::Llama2cHeader h = detail::parse_llama2c_header(file->data(), file->size(), path);

  ModelFile m;
  m.format = ModelFormat::Llama2c;
  m.path = path;
  ModelConfig& c = m.config;
  c.arch = "llama";
  c.name = std::filesystem::path(path).stem().string();
  c.n_vocab = h.vocab_size;
  c.n_embd = h.dim;
  c.n_layer = h.n_layers;
  c.n_head = h.n_heads;
  c.n_head_kv = h.n_kv_heads;
  c.head_dim = h.head_size;
  c.n_ff = h.hidden_dim;
  c.n_ctx_train = h.seq_len;
  c.norm_eps = 1e-5f;  // hard-coded in run.c's rmsnorm
  c.rope.n_rot = h.head_size;
  c.rope.freq_base = 10000.f;  // run.c: 1 / 10000^(head_dim / head_size)
  c.rope.mode = ops::RopeMode::Normal;
  c.tied_embeddings = h.shared_classifier;
  c.validate(path);

  // Walk the arrays in file order; offsets are in bytes from the start of the file.
  uint64_t off = detail::Llama2cHeader::kBytes;
  const auto take = [&off](int64_t n_floats) {
    const uint64_t at = off;
    off += static_cast<uint64_t>(n_floats) * 4;
    return at;
  };
  const int64_t L = h.n_layers, dim = h.dim, hidden = h.hidden_dim;
  const int64_t q_dim = h.n_heads * h.head_size, kv_dim = h.n_kv_heads * h.head_size;
  const uint64_t tok_embd = take(h.vocab_size * dim);
  const uint64_t rms_att = take(L * dim);
  const uint64_t wq = take(L * q_dim * dim);
  const uint64_t wk = take(L * kv_dim * dim);
  const uint64_t wv = take(L * kv_dim * dim);
  const uint64_t wo = take(L * dim * q_dim);
  const uint64_t rms_ffn = take(L * dim);
  const uint64_t w1 = take(L * hidden * dim);
  const uint64_t w2 = take(L * dim * hidden);
  const uint64_t w3 = take(L * hidden * dim);
  const uint64_t rms_final = take(dim);
  take(h.seq_len * h.head_size / 2);  // freq_cis_real: unused, RoPE angles are computed
  take(h.seq_len * h.head_size / 2);  // freq_cis_imag
  const uint64_t wcls = h.shared_classifier ? tok_embd : take(h.vocab_size * dim);
  if (off != h.file_bytes)  // parse_llama2c_header and this walk must agree
    throw Error(fmt::format("{}: internal error: llama2.c layout walk ends at {}, header implies {}", path, off,
                            h.file_bytes));

  const std::shared_ptr<const void> owner = file;
  const auto view = [&](const std::string& name, std::vector<int64_t> shape, uint64_t at) {
    m.tensors.emplace(name, Tensor(DType::F32, std::move(shape), const_cast<uint8_t*>(file->data() + at), owner));
  };
  // Per-layer slices: `stride` floats per layer.
  const auto layer_at = [](uint64_t base, int64_t i, int64_t stride) {
    return base + static_cast<uint64_t>(i * stride) * 4;
  };
  view("token_embd.weight", {h.vocab_size, dim}, tok_embd);  // (n_vocab, n_embd)
  view("output_norm.weight", {dim}, rms_final);               // (n_embd)
  if (!h.shared_classifier) view("output.weight", {h.vocab_size, dim}, wcls);  // (n_vocab, n_embd)
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    view(p + "attn_norm.weight", {dim}, layer_at(rms_att, i, dim));                       // (n_embd)
    view(p + "attn_q.weight", {q_dim, dim}, layer_at(wq, i, q_dim * dim));                // (q_dim, n_embd)
    view(p + "attn_k.weight", {kv_dim, dim}, layer_at(wk, i, kv_dim * dim));              // (kv_dim, n_embd)
    view(p + "attn_v.weight", {kv_dim, dim}, layer_at(wv, i, kv_dim * dim));              // (kv_dim, n_embd)
    view(p + "attn_output.weight", {dim, q_dim}, layer_at(wo, i, dim * q_dim));           // (n_embd, q_dim)
    view(p + "ffn_norm.weight", {dim}, layer_at(rms_ffn, i, dim));                        // (n_embd)
    view(p + "ffn_gate.weight", {hidden, dim}, layer_at(w1, i, hidden * dim));            // (n_ff, n_embd)
    view(p + "ffn_down.weight", {dim, hidden}, layer_at(w2, i, dim * hidden));            // (n_embd, n_ff)
    view(p + "ffn_up.weight", {hidden, dim}, layer_at(w3, i, hidden * dim));              // (n_ff, n_embd)
  }

  m.metadata = {
      {"llama2c.dim", std::to_string(h.dim)},
      {"llama2c.hidden_dim", std::to_string(h.hidden_dim)},
      {"llama2c.n_layers", std::to_string(h.n_layers)},
      {"llama2c.n_heads", std::to_string(h.n_heads)},
      {"llama2c.n_kv_heads", std::to_string(h.n_kv_heads)},
      {"llama2c.vocab_size", std::to_string(h.vocab_size)},
      {"llama2c.seq_len", std::to_string(h.seq_len)},
      {"llama2c.shared_classifier", h.shared_classifier ? "true" : "false"},
  };

  const std::string tok = tokenizer_path.empty() ? find_llama2c_tokenizer(path) : tokenizer_path;
  m.metadata.emplace_back("llama2c.tokenizer", tok);
  m.vocab = load_llama2c_vocab(tok, h.vocab_size);
  return m;
}

VocabData load_llama2c_model_vocab(const std::string& path, const std::string& tokenizer_path) {
  int64_t n_vocab = 0;
  {
    const std::shared_ptr<MappedFile> file = MappedFile::open(path);
    n_vocab = detail::parse_llama2c_header(file->data(), file->size(), path).vocab_size;
  }
  return load_llama2c_vocab(tokenizer_path.empty() ? find_llama2c_tokenizer(path) : tokenizer_path, n_vocab);
}

}  // namespace contrail
