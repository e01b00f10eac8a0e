// Tensor: a typed n-d array (up to 4 dims) on a device. Shapes are row-major, outermost first,
// like numpy: a weight matrix W of shape (n_out, n_in) has rows of n_in contiguous elements.
// (GGUF lists dims innermost first; loaders reverse them.)
//
// Invariants: data() is either null (empty tensor) or points at nbytes() readable bytes, alive as
// long as `owner` (shared) keeps them alive. A view shares the owner of its source; a tensor made
// over memory-mapped weights holds the mapping, so weights are never copied.
// Quantized dtypes: the innermost dim must be a multiple of the dtype's block size.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "contrail/core/dtype.h"

namespace contrail {

enum class Device : uint8_t { CPU = 0, CUDA = 1 };

class Tensor {
 public:
  static constexpr int kMaxDims = 4;

  Tensor() = default;
  // Non-owning view over external memory (the caller guarantees lifetime) or, with `owner`,
  // a view that keeps that memory alive.
  Tensor(DType dtype, std::vector<int64_t> shape, void* data, std::shared_ptr<const void> owner = {},
         Device device = Device::CPU);
  // Allocates zeroed, 64-byte aligned CPU storage.
  static Tensor empty(DType dtype, std::vector<int64_t> shape);

  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int ndim() const { return ndim_; }
  int64_t dim(int i) const;  // negative i counts from the end
  std::vector<int64_t> shape() const { return {shape_.begin(), shape_.begin() + ndim_}; }
  int64_t numel() const;
  int64_t rows() const;  // product of all dims but the innermost
  int64_t cols() const { return ndim_ ? shape_[ndim_ - 1] : 0; }
  size_t row_bytes() const;
  size_t nbytes() const;

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <typename T>
  T* data_as() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data_as() const {
    return static_cast<const T*>(data_);
  }
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // Rows [begin, end) of the outermost dim, as a view.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Same bytes, new shape with the same number of elements.
  Tensor reshape(std::vector<int64_t> shape) const;

  std::string shape_str() const;  // "(4, 64)"

 private:
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  int ndim_ = 0;
  std::array<int64_t, kMaxDims> shape_{};
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

}  // namespace contrail
