// The contrail CLI end to end: stories260K text equal to llama2.c's, logits file equal to the
// reference, help texts complete, bad input gives a clear error and a non-zero status.
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "golden.h"
#include "test_util.h"

namespace contrail {
namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

std::string cli() { return quote(test::cli_path()); }

std::string golden_case(const std::string& c, const std::string& ext) {
  return test::data_path("golden/stories260K/llama2c/" + c + ext);
}

TEST(Cli, RunGreedyPrintsLlama2cStory) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  const auto cases = test::stories_cases();
  ASSERT_FALSE(cases.empty());
  for (const std::string& c : cases) {
    const auto g = test::read_json(golden_case(c, ".json"));
    if (g.at("stopped_on_bos_token").get<bool>()) continue;  // llama2.c stops on BOS, run stops on EOS only
    const size_t n = g.at("generated_ids").size();
    std::string out;
    const int rc = test::run_command(cli() + " run -m " + quote(model) + " -f " + quote(golden_case(c, ".prompt.txt")) +
                                         " --temp 0 -n " + std::to_string(n) + " -t 2 2>/dev/null",
                                     &out);
    ASSERT_EQ(rc, 0) << c;
    EXPECT_EQ(out, test::read_text(golden_case(c, ".stdout.txt"))) << c;
  }
}

TEST(Cli, RunReportsSpeedOnStderr) {
  const std::string model = test::data_path("models/stories260K/stories260K.bin");
  CONTRAIL_REQUIRE_DATA(model);
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " run -m " + quote(model) + " -p 'Lily' -n 16 --seed 7 2>&1 >/dev/null", &out), 0);
  EXPECT_NE(out.find("prompt:"), std::string::npos) << out;
  EXPECT_NE(out.find("tokens/s"), std::string::npos) << out;
}

TEST(Cli, SeededSamplingIsReproducible) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  const std::string cmd = cli() + " run -m " + quote(model) + " -p 'Once' -n 40 --temp 0.9 --top-p 0.9 -s 123 2>/dev/null";
  std::string a, b, c;
  ASSERT_EQ(test::run_command(cmd, &a), 0);
  ASSERT_EQ(test::run_command(cmd, &b), 0);
  ASSERT_EQ(test::run_command(cli() + " run -m " + quote(model) + " -p 'Once' -n 40 --temp 0.9 --top-p 0.9 -s 124 2>/dev/null", &c), 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Cli, LogitsFileMatchesLlamaCpp) {
  const std::string model = test::data_path("golden/tiny-random/llama/gguf/model.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  const auto g = test::read_json(test::data_path("golden/tiny-random/llama/golden/seq0_text.json"));
  std::string ids;
  for (int32_t id : g.at("token_ids").get<std::vector<int32_t>>()) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  const std::string out = (std::filesystem::temp_directory_path() / ("contrail_test_logits_" + std::to_string(::getpid()) + ".bin")).string();
  std::remove(out.c_str());
  ASSERT_EQ(test::run_command(cli() + " logits -m " + quote(model) + " --tokens " + ids + " -o " + quote(out) + " 2>&1", nullptr), 0);
  const auto got = test::read_f32(out);
  const auto ref = test::read_f32(test::data_path("golden/tiny-random/llama/golden/seq0_text.logits.bin"));
  ASSERT_EQ(got.size(), ref.size());
  EXPECT_LE(test::max_abs_diff(got, ref, 32000).max_abs, 1e-3);
  std::remove(out.c_str());
}

TEST(Cli, TokenizeIds) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  for (const std::string& c : test::stories_cases()) {
    const auto g = test::read_json(golden_case(c, ".json"));
    std::string want = "[";
    for (int32_t id : g.at("prompt_ids_with_bos").get<std::vector<int32_t>>())
      want += (want.size() > 1 ? ", " : "") + std::to_string(id);
    std::string out;
    ASSERT_EQ(test::run_command(cli() + " tokenize -m " + quote(model) + " --ids --file " +
                                    quote(golden_case(c, ".prompt.txt")),
                                &out),
              0);
    EXPECT_EQ(out, want + "]\n") << c;
  }
}

TEST(Cli, InfoDescribesModel) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " info " + quote(model), &out), 0);
  for (const char* want : {"architecture:  llama", "n_embd 64", "n_layer 5", "n_head 8", "n_head_kv 4", "tokenizer:",
                           "512 tokens", "general.architecture"})
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << out;
}

// The subcommands `contrail --help` lists (the names in its "Subcommands:" section).
std::set<std::string> listed_subcommands(const std::string& help) {
  std::set<std::string> names;
  std::istringstream in(help.substr(std::min(help.size(), help.find("Subcommands:"))));
  std::string line;
  std::getline(in, line);  // the heading
  const std::regex entry("^  ([a-z][a-z0-9-]*)( .*)?$");  // continuation lines are indented further
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, entry)) names.insert(m[1]);
  return names;
}

TEST(Cli, HelpIsCompleteForEveryCommand) {
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " --help", &out), 0);
  for (const char* sub : {"run", "info", "tokenize", "logits", "bench", "chat", "convert", "pull"})
    EXPECT_NE(out.find(sub), std::string::npos) << sub;
  // Every command `contrail --help` lists is checked below: a new command needs an entry here.
  const std::set<std::string> listed = listed_subcommands(out);
  const std::set<std::string> expected = {"run",  "info",    "tokenize", "logits", "bench",
                                          "pull", "convert", "chat",     "serve",  "synth"};
  EXPECT_EQ(listed, expected) << out;
  const std::map<std::string, std::vector<const char*>> subs = {
      {"run", {"--prompt", "--n-predict", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed", "--model",
               "--threads", "--file", "--no-echo", "--ignore-eos", "--ctx-size", "--isa", "--tokenizer"}},
      {"info", {"--model", "--tensors", "--full", "--tokenizer"}},
      {"tokenize", {"--ids", "--file", "--model", "--no-bos", "--parse-special", "--tokenizer", "vocab-only GGUF"}},
      {"logits", {"--tokens", "--output", "--model", "--threads", "--ctx-size"}},
      {"bench", {"--n-prompt", "--n-gen", "--repetitions", "--json", "--no-membw", "--concurrency", "--plot", "serve"}},
      {"bench serve", {"--base-url", "--dataset", "--dataset-path", "--num-prompts", "--request-rate",
                       "--max-concurrency", "--result-json", "--save-requests", "--token-counter", "--tokenizer-model"}},
      {"chat", {"--model", "--system", "--chat-template", "--n-predict", "--temp", "--seed", "/reset", "/exit"}},
      {"convert", {"--output", "--outtype", "--name", "--vocab-from", "--progress", "--no-progress"}},
      {"pull", {"--revision", "--include", "--exclude", "--cache-dir", "--endpoint", "--token", "--retries"}},
      {"serve", {"--model", "--host", "--port", "--api-key", "--model-name", "--chat-template", "--max-batched-tokens",
                 "--kv-cache-mib", "--threads", "--ctx-size", "--io-threads", "--max-connections", "--max-body-mib",
                 "--max-upload-mib", "--header-timeout", "--body-timeout"}},
      {"synth", {"--preset", "--arch", "--vocab", "--output", "--outtype", "--seed", "--n-layer", "--n-embd"}},
  };
  for (const std::string& sub : listed) EXPECT_TRUE(subs.count(sub)) << "no help check for `contrail " << sub << "`";
  for (const auto& [sub, opts] : subs) {
    out.clear();
    ASSERT_EQ(test::run_command(cli() + " " + sub + " --help", &out), 0) << sub;
    for (const char* o : opts) EXPECT_NE(out.find(o), std::string::npos) << sub << " --help lacks " << o;
  }
}

// -m accepts a Hugging Face checkpoint directory everywhere; the help of every command that loads
// a model says so (it used to name only GGUF and llama2.c files).
TEST(Cli, ModelHelpNamesEveryFormat) {
  for (const char* sub : {"run", "info", "tokenize", "logits", "bench", "chat", "serve"}) {
    std::string out;
    ASSERT_EQ(test::run_command(cli() + " " + sub + " --help", &out), 0) << sub;
    for (const char* want : {"GGUF", "Hugging Face", "llama2.c"})
      EXPECT_NE(out.find(want), std::string::npos) << sub << " --help does not mention " << want << ":\n" << out;
  }
}

TEST(Cli, BadInputGivesClearErrors) {
  std::string out;
  EXPECT_EQ(test::run_command(cli() + " run -m /nonexistent/model.gguf -p hi 2>&1", &out), 1);
  EXPECT_NE(out.find("/nonexistent/model.gguf"), std::string::npos) << out;
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  out.clear();
  EXPECT_EQ(test::run_command(cli() + " logits -m " + quote(model) + " --tokens 1,99999 -o /tmp/x.bin 2>&1", &out), 1);
  EXPECT_NE(out.find("99999"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(test::run_command(cli() + " run -m " + quote(model) + " -p hi --temp -1 2>&1", &out), 1);
  EXPECT_NE(out.find("temperature"), std::string::npos) << out;
  out.clear();
  EXPECT_NE(test::run_command(cli() + " run --no-such-flag 2>&1", &out), 0);
}

// `contrail bench --concurrency ... --plot`: the batch sweep through the engine, as JSON and SVG.
TEST(Cli, BenchBatchSweepJsonAndPlot) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  test::TempDir dir("cli_bench");
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " bench -m " + quote(model) + " -p 8 -n 16 -r 1 --no-membw --json --concurrency 1,4 "
                                  "--plot " + quote(dir.file("sweep.svg")) + " 2>&1",
                              &out),
            0)
      << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_GT(j.at("pp_tokens_per_s").get<double>(), 0);
  EXPECT_GT(j.at("tg_tokens_per_s").get<double>(), 0);
  ASSERT_EQ(j.at("concurrency").size(), 2u);
  for (const auto& r : j.at("concurrency")) {
    EXPECT_GT(r.at("tokens_per_s").get<double>(), 0);
    EXPECT_GT(r.at("decode_tokens_per_s").get<double>(), 0);
    EXPECT_NEAR(r.at("per_request_tokens_per_s").get<double>() * r.at("concurrency").get<double>(),
                r.at("tokens_per_s").get<double>(), 1e-2 * r.at("tokens_per_s").get<double>());
    // tokens / wall time
    EXPECT_NEAR(r.at("concurrency").get<double>() * 16 / r.at("wall_s").get<double>(), r.at("tokens_per_s").get<double>(),
                1e-2 * r.at("tokens_per_s").get<double>());
  }
  const std::string svg = test::read_text(dir.file("sweep.svg"));
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("concurrent requests"), std::string::npos);
  out.clear();
  EXPECT_EQ(test::run_command(cli() + " bench -m " + quote(model) + " -r 1 --no-membw --plot x.svg 2>&1", &out), 1);
  EXPECT_NE(out.find("--concurrency"), std::string::npos) << out;
}

// `contrail chat` with stories260K and a template that concatenates the messages after BOS: the
// first reply is llama2.c's greedy continuation of the message (its golden stdout), /reset starts
// over, and the next message is rendered without the earlier turns.
TEST(Cli, ChatRepliesWithTheTemplateRenderedPrompt) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  test::TempDir dir("cli_chat");
  const std::string text = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
  const std::string tmpl = dir.write("concat.jinja", std::vector<uint8_t>(text.begin(), text.end()));
  std::string out;
  ASSERT_EQ(test::run_command("printf 'Once upon a time\\n/reset\\nLily and Ben\\n' | " + cli() + " chat -m " +
                                  quote(model) + " --chat-template " + quote(tmpl) + " -n 24 --temp 0 --show-prompt 2>" +
                                  quote(dir.file("stderr.txt")),
                              &out),
            0)
      << test::read_text(dir.file("stderr.txt"));
  const size_t nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos) << out;
  const std::string reply1 = out.substr(0, nl);
  const std::string golden0 = test::read_text(golden_case("p0_once_upon_a_time", ".stdout.txt"));
  ASSERT_GT(reply1.size(), 20u) << out;
  EXPECT_EQ(golden0.rfind("Once upon a time" + reply1, 0), 0u) << "reply: " << reply1;
  EXPECT_NE(out.find("(conversation cleared)\n"), std::string::npos) << out;
  const std::string reply2 = out.substr(out.find("(conversation cleared)\n") + 23);
  const std::string golden1 = test::read_text(golden_case("p1_lily_and_ben", ".stdout.txt"));
  ASSERT_GT(reply2.size(), 20u) << out;
  EXPECT_EQ(golden1.rfind("Lily and Ben " + reply2.substr(0, reply2.size() - 1), 0), 0u) << "reply: " << reply2;
  const std::string err = test::read_text(dir.file("stderr.txt"));
  EXPECT_NE(err.find("--- prompt ---\n<s>Lily and Ben\n"), std::string::npos) << err;  // no earlier turns

  // stories260K has no chat template of its own.
  out.clear();
  EXPECT_EQ(test::run_command("echo hi | " + cli() + " chat -m " + quote(model) + " 2>&1", &out), 1);
  EXPECT_NE(out.find("has no chat template"), std::string::npos) << out;
  EXPECT_NE(out.find("--chat-template"), std::string::npos) << out;
}

// ---- Every accepted option acts, or is rejected ---------------------------------------------------

// Runs `args` (with 2>&1); the status must be `rc` and the output must contain every needle.
void expect_cli(const std::string& args, int rc, std::initializer_list<std::string> needles) {
  std::string out;
  EXPECT_EQ(test::run_command(cli() + " " + args + " 2>&1", &out), rc) << args << "\n" << out;
  for (const std::string& n : needles) EXPECT_NE(out.find(n), std::string::npos) << args << ": no '" << n << "' in:\n" << out;
}

// `mkfifo f.gguf; contrail info f.gguf` used to block forever in open(). Each command that loads a
// model must fail at once naming the path and its type (`timeout` turns a hang into status 124).
TEST(Cli, NonRegularModelPathsFailAtOnce) {
  const std::string bin = test::data_path("models/stories260K/stories260K.bin");
  CONTRAIL_REQUIRE_DATA(bin);
  test::TempDir dir("cli_fifo");
  const std::string fifo = dir.file("f.gguf");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string t = "timeout 30 ";
  for (const std::string& args :
       {"info " + quote(fifo), "tokenize -m " + quote(fifo) + " hi", "run -m " + quote(fifo) + " -p hi -n 1",
        "logits -m " + quote(fifo) + " --tokens 1 -o " + quote(dir.file("l.bin")),
        "bench -m " + quote(fifo) + " -p 1 -n 1 -r 1 --no-membw",
        "run -m " + quote(bin) + " --tokenizer " + quote(fifo) + " -p hi -n 1"}) {
    std::string out;
    EXPECT_EQ(test::run_command(t + cli() + " " + args + " 2>&1", &out), 1) << args << "\n" << out;
    EXPECT_NE(out.find(fifo), std::string::npos) << args << "\n" << out;
    EXPECT_NE(out.find("is a FIFO"), std::string::npos) << args << "\n" << out;
  }
  expect_cli("info " + quote(dir.path()), 1, {dir.path(), "config.json is missing"});
}

// --tokenizer is for llama2.c checkpoints; GGUF files and Hugging Face directories carry their
// own tokenizer, so it used to be accepted and ignored there.
TEST(Cli, TokenizerOptionWorksForLlama2cAndIsRejectedElsewhere) {
  const std::string gguf = test::data_path("models/stories260K/stories260K.gguf");
  const std::string bin = test::data_path("models/stories260K/stories260K.bin");
  const std::string tok = test::data_path("models/stories260K/tok512.bin");
  const std::string hf = test::data_path("golden/tiny-random/llama/hf");
  CONTRAIL_REQUIRE_DATA(gguf);
  CONTRAIL_REQUIRE_DATA(bin);
  CONTRAIL_REQUIRE_DATA(hf + "/config.json");
  const std::string t = " --tokenizer " + quote(tok);
  for (const std::string& args : {"run -m " + quote(gguf) + t + " -p hi -n 1", "info -m " + quote(hf) + t,
                                  "tokenize -m " + quote(gguf) + t + " hi", "logits -m " + quote(hf) + t + " --tokens 1 -o x",
                                  "bench -m " + quote(gguf) + t + " -p 1 -n 1 -r 1 --no-membw"})
    expect_cli(args, 1, {"--tokenizer", "llama2.c checkpoints only", tok});
  // With a llama2.c checkpoint it is used: a missing file is an error naming it.
  expect_cli("tokenize -m " + quote(bin) + t + " --ids --no-bos 'Once'", 0, {"["});
  expect_cli("tokenize -m " + quote(bin) + " --tokenizer /nonexistent/tok.bin hi", 1, {"/nonexistent/tok.bin"});
}

// Options that a command would not act on are usage errors (status 2) or errors naming them.
TEST(Cli, OptionsThatWouldDoNothingAreRejected) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  const std::string vocab = test::data_path("golden/tokenizers/vocab/ggml-vocab-llama-spm.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  CONTRAIL_REQUIRE_DATA(vocab);
  test::TempDir dir("cli_unused");
  const std::string m = quote(model);
  const std::string text = dir.write("t.txt", {'h', 'i'});
  // info and tokenize read the file without running it: no threads, context or kernels.
  for (const std::string& o : {"-t 2", "--threads 2", "-c 64", "--ctx-size 64", "--isa scalar"}) {
    expect_cli("info " + o + " " + m, 2, {"not expected"});
    expect_cli("tokenize " + o + " -m " + m + " hi", 2, {"not expected"});
  }
  // Two sources for one input.
  expect_cli("run -m " + m + " -p hi -f " + quote(text) + " -n 1", 2, {"excludes"});
  expect_cli("tokenize -m " + m + " --file " + quote(text) + " hello", 2, {"excludes"});
  expect_cli("info -m " + m + " " + m, 2, {"excludes"});
  // A preset fixes the architecture.
  expect_cli("synth --preset tinyllama-1.1b --arch qwen2 --vocab " + quote(vocab) + " -o " + quote(dir.file("s.gguf")), 1,
             {"--arch qwen2", "--preset tinyllama-1.1b"});
  EXPECT_FALSE(test::exists(dir.file("s.gguf")));
  // `bench serve`: options of plain `bench`, and options of another dataset or mode (all rejected
  // before the server is contacted).
  const std::string serve = " serve --base-url http://127.0.0.1:1 ";
  expect_cli("bench -p 4" + serve + "--dataset random", 1, {"--n-prompt", "`contrail bench`"});
  expect_cli("bench" + serve + "--dataset random --dataset-path x.json", 1, {"--dataset-path", "sharegpt"});
  expect_cli("bench" + serve + "--dataset random --max-input-length 5", 1, {"--max-input-length"});
  expect_cli("bench" + serve + "--dataset sharegpt --dataset-path x.json --random-input-len 5", 1, {"--random-input-len"});
  expect_cli("bench" + serve + "--dataset random --shared-prefix-len 5", 1, {"--shared-prefix-len"});
  expect_cli("bench" + serve + "--dataset random --save-requests", 1, {"--save-requests", "--result-json"});
  expect_cli("bench" + serve + "--dataset random --token-counter server -m " + m, 1, {"--tokenizer-model", "local"});
  // ... while a valid combination gets as far as the server.
  expect_cli("bench" + serve + "--dataset shared-prefix --shared-prefix-len 5 --random-input-len 3", 1,
             {"cannot reach the server"});
}

// `contrail tokenize` needs only a vocabulary: llama.cpp's vocab-only GGUFs (tokenizer keys, no
// tensors) work, and give llama.cpp's ids (its test-tokenizer-0 vectors: no BOS, .inp/.out).
TEST(Cli, TokenizeWorksWithAVocabOnlyGguf) {
  test::TempDir dir("cli_vocab");
  for (const std::string name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
    const std::string vocab = test::data_path("golden/tokenizers/vocab/" + name);
    const std::string inp = test::data_path("golden/tokenizers/tests/" + name + ".inp");
    CONTRAIL_REQUIRE_DATA(vocab);
    CONTRAIL_REQUIRE_DATA(inp);
    const std::string all_in = test::read_text(inp);
    const std::string all_out = test::read_text(test::data_path("golden/tokenizers/tests/" + name + ".out"));
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::istringstream outs(all_out);
    size_t begin = 0;
    int checked = 0;
    for (std::string ids_line; checked < 3 && std::getline(outs, ids_line);) {
      const size_t end = all_in.find(sep, begin);
      if (end == std::string::npos) break;
      const std::string text = all_in.substr(begin, end - begin);
      begin = end + sep.size();
      if (text.empty()) continue;
      std::string want = "[";
      std::istringstream ids(ids_line);
      for (int64_t id; ids >> id;) want += (want.size() > 1 ? ", " : "") + std::to_string(id);
      const std::string file = dir.write("case.txt", std::vector<uint8_t>(text.begin(), text.end()));
      std::string out;
      const std::string args = " tokenize -m " + quote(vocab) + " --ids --no-bos --file " + quote(file);
      ASSERT_EQ(test::run_command(cli() + args + " 2>&1", &out), 0)
          << name << ": " << out;
      EXPECT_EQ(out, want + "]\n") << name << ": '" << text << "'";
      ++checked;
    }
    EXPECT_EQ(checked, 3) << name;
  }
}

}  // namespace
}  // namespace contrail
