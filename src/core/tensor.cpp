#include "contrail/core/tensor.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "contrail/core/error.h"

namespace contrail {

Tensor::Tensor(DType dtype, std::vector<int64_t> shape, void* data, std::shared_ptr<const void> owner,
               Device device)
    : dtype_(dtype), device_(device), data_(data), owner_(std::move(owner)) {
  if (shape.size() > static_cast<size_t>(kMaxDims))
    throw InvalidArgument(fmt::format("tensor has {} dims, at most {} supported", shape.size(), kMaxDims));
  ndim_ = static_cast<int>(shape.size());
  for (int i = 0; i < ndim_; ++i) {
    if (shape[i] < 0) throw InvalidArgument(fmt::format("tensor dim {} is negative ({})", i, shape[i]));
    shape_[i] = shape[i];
  }
  (void)dtype_traits(dtype);
  if (ndim_ > 0) (void)contrail::row_bytes(dtype, cols());  // validates block alignment
  (void)nbytes();                                            // validates overflow
}

Tensor Tensor::empty(DType dtype, std::vector<int64_t> shape) {
  Tensor probe(dtype, shape, nullptr);
  const size_t bytes = probe.nbytes();
  const size_t alloc = ((bytes + 63) / 64) * 64;
  void* p = alloc ? std::aligned_alloc(64, alloc) : nullptr;
  if (alloc && !p) throw Error(fmt::format("out of memory allocating {} bytes for tensor {}", alloc, probe.shape_str()));
  if (p) std::memset(p, 0, alloc);
  std::shared_ptr<const void> owner(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  return Tensor(dtype, std::move(shape), p, std::move(owner));
}

int64_t Tensor::dim(int i) const {
  const int k = i < 0 ? ndim_ + i : i;
  if (k < 0 || k >= ndim_) throw InvalidArgument(fmt::format("dim index {} out of range for {}-d tensor", i, ndim_));
  return shape_[k];
}

int64_t Tensor::numel() const {
  if (ndim_ == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) {
    if (shape_[i] != 0 && n > std::numeric_limits<int64_t>::max() / shape_[i])
      throw InvalidArgument(fmt::format("tensor shape {} overflows int64", shape_str()));
    n *= shape_[i];
  }
  return n;
}

int64_t Tensor::rows() const {
  if (ndim_ == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i + 1 < ndim_; ++i) n *= shape_[i];
  return n;
}

size_t Tensor::row_bytes() const { return ndim_ ? contrail::row_bytes(dtype_, cols()) : 0; }

size_t Tensor::nbytes() const {
  if (ndim_ == 0) return 0;
  const size_t rb = row_bytes();
  const int64_t r = rows();
  if (r < 0) throw InvalidArgument("negative row count");
  if (rb != 0 && static_cast<uint64_t>(r) > std::numeric_limits<size_t>::max() / rb)
    throw InvalidArgument(fmt::format("tensor shape {} overflows size_t bytes", shape_str()));
  return rb * static_cast<size_t>(r);
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  if (ndim_ == 0 || begin < 0 || end < begin || end > shape_[0])
    throw InvalidArgument(fmt::format("slice_rows [{}, {}) out of range for shape {}", begin, end, shape_str()));
  std::vector<int64_t> s = shape();
  const size_t outer_bytes = s[0] ? nbytes() / static_cast<size_t>(s[0]) : 0;
  s[0] = end - begin;
  Tensor t(dtype_, std::move(s), static_cast<char*>(data_) + outer_bytes * static_cast<size_t>(begin), owner_, device_);
  return t;
}

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  Tensor t(dtype_, std::move(shape), data_, owner_, device_);
  if (t.numel() != numel())
    throw InvalidArgument(fmt::format("reshape {} -> {} changes the element count", shape_str(), t.shape_str()));
  return t;
}

std::string Tensor::shape_str() const {
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) s += fmt::format("{}{}", i ? ", " : "", shape_[i]);
  return s + ")";
}

}  // namespace contrail
