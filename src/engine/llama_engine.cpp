#include "engine/llama_engine.hpp"

#include "engine/argmax.hpp"
#include "engine/reply_splitter.hpp"

#include <chat.h>  // llama.cpp's common library: Jinja chat templates
#include <json-schema-to-grammar.h>
#include <llama.h>

#include <boost/json/serialize.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

namespace spool {
namespace {

std::once_flag g_backend_once;

// Shared by the engine and its runs, so a run can be cancelled after the engine is gone.
struct Queue {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
};

class LlamaRun final : public EngineRun {
 public:
  explicit LlamaRun(std::shared_ptr<Queue> q) : q_(std::move(q)) {}
  void cancel() override {
    cancelled_.store(true);
    { std::lock_guard lk(q_->mu); }  // the decode thread is either waiting or will see the flag
    q_->cv.notify_all();
  }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::shared_ptr<Queue> q_;
  std::atomic<bool> cancelled_{false};
};

struct Pending {
  std::shared_ptr<const ChatRequest> req;
  std::shared_ptr<EngineSink> sink;
  std::shared_ptr<LlamaRun> run;
};

// One sequence of the batch.
struct Slot {
  bool active = false;
  Pending job;
  llama_sampler* sampler = nullptr;
  bool argmax = false;  // greedy without penalties: the top logit, no sampler pass over the vocabulary
  std::vector<llama_token> prompt;
  std::size_t prompted = 0;  // prompt tokens already decoded
  llama_pos n_past = 0;
  llama_token last = 0;
  std::int64_t produced = 0;
  std::int64_t max_tokens = 0;
  int logits_index = -1;  // index in the current batch whose logits to sample, or -1
  std::optional<ReplySplitter> splitter;
};

Error engine_error(std::string what) { return make_error(Errc::internal, std::move(what)); }

// The request as llama.cpp's chat-template inputs (the OpenAI-style messages Jinja templates
// expect): tool_use blocks become tool calls, tool_result blocks become "tool" messages. Blocks a
// text model cannot read are an error; thinking blocks of earlier turns are not fed back.
common_chat_msg chat_msg(std::string role, std::string content) {
  common_chat_msg m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

Result<common_chat_templates_inputs> template_inputs(const ChatRequest& req) {
  common_chat_templates_inputs in;
  in.use_jinja = true;
  in.add_generation_prompt = true;
  in.enable_thinking = req.thinking;
  if (!req.system.empty()) in.messages.push_back(chat_msg("system", req.system));
  for (const auto& m : req.messages) {
    common_chat_msg msg = chat_msg(m.role, "");
    for (const auto& b : m.content) {
      if (b.type == "text") {
        msg.content += b.text;
      } else if (b.type == "tool_use") {
        const auto* input = b.raw.if_contains("input");
        msg.tool_calls.push_back(common_chat_tool_call{
            .name = b.name, .arguments = input ? boost::json::serialize(*input) : "{}", .id = b.id});
      } else if (b.type == "tool_result") {
        in.messages.push_back(chat_msg("tool", b.text));
        in.messages.back().tool_call_id = b.id;
      } else if (b.type == "image" || b.type == "document") {
        return make_error(Errc::invalid_request, "this model reads text only; the request has a " + b.type + " block");
      }
    }
    if (!msg.content.empty() || !msg.tool_calls.empty()) in.messages.push_back(std::move(msg));
  }
  for (const auto& t : req.tools) {
    in.tools.push_back(common_chat_tool{
        .name = t.name,
        .description = t.description,
        .parameters = t.input_schema.is_null() ? R"({"type":"object"})" : boost::json::serialize(t.input_schema)});
  }
  if (req.tool_choice) {
    const auto& type = req.tool_choice->type;
    in.tool_choice = type == "none"                    ? COMMON_CHAT_TOOL_CHOICE_NONE
                     : type == "any" || type == "tool" ? COMMON_CHAT_TOOL_CHOICE_REQUIRED
                                                       : COMMON_CHAT_TOOL_CHOICE_AUTO;
  }
  return in;
}

// The GBNF grammar (root rule "root") that only lets through JSON valid against `format`'s schema,
// by llama.cpp's json_schema_to_grammar; invalid_request saying why it cannot convert the schema.
Result<std::string> format_grammar(const OutputFormat& format) {
  try {
    return json_schema_to_grammar(common_json::parse(boost::json::serialize(format.schema)), true);
  } catch (const std::exception& e) {
    std::string why = e.what();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return make_error(Errc::invalid_request, "llama.cpp cannot turn the schema into a grammar: " + why);
  }
}

std::optional<Error> check_gguf(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return engine_error("model file not found or unreadable: " + path);
  char magic[4] = {};
  f.read(magic, 4);
  if (f.gcount() != 4 || std::string_view(magic, 4) != "GGUF") {
    return engine_error("model file is not a GGUF file: " + path);
  }
  return std::nullopt;
}

}  // namespace

struct LlamaEngine::Impl {
  explicit Impl(LlamaOptions o) : opts(std::move(o)), q(std::make_shared<Queue>()) {}

  LlamaOptions opts;
  std::shared_ptr<Queue> q;
  std::deque<Pending> waiting;  // guarded by q->mu
  std::optional<Error> load_error;
  bool loaded = false;  // guarded by q->mu (with load_error)
  std::condition_variable loaded_cv;
  llama_model* model = nullptr;
  const llama_vocab* vocab = nullptr;
  llama_context* ctx = nullptr;
  common_chat_templates_ptr templates;
  std::vector<Slot> slots;
  std::thread thread;

  void run();
  bool load();
  Result<std::vector<llama_token>> prompt_tokens(const ChatRequest& req) const;
  void admit(Slot& s, std::size_t seq);
  void release(Slot& s, std::size_t seq);
  void finish(Slot& s, std::size_t seq, StopReason reason);
  void step(llama_batch& batch);
  llama_token top_logit(int batch_index) const;
  llama_sampler* grammar_sampler(const OutputFormat& format) const;
};

// A grammar sampler for `format`, or nullptr when llama.cpp cannot build one.
llama_sampler* LlamaEngine::Impl::grammar_sampler(const OutputFormat& format) const {
  auto grammar = format_grammar(format);
  if (!grammar) return nullptr;
  return llama_sampler_init_grammar(vocab, grammar->c_str(), "root");
}

// What llama.cpp's greedy sampler picks, without its copy of every logit into a candidate array
// (on small models that copy costs as much as a decode step).
llama_token LlamaEngine::Impl::top_logit(int batch_index) const {
  const float* logits = llama_get_logits_ith(ctx, batch_index);
  return static_cast<llama_token>(first_argmax(logits, static_cast<std::size_t>(llama_vocab_n_tokens(vocab))));
}

Result<std::vector<llama_token>> LlamaEngine::Impl::prompt_tokens(const ChatRequest& req) const {
  auto inputs = template_inputs(req);
  if (!inputs) return inputs.error();
  std::string text;
  try {
    text = common_chat_templates_apply(templates.get(), *inputs).prompt;
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_request,
                      std::string("the model's chat template rejected the conversation: ") + e.what());
  }
  std::vector<llama_token> tokens(text.size() + 8);
  int32_t k = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), true, true);
  if (k < 0) {
    tokens.resize(static_cast<std::size_t>(-k));
    k = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), true, true);
  }
  if (k < 0) return engine_error("could not tokenize the prompt");
  tokens.resize(static_cast<std::size_t>(k));
  return tokens;
}

bool LlamaEngine::Impl::load() {
  std::call_once(g_backend_once, [] {
    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_backend_init();
  });
  if (auto bad = check_gguf(opts.model_path)) {
    load_error = std::move(bad);
    return false;
  }
  llama_model_params mp = llama_model_default_params();
  model = llama_model_load_from_file(opts.model_path.c_str(), mp);
  if (!model) {
    load_error = engine_error("llama.cpp could not load the model " + opts.model_path);
    return false;
  }
  vocab = llama_model_get_vocab(model);
  try {
    // The model's own (Jinja) template, as llama-server renders it; chatml when it has none.
    templates = common_chat_templates_init(model, "");
  } catch (const std::exception& e) {
    load_error = engine_error(std::string("the chat template of ") + opts.model_path + " does not parse: " + e.what());
    return false;
  }
  const int parallel = std::max(1, opts.parallel);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(std::max(64, opts.context) * parallel);
  cp.n_seq_max = static_cast<uint32_t>(parallel);
  cp.n_batch = static_cast<uint32_t>(std::max(parallel, opts.batch));
  cp.n_ubatch = cp.n_batch;
  const int threads =
      opts.threads > 0 ? opts.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.no_perf = true;
  ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    load_error = engine_error("llama.cpp could not create a context for " + opts.model_path);
    return false;
  }
  slots.resize(static_cast<std::size_t>(parallel));
  return true;
}

void LlamaEngine::Impl::admit(Slot& s, std::size_t seq) {
  auto tokens = prompt_tokens(*s.job.req);
  if (!tokens) {
    s.job.sink->fail(tokens.error());
    s = Slot{};
    return;
  }
  const auto per_seq = static_cast<std::size_t>(std::max(64, opts.context));
  if (tokens->size() + 1 >= per_seq) {
    s.job.sink->fail(make_error(Errc::invalid_request, "the prompt is " + std::to_string(tokens->size()) +
                                                           " tokens; this model's context per sequence is " +
                                                           std::to_string(per_seq)));
    s = Slot{};
    return;
  }
  const ChatRequest& r = *s.job.req;
  s.prompt = std::move(*tokens);
  s.prompted = 0;
  s.n_past = 0;
  s.produced = 0;
  s.max_tokens = r.max_tokens > 0 ? r.max_tokens : opts.default_max_tokens;
  s.splitter.emplace(r.stop_sequences);
  s.sampler = llama_sampler_chain_init(llama_sampler_chain_default_params());
  s.argmax = false;
  if (r.output_format) {  // first in the chain: the others only ever see tokens the grammar allows
    llama_sampler* grammar = grammar_sampler(*r.output_format);
    if (!grammar) {
      s.job.sink->fail(make_error(Errc::invalid_request, "llama.cpp rejected the grammar made from the schema"));
      llama_sampler_free(s.sampler);
      s = Slot{};
      return;
    }
    llama_sampler_chain_add(s.sampler, grammar);
  }
  const bool penalties = r.repetition_penalty || r.frequency_penalty || r.presence_penalty;
  if (penalties) {
    llama_sampler_chain_add(s.sampler,
                            llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), 64,
                                                         static_cast<float>(r.repetition_penalty.value_or(1.0)),
                                                         static_cast<float>(r.frequency_penalty.value_or(0.0)),
                                                         static_cast<float>(r.presence_penalty.value_or(0.0))));
  }
  const double temperature = r.temperature.value_or(1.0);
  if (temperature <= 0.0) {
    llama_sampler_chain_add(s.sampler, llama_sampler_init_greedy());
    s.argmax = !penalties && !r.output_format;
  } else {
    if (r.top_k && *r.top_k > 0)
      llama_sampler_chain_add(s.sampler, llama_sampler_init_top_k(static_cast<int32_t>(*r.top_k)));
    if (r.top_p) llama_sampler_chain_add(s.sampler, llama_sampler_init_top_p(static_cast<float>(*r.top_p), 1));
    if (r.min_p) llama_sampler_chain_add(s.sampler, llama_sampler_init_min_p(static_cast<float>(*r.min_p), 1));
    llama_sampler_chain_add(s.sampler, llama_sampler_init_temp(static_cast<float>(temperature)));
    const auto seed = r.seed ? static_cast<uint32_t>(*r.seed) : static_cast<uint32_t>(std::random_device{}());
    llama_sampler_chain_add(s.sampler, llama_sampler_init_dist(seed));
  }
  s.active = true;
  s.job.sink->queued(std::nullopt);
  s.job.sink->begin(static_cast<std::int64_t>(s.prompt.size()));
  (void)seq;
}

void LlamaEngine::Impl::release(Slot& s, std::size_t seq) {
  if (s.sampler) llama_sampler_free(s.sampler);
  llama_memory_seq_rm(llama_get_memory(ctx), static_cast<llama_seq_id>(seq), -1, -1);
  s = Slot{};
}

void LlamaEngine::Impl::finish(Slot& s, std::size_t seq, StopReason reason) {
  send_deltas(*s.job.sink, s.splitter->finish());
  std::optional<std::string> stop = s.splitter->stopped();
  if (stop) reason = StopReason::stop_sequence;
  s.job.sink->finish(reason, std::move(stop));
  release(s, seq);
}

void LlamaEngine::Impl::step(llama_batch& batch) {
  // Build one batch: each generating sequence's last token, then prompt chunks.
  batch.n_tokens = 0;
  const int capacity = static_cast<int>(llama_n_batch(ctx));
  auto add = [&](llama_token tok, llama_pos pos, std::size_t seq, bool logits) {
    const int i = batch.n_tokens++;
    batch.token[i] = tok;
    batch.pos[i] = pos;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = static_cast<llama_seq_id>(seq);
    batch.logits[i] = logits ? 1 : 0;
    return i;
  };
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Slot& s = slots[i];
    s.logits_index = -1;
    if (s.active && s.prompted == s.prompt.size() && batch.n_tokens < capacity) {
      s.logits_index = add(s.last, s.n_past++, i, true);
    }
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Slot& s = slots[i];
    while (s.active && s.prompted < s.prompt.size() && batch.n_tokens < capacity) {
      const bool last = s.prompted + 1 == s.prompt.size();
      const int idx = add(s.prompt[s.prompted++], s.n_past++, i, last);
      if (last) s.logits_index = idx;
    }
  }
  if (batch.n_tokens == 0) return;
  const int32_t rc = llama_decode(ctx, batch);
  if (rc != 0) {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (!slots[i].active) continue;
      slots[i].job.sink->fail(engine_error("llama_decode failed with code " + std::to_string(rc)));
      release(slots[i], i);
    }
    return;
  }
  const auto per_seq = static_cast<llama_pos>(std::max(64, opts.context));
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Slot& s = slots[i];
    if (!s.active || s.logits_index < 0) continue;
    if (s.job.run->cancelled() || s.job.sink->stopped()) {
      release(s, i);
      continue;
    }
    const llama_token tok = s.argmax ? top_logit(s.logits_index) : llama_sampler_sample(s.sampler, ctx, s.logits_index);
    if (llama_vocab_is_eog(vocab, tok)) {
      finish(s, i, StopReason::end_turn);
      continue;
    }
    char buf[256];
    int32_t n = llama_token_to_piece(vocab, tok, buf, sizeof buf, 0, false);
    std::string piece;
    if (n < 0) {
      piece.resize(static_cast<std::size_t>(-n));
      n = llama_token_to_piece(vocab, tok, piece.data(), -n, 0, false);
      piece.resize(static_cast<std::size_t>(std::max(0, n)));
    } else {
      piece.assign(buf, static_cast<std::size_t>(n));
    }
    s.job.sink->output_tokens(++s.produced);
    send_deltas(*s.job.sink, s.splitter->feed(piece));
    if (s.splitter->stopped()) {
      finish(s, i, StopReason::stop_sequence);
    } else if (s.produced >= s.max_tokens || s.n_past + 1 >= per_seq) {
      finish(s, i, StopReason::max_tokens);
    } else {
      s.last = tok;
    }
  }
}

void LlamaEngine::Impl::run() {
  const bool ok = load();
  {
    std::lock_guard lk(q->mu);
    loaded = true;
  }
  loaded_cv.notify_all();
  std::size_t last_waiting = 0;
  llama_batch batch = llama_batch_init(ok ? static_cast<int32_t>(llama_n_batch(ctx)) : 1, 0, 1);
  for (;;) {
    std::vector<std::pair<std::size_t, Pending>> admitted;
    std::vector<Pending> failed;
    {
      std::unique_lock lk(q->mu);
      auto busy = [&] {
        for (const auto& s : slots) {
          if (s.active) return true;
        }
        return false;
      };
      q->cv.wait(lk, [&] { return q->stop || !waiting.empty() || busy(); });
      if (q->stop) break;
      if (!ok) {
        failed.assign(std::make_move_iterator(waiting.begin()), std::make_move_iterator(waiting.end()));
        waiting.clear();
      } else {
        for (std::size_t i = 0; i < slots.size() && !waiting.empty(); ++i) {
          if (slots[i].active) continue;
          admitted.emplace_back(i, std::move(waiting.front()));
          waiting.pop_front();
        }
      }
      std::erase_if(waiting, [](const Pending& p) { return p.run->cancelled(); });
      if (!admitted.empty() || waiting.size() != last_waiting) {
        int position = 0;
        for (const auto& p : waiting) p.sink->queued(++position);
        last_waiting = waiting.size();
      }
    }
    for (auto& p : failed) p.sink->fail(*load_error);
    for (auto& [i, p] : admitted) {
      if (p.run->cancelled() || p.sink->stopped()) continue;
      slots[i].job = std::move(p);
      admit(slots[i], i);
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].active && (slots[i].job.run->cancelled() || slots[i].job.sink->stopped())) release(slots[i], i);
    }
    if (ok) step(batch);
  }
  llama_batch_free(batch);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].active) {
      slots[i].job.sink->fail(engine_error("the engine stopped"));
      release(slots[i], i);
    }
  }
  if (ctx) llama_free(ctx);
  templates.reset();  // before the model it was made from
  if (model) llama_model_free(model);
}

LlamaEngine::LlamaEngine(LlamaOptions opts) : impl_(std::make_shared<Impl>(std::move(opts))) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

LlamaEngine::~LlamaEngine() {
  {
    std::lock_guard lk(impl_->q->mu);
    impl_->q->stop = true;
  }
  impl_->q->cv.notify_all();
  impl_->thread.join();
}

std::shared_ptr<EngineRun> LlamaEngine::start(std::shared_ptr<const ChatRequest> req,
                                              std::shared_ptr<EngineSink> sink) {
  auto run = std::make_shared<LlamaRun>(impl_->q);
  {
    std::lock_guard lk(impl_->q->mu);
    impl_->waiting.push_back(Pending{std::move(req), std::move(sink), run});
  }
  impl_->q->cv.notify_all();
  return run;
}

Status LlamaEngine::check_output_format(const OutputFormat& format) const {
  auto grammar = format_grammar(format);
  if (!grammar) return grammar.error();
  return Ok{};
}

std::optional<std::string> LlamaEngine::unready_reason() const {
  std::lock_guard lk(impl_->q->mu);
  if (!impl_->loaded) return std::string("loading the model");
  if (impl_->load_error) return impl_->load_error->explanation;
  return std::nullopt;
}

std::optional<Error> LlamaEngine::wait_loaded() const {
  std::unique_lock lk(impl_->q->mu);
  impl_->loaded_cv.wait(lk, [&] { return impl_->loaded; });
  return impl_->load_error;
}

Result<std::int64_t> LlamaEngine::count_tokens(const ChatRequest& req) {
  {
    // Called on a network thread: never wait for a model that is still loading.
    std::lock_guard lk(impl_->q->mu);
    if (!impl_->loaded) return make_error(Errc::overloaded, "the model is still loading; try again shortly");
    if (impl_->load_error) return *impl_->load_error;
  }
  auto tokens = impl_->prompt_tokens(req);
  if (!tokens) return tokens.error();
  return static_cast<std::int64_t>(tokens->size());
}

}  // namespace spool
