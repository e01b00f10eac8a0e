// GGUF conversion: general.* keys, tensor order, progress and the atomic write. The {arch}.* keys,
// tokenizer.* keys and tensor transforms live in convert_config_keys.cpp,
// convert_tokenizer_keys.cpp and convert_tensors.cpp.
#include "contrail/model/convert.h"

#include <fmt/format.h>

#include <cstring>
#include <memory>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <tuple>

#include "contrail/core/error.h"
#include "contrail/model/arch.h"
#include "model/convert_detail.h"

namespace contrail {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION, written by every llama.cpp converter

struct TypeName {
  ConvertType type;
  std::string_view name;
  uint32_t file_type;
};
constexpr TypeName kTypes[] = {{ConvertType::F32, "f32", 0},
                               {ConvertType::F16, "f16", 1},
                               {ConvertType::BF16, "bf16", 32},
                               {ConvertType::Q8_0, "q8_0", 7}};

const TypeName& type_entry(ConvertType t) {
  for (const TypeName& e : kTypes)
    if (e.type == t) return e;
  throw InvalidArgument(fmt::format("convert: unknown output type {}", static_cast<int>(t)));
}

// Output order: embeddings, then blocks by number (blk.2 before blk.10), then the output head.
std::tuple<int, int64_t, std::string_view> order_key(std::string_view name) {
  if (name.starts_with("blk.")) {
    int64_t layer = 0;
    size_t i = 4;
    for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) layer = layer * 10 + (name[i] - '0');
    return {1, layer, name.substr(i)};
  }
  return {name.starts_with("output") ? 2 : 0, 0, name};
}

std::string default_name(const ModelFile& m) {
  if (!m.config.name.empty()) return m.config.name;
  std::filesystem::path p(m.path);
  if (!p.has_filename()) p = p.parent_path();  // "dir/" -> "dir"
  std::string stem = std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
  return detail::id_to_title(stem);
}

}  // namespace

ConvertType parse_convert_type(std::string_view s) {
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const TypeName& e : kTypes)
    if (e.name == lower) return e.type;
  throw InvalidArgument(fmt::format("unsupported output type '{}' (supported: f32, f16, bf16, q8_0)", s));
}

std::string_view convert_type_name(ConvertType t) { return type_entry(t).name; }
uint32_t gguf_file_type(ConvertType t) { return type_entry(t).file_type; }

namespace detail {

std::string size_label(uint64_t n) {
  // gguf-py model_weight_count_rounded_notation(n, min_digits=2).
  const double x = static_cast<double>(n);
  double scaled;
  char suffix;
  if (x > 1e12) scaled = x * 1e-12, suffix = 'T';
  else if (x > 1e9) scaled = x * 1e-9, suffix = 'B';
  else if (x > 1e6) scaled = x * 1e-6, suffix = 'M';
  else scaled = x * 1e-3, suffix = 'K';
  // Digits of round(scaled) (Python rounds half to even, as nearbyint does) without leading zeros.
  std::string whole = fmt::format("{:.0f}", std::nearbyint(scaled));
  whole.erase(0, whole.find_first_not_of('0') == std::string::npos ? whole.size() : whole.find_first_not_of('0'));
  const int fix = std::max(2 - static_cast<int>(whole.size()), 0);
  return fmt::format("{:.{}f}{}", scaled, fix, suffix);
}

std::string id_to_title(const std::string& id) {
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    const bool lower = std::any_of(word.begin(), word.end(), [](unsigned char c) { return std::islower(c); }) &&
                       std::none_of(word.begin(), word.end(), [](unsigned char c) { return std::isupper(c); });
    // Version numbers ("v1", "v0.1") and words starting with a digit keep their spelling.
    const bool digit = std::isdigit(static_cast<unsigned char>(word[0]));
    bool version = word.size() > 1 && word[0] == 'v' && std::isdigit(static_cast<unsigned char>(word[1]));
    for (size_t i = 1; version && i < word.size(); ++i)
      version = std::isdigit(static_cast<unsigned char>(word[i])) || (word[i] == '.' && i + 1 < word.size() &&
                                                                       std::isdigit(static_cast<unsigned char>(word[i + 1])));
    if (lower && !digit && !version) {
      // Python str.title(): upper-case the first letter of each run of letters.
      bool prev_alpha = false;
      for (char& c : word) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c));
        if (alpha && !prev_alpha) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        prev_alpha = alpha;
      }
    }
    out += (out.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : id) {
    if (c == '-' || std::isspace(static_cast<unsigned char>(c))) flush();
    else word += c;
  }
  flush();
  return out;
}

}  // namespace detail

GgufWriter build_gguf(const ModelFile& m, const ConvertOptions& opts, ConvertSummary* summary) {
  const ModelConfig& c = m.config;
  const ArchTraits& traits = arch_traits(c.arch);
  // The tokenizer: opts.vocab, else a Hugging Face directory's files read as llama.cpp's converter
  // reads them (with its key set), else the source's.
  VocabData dir_vocab;
  HfTokenizerKeys hf_keys;
  const HfTokenizerKeys* hf = nullptr;
  const bool from_dir = opts.vocab.tokens.empty() && m.format == ModelFormat::HuggingFace;
  if (from_dir) {
    dir_vocab = load_hf_vocab_for_gguf(m.path, c.arch);
    hf_keys = hf_tokenizer_keys(m.path, c.arch, dir_vocab.tokens.size());
    hf = &hf_keys;
  }
  const VocabData& vocab = !opts.vocab.tokens.empty() ? opts.vocab : from_dir ? dir_vocab : m.vocab;
  if (vocab.tokens.empty())
    throw InvalidArgument(fmt::format("{}: the model has no tokenizer vocabulary (the GGUF would not be usable); "
                                      "supply one from a GGUF of the same vocabulary",
                                      m.path));

  // Output order and storage types first, for the progress totals and size_label.
  std::vector<std::pair<const std::string*, const Tensor*>> order;  // (name, tensor) of m.tensors
  for (const auto& [name, t] : m.tensors) order.emplace_back(&name, &t);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return order_key(*a.first) < order_key(*b.first); });
  std::vector<DType> dtypes;  // (order.size()) output dtype of each
  ConvertSummary sum;
  uint64_t bytes_total = 0;
  for (const auto& [name, t] : order) {
    const DType d = gguf_tensor_dtype(*name, t->shape(), opts.outtype);
    if (opts.outtype == ConvertType::Q8_0 && d == DType::F16) sum.f16_fallbacks.push_back(*name);
    dtypes.push_back(d);
    bytes_total += Tensor(d, t->shape(), nullptr).nbytes();
    sum.n_params += static_cast<uint64_t>(t->numel());
  }

  GgufWriter w;
  w.set_string("general.architecture", c.arch);
  w.set_string("general.type", "model");
  w.set_string("general.name", opts.name.empty() ? default_name(m) : opts.name);
  w.set_string("general.size_label", detail::size_label(sum.n_params));
  write_config_keys(w, c);
  if (m.format == ModelFormat::HuggingFace) detail::write_hf_config_extras(w, m.path, c);
  write_tokenizer_keys(w, vocab, m.path, hf);
  w.set_u32("general.quantization_version", kQuantizationVersion);
  w.set_u32("general.file_type", gguf_file_type(opts.outtype));

  // Families without RoPE (GPT-2) have no rotary layout to convert: rows stay as they are.
  const ops::RopeMode target_rope = traits.rope ? traits.rope_mode : c.rope.mode;
  // Tensors are converted when the writer writes them (one at a time: a model larger than memory
  // twice over still converts). The producers hold the source views (and so their memory).
  auto done = std::make_shared<uint64_t>(0);
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [name, t] = order[i];
    const size_t nbytes = Tensor(dtypes[i], t->shape(), nullptr).nbytes();
    w.add_tensor_lazy(*name, dtypes[i], t->shape(), nbytes,
                      [name = *name, src = *t, dt = dtypes[i], c, target_rope, i, n = order.size(), bytes_total, done,
                       nbytes, on_tensor = opts.on_tensor](uint8_t* dst) {
                        const std::vector<uint8_t> bytes = detail::convert_tensor(name, src, dt, c, target_rope);
                        if (bytes.size() != nbytes)
                          throw Error(fmt::format("convert: tensor '{}' converted to {} bytes, expected {}", name,
                                                  bytes.size(), nbytes));
                        std::memcpy(dst, bytes.data(), nbytes);
                        *done = i == 0 ? nbytes : *done + nbytes;
                        if (on_tensor) on_tensor(ConvertProgress{name, i, n, *done, bytes_total});
                      });
  }
  sum.tensor_bytes = bytes_total;
  sum.n_tensors = order.size();
  if (summary) *summary = std::move(sum);
  return w;
}

ConvertSummary convert_to_gguf(const ModelFile& m, const std::string& out_path, const ConvertOptions& opts) {
  // Fail before the (long) conversion when the file could not be created anyway.
  const std::filesystem::path parent = std::filesystem::path(out_path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw Error(fmt::format("{}: cannot write the GGUF: directory '{}' does not exist", out_path, parent.string()));
  if (std::filesystem::is_directory(out_path, ec))
    throw Error(fmt::format("{}: cannot write the GGUF: the path is a directory", out_path));
  ConvertSummary sum;
  const GgufWriter w = build_gguf(m, opts, &sum);
  w.write(out_path);
  sum.file_bytes = std::filesystem::file_size(out_path, ec);
  return sum;
}

}  // namespace contrail
