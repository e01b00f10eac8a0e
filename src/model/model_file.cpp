// Model-file format detection and the ModelFile accessors.
#include "contrail/model/model_file.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/model/gguf.h"
#include "contrail/tokenizer/hf_tokenizer.h"

namespace contrail {

const Tensor* ModelFile::find(const std::string& name) const {
  const auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

const Tensor& ModelFile::tensor(const std::string& name) const {
  const Tensor* t = find(name);
  if (!t) throw FormatError(fmt::format("{}: tensor '{}' not found", path, name));
  return *t;
}

namespace {

enum class Detected { HfDir, Gguf, Llama2c };

// Format of `path` (see load_model_file); rejects a tokenizer_path for formats that carry their
// own tokenizer.
Detected detect(const std::string& path, const LoadOptions& opts) {
  std::error_code ec;  // a path that cannot be inspected falls through to MappedFile's error
  Detected d = Detected::Llama2c;
  if (std::filesystem::is_directory(path, ec)) {
    d = Detected::HfDir;
  } else {
    const std::shared_ptr<MappedFile> f = MappedFile::open(path);
    if (f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0) d = Detected::Gguf;
  }
  if (d != Detected::Llama2c && !opts.tokenizer_path.empty())
    throw InvalidArgument(fmt::format(
        "{} is a {} and carries its own tokenizer: a separate tokenizer ('{}', --tokenizer) applies to llama2.c "
        "checkpoints only",
        path, d == Detected::Gguf ? "GGUF file" : "Hugging Face checkpoint directory", opts.tokenizer_path));
  return d;
}

}  // namespace

ModelFile load_model_file(const std::string& path, const LoadOptions& opts) {
  switch (detect(path, opts)) {
    case Detected::HfDir: return load_hf_model(path);
    case Detected::Gguf: return load_gguf_model(path);
    case Detected::Llama2c: break;
  }
  // Anything that is not GGUF is tried as a llama2.c checkpoint, whose header validation names
  // what is wrong.
  return load_llama2c_model(path, opts.tokenizer_path);
}

VocabData load_model_vocab(const std::string& path, const LoadOptions& opts) {
  switch (detect(path, opts)) {
    case Detected::HfDir: return load_hf_tokenizer(path);
    case Detected::Gguf: return read_gguf_vocab(*GgufFile::open(path));
    case Detected::Llama2c: break;
  }
  return load_llama2c_model_vocab(path, opts.tokenizer_path);
}

}  // namespace contrail
