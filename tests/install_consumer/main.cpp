// Loads a model through the installed library and generates a few greedy tokens.
#include <contrail/runtime/session.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto s = contrail::Session::load(argv[1]);
  const auto ids = s->tokenizer().encode("Once upon a time", true);
  contrail::GenerateOptions g;
  g.max_new_tokens = 8;
  g.sampling.temperature = 0;
  int n = 0;
  s->generate(ids, g, [&](int32_t) { return ++n < 8; });
  std::printf("generated %d tokens\n", n);
  return n == 8 ? 0 : 1;
}
