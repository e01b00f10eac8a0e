// Model-file format detection and the ModelFile accessors.
#include "contrail/model/model_file.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"

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

ModelFile load_model_file(const std::string& path, const LoadOptions& opts) {
  std::error_code ec;  // a path that cannot be inspected falls through to MappedFile's error
  if (std::filesystem::is_directory(path, ec)) return load_hf_model(path);
  bool gguf = false;
  {
    const std::shared_ptr<MappedFile> f = MappedFile::open(path);
    gguf = f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0;
  }
  // Anything that is not GGUF is tried as a llama2.c checkpoint, whose header validation names
  // what is wrong.
  return gguf ? load_gguf_model(path) : load_llama2c_model(path, opts.tokenizer_path);
}

}  // namespace contrail
