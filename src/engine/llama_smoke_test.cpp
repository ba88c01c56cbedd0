// Smoke test of the llama.cpp foundation (cmake/llama.cmake): the libraries load, have a CPU
// backend built in, and run a tiny random-weight llama model (tests/tools/tiny_gguf.hpp) end to end with
// the llama.h calls the engine uses: tokenize, chat template, a two-sequence batch, a greedy
// sampler chain, detokenize.
#include <ggml-backend.h>
#include <llama.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "tiny_gguf.hpp"

namespace {

namespace fs = std::filesystem;
using Tokens = std::vector<llama_token>;

void quiet_log(ggml_log_level level, const char* text, void* /*user*/) {
  if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

void init_backend_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
  });
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Tokens tokenize(const llama_vocab* vocab, const std::string& text, bool add_special, bool parse_special) {
  const int n =
      -llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), nullptr, 0, add_special, parse_special);
  Tokens out(static_cast<size_t>(std::max(n, 0)));
  const int got = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                                 static_cast<int32_t>(out.size()), add_special, parse_special);
  EXPECT_EQ(got, n);
  return out;
}

std::string piece(const llama_vocab* vocab, llama_token t) {
  char buf[256];
  const int n = llama_token_to_piece(vocab, t, buf, sizeof buf, /*lstrip=*/0, /*special=*/true);
  EXPECT_GE(n, 0);
  return std::string(buf, static_cast<size_t>(std::max(n, 0)));
}

class LlamaSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    init_backend_once();
    ASSERT_GT(ggml_backend_dev_count(), 0u) << "libggml has no backend built in";
    dir_ = fs::temp_directory_path() / ("spool-llama-smoke-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    unload();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path make_model(std::uint64_t seed, const std::string& name) {
    spool::testing::TinyGgufOptions o;
    o.vocab_path = std::string(SPOOL_LLAMA_VOCAB_DIR) + "/ggml-vocab-phi-3.gguf";
    o.out_path = (dir_ / name).string();
    o.seed = seed;
    spool::testing::write_tiny_gguf(o);
    return o.out_path;
  }

  void unload() {
    for (auto*& s : sampler_) {
      if (s != nullptr) llama_sampler_free(s);  // frees the samplers the chain owns
      s = nullptr;
    }
    if (ctx_ != nullptr) llama_free(ctx_);
    ctx_ = nullptr;
    if (model_ != nullptr) llama_model_free(model_);
    model_ = nullptr;
  }

  void load(const fs::path& path) {
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    model_ = llama_model_load_from_file(path.c_str(), mp);
    ASSERT_NE(model_, nullptr);
    vocab_ = llama_model_get_vocab(model_);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_seq_max = 2;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    ctx_ = llama_init_from_model(model_, cp);
    ASSERT_NE(ctx_, nullptr);
    for (auto& s : sampler_) {
      s = llama_sampler_chain_init(llama_sampler_chain_default_params());
      llama_sampler_chain_add(s, llama_sampler_init_greedy());
    }
  }

  // Decodes prompts[i] as sequence seq_ids[i] (all prompts in one batch), then n_gen tokens per
  // sequence, one batch per step. Starts from empty memory; returns the generated tokens.
  std::vector<Tokens> generate(const std::vector<Tokens>& prompts, const std::vector<llama_seq_id>& seq_ids,
                               int n_gen) {
    llama_memory_clear(llama_get_memory(ctx_), /*data=*/true);
    size_t total = 0;
    for (const auto& p : prompts) total += p.size();
    llama_batch batch = llama_batch_init(static_cast<int32_t>(std::max<size_t>(total, prompts.size())), 0, 1);
    std::vector<Tokens> out(prompts.size());
    std::vector<int32_t> out_idx(prompts.size());  // batch index whose logits to sample, per sequence
    std::vector<llama_pos> pos(prompts.size());
    auto add = [&](llama_token t, llama_pos p, llama_seq_id s, bool logits) {
      const int i = batch.n_tokens++;
      batch.token[i] = t;
      batch.pos[i] = p;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = s;
      batch.logits[i] = logits ? 1 : 0;
      return i;
    };
    for (size_t k = 0; k < prompts.size(); ++k) {
      for (size_t j = 0; j < prompts[k].size(); ++j) {
        const int i = add(prompts[k][j], static_cast<llama_pos>(j), seq_ids[k], j + 1 == prompts[k].size());
        if (j + 1 == prompts[k].size()) out_idx[k] = i;
      }
      pos[k] = static_cast<llama_pos>(prompts[k].size());
    }
    for (auto* s : sampler_) llama_sampler_reset(s);
    for (int step = 0; step < n_gen; ++step) {
      EXPECT_EQ(llama_decode(ctx_, batch), 0);
      batch.n_tokens = 0;
      for (size_t k = 0; k < prompts.size(); ++k) {
        const llama_token t = llama_sampler_sample(sampler_[seq_ids[k]], ctx_, out_idx[k]);
        out[k].push_back(t);
        out_idx[k] = add(t, pos[k]++, seq_ids[k], true);
      }
    }
    llama_batch_free(batch);
    return out;
  }

  fs::path dir_;
  llama_model* model_ = nullptr;
  const llama_vocab* vocab_ = nullptr;
  llama_context* ctx_ = nullptr;
  llama_sampler* sampler_[2] = {nullptr, nullptr};
};

TEST_F(LlamaSmoke, TinyModelFileIsDeterministic) {
  const auto a = make_model(42, "a.gguf");
  const auto b = make_model(42, "b.gguf");
  const auto c = make_model(7, "c.gguf");
  EXPECT_GT(fs::file_size(a), 1000u);
  EXPECT_EQ(read_file(a), read_file(b));
  EXPECT_NE(read_file(a), read_file(c));
}

TEST_F(LlamaSmoke, TokenizesAndAppliesChatTemplate) {
  ASSERT_NO_FATAL_FAILURE(load(make_model(42, "m.gguf")));
  EXPECT_EQ(llama_vocab_n_tokens(vocab_), 32064);  // the phi-3 tokenizer

  const Tokens hello = tokenize(vocab_, "Hello world", /*add_special=*/false, /*parse_special=*/false);
  ASSERT_FALSE(hello.empty());
  std::string text;
  for (llama_token t : hello) text += piece(vocab_, t);
  EXPECT_NE(text.find("Hello world"), std::string::npos) << text;

  const char* tmpl = llama_model_chat_template(model_, /*name=*/nullptr);
  ASSERT_NE(tmpl, nullptr);
  const llama_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Hi there"}};
  std::vector<char> buf(64);  // deliberately short: the call returns the length it needs
  int n = llama_chat_apply_template(tmpl, msgs, 2, /*add_ass=*/true, buf.data(), static_cast<int32_t>(buf.size()));
  ASSERT_GT(n, 0);
  if (n > static_cast<int>(buf.size())) {
    buf.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(tmpl, msgs, 2, true, buf.data(), static_cast<int32_t>(buf.size()));
  }
  const std::string prompt(buf.data(), static_cast<size_t>(n));
  EXPECT_NE(prompt.find("<|user|>\nHi there<|end|>"), std::string::npos) << prompt;
  EXPECT_TRUE(prompt.ends_with("<|assistant|>\n")) << prompt;

  // parse_special: "<|user|>" becomes its one special token, not text.
  const Tokens chat = tokenize(vocab_, prompt, /*add_special=*/true, /*parse_special=*/true);
  const Tokens user = tokenize(vocab_, "<|user|>", false, true);
  ASSERT_EQ(user.size(), 1u);
  EXPECT_NE(std::find(chat.begin(), chat.end(), user[0]), chat.end());
  EXPECT_LT(chat.size(), prompt.size() / 2);
}

TEST_F(LlamaSmoke, DecodesTwoIndependentSequences) {
  ASSERT_NO_FATAL_FAILURE(load(make_model(42, "m.gguf")));
  const Tokens a = tokenize(vocab_, "The quick brown fox", true, false);
  const Tokens b = tokenize(vocab_, "Once upon a time, in a land far away", true, false);
  constexpr int kGen = 8;

  const auto both = generate({a, b}, {0, 1}, kGen);
  ASSERT_EQ(both.size(), 2u);
  ASSERT_EQ(both[0].size(), static_cast<size_t>(kGen));
  for (const auto& seq : both) {
    for (llama_token t : seq) {
      EXPECT_GE(t, 0);
      EXPECT_LT(t, llama_vocab_n_tokens(vocab_));
      piece(vocab_, t);  // every sampled token detokenizes
    }
  }
  // Deterministic (greedy) and independent: a sequence's reply does not depend on its neighbour,
  // its sequence id or its slot in the batch.
  EXPECT_EQ(generate({a, b}, {0, 1}, kGen), both);
  EXPECT_EQ(generate({a}, {0}, kGen)[0], both[0]);
  EXPECT_EQ(generate({b}, {1}, kGen)[0], both[1]);
  const auto swapped = generate({b, a}, {0, 1}, kGen);
  EXPECT_EQ(swapped[0], both[1]);
  EXPECT_EQ(swapped[1], both[0]);
  EXPECT_NE(both[0], both[1]);

  // Same seed ⇒ same model ⇒ same output; another seed ⇒ another model.
  unload();
  ASSERT_NO_FATAL_FAILURE(load(make_model(42, "again.gguf")));
  EXPECT_EQ(generate({a, b}, {0, 1}, kGen), both);
  unload();
  ASSERT_NO_FATAL_FAILURE(load(make_model(7, "other.gguf")));
  EXPECT_NE(generate({a, b}, {0, 1}, kGen), both);
}

}  // namespace
