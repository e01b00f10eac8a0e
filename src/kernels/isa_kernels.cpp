// The dispatchers' shared ISA check (kernels/isa_kernels.h).
#include "kernels/isa_kernels.h"

#include <fmt/format.h>

#include "contrail/core/error.h"

namespace contrail::kernels {

void require_isa(const char* what, Isa isa) {
  if (!isa_supported(isa))
    throw InvalidArgument(fmt::format("{}: ISA {} is not supported by this CPU (best: {})", what, isa_name(isa),
                                      isa_name(best_isa())));
}

}  // namespace contrail::kernels
