// <immintrin.h> for the AVX-512 translation units. GCC 12's AVX-512 intrinsics initialise their
// "undefined" pass-through operands from themselves, which -Wuninitialized reports at every inlined
// use (GCC bug 105593, fixed in 12.3 / 13); the suppression lives here, once.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
