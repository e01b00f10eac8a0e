// Error type of the library. Contract: every failure inside libcontrail throws contrail::Error
// (or a subclass) whose message names where it happened, the offending value and the limit.
// Nothing in the library calls exit/abort on bad input. Boundaries (CLI, C API, HTTP) catch it
// and turn it into a status.
#pragma once
#include <stdexcept>
#include <string>

namespace contrail {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Malformed or hostile input files (GGUF, llama2.c .bin, tokenizer files).
class FormatError : public Error {
 public:
  using Error::Error;
};

// Invalid arguments given by a caller (shapes, parameters out of range).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

}  // namespace contrail
