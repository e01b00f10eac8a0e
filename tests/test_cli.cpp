// The contrail CLI end to end: stories260K text equal to llama2.c's, logits file equal to the
// reference, help texts complete, bad input gives a clear error and a non-zero status.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

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

TEST(Cli, HelpIsCompleteForEveryCommand) {
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " --help", &out), 0);
  for (const char* sub : {"run", "info", "tokenize", "logits", "bench", "chat", "convert", "pull"})
    EXPECT_NE(out.find(sub), std::string::npos) << sub;
  const std::pair<const char*, std::vector<const char*>> subs[] = {
      {"run", {"--prompt", "--n-predict", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed", "--model", "--threads"}},
      {"info", {"--model", "--tensors"}},
      {"tokenize", {"--ids", "--file", "--model"}},
      {"logits", {"--tokens", "--output", "--model"}},
      {"bench", {"--n-prompt", "--n-gen", "--repetitions", "--json"}},
      {"chat", {"--model", "--system", "--chat-template", "--n-predict", "--temp", "--seed", "/reset", "/exit"}},
  };
  for (const auto& [sub, opts] : subs) {
    out.clear();
    ASSERT_EQ(test::run_command(cli() + " " + sub + " --help", &out), 0) << sub;
    for (const char* o : opts) EXPECT_NE(out.find(o), std::string::npos) << sub << " --help lacks " << o;
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

}  // namespace
}  // namespace contrail
