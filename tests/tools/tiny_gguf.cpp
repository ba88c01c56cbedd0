#include "tiny_gguf.hpp"

#include <ggml.h>
#include <gguf.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace spool::testing {

const char* const kChatmlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

namespace {

struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufFree>;
using GgmlPtr = std::unique_ptr<ggml_context, GgmlFree>;

// FNV-1a: a per-tensor seed that does not depend on the standard library's std::hash.
std::uint64_t fnv1a(const char* s) {
  std::uint64_t h = 14695981039346656037ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

struct TensorSpec {
  std::string name;
  std::int64_t ne0, ne1;  // ne1 == 0: a vector
  bool norm;              // RMS-norm weight: F32, values near 1
};

}  // namespace

void write_tiny_gguf(const TinyGgufOptions& o) {
  if (o.n_head == 0 || o.n_head_kv == 0 || o.n_embd % o.n_head != 0 || o.n_head % o.n_head_kv != 0) {
    throw std::runtime_error("tiny gguf: n_embd must divide by n_head, n_head by n_head_kv");
  }
  gguf_init_params vp{/*no_alloc=*/true, /*ctx=*/nullptr};
  GgufPtr vocab(gguf_init_from_file(o.vocab_path.c_str(), vp));
  if (!vocab) throw std::runtime_error("tiny gguf: cannot read vocab GGUF " + o.vocab_path);
  const std::int64_t tokens_id = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
  if (tokens_id < 0) throw std::runtime_error("tiny gguf: " + o.vocab_path + " has no tokenizer.ggml.tokens");
  const auto n_vocab = static_cast<std::int64_t>(gguf_get_arr_n(vocab.get(), tokens_id));

  GgufPtr out(gguf_init_empty());
  // Every tokenizer.* key of the vocab file (tokens, scores, types, merges, special ids, pre, template...).
  gguf_set_kv(out.get(), vocab.get());
  std::vector<std::string> drop;
  for (std::int64_t i = 0; i < gguf_get_n_kv(out.get()); ++i) {
    const std::string key = gguf_get_key(out.get(), i);
    if (key.rfind("tokenizer.", 0) != 0) drop.push_back(key);
  }
  for (const auto& key : drop) gguf_remove_key(out.get(), key.c_str());
  // ggml-vocab-phi-3.gguf types "</s>" (its EOS) as user-defined, as Phi-3 does; llama.cpp then warns
  // "control-looking token ... will be overridden" on every load. Make it a control token here.
  const std::int64_t types_id = gguf_find_key(out.get(), "tokenizer.ggml.token_type");
  if (types_id >= 0 && gguf_get_arr_type(out.get(), types_id) == GGUF_TYPE_INT32 &&
      gguf_get_arr_n(out.get(), types_id) == static_cast<size_t>(n_vocab)) {
    const std::int64_t out_tokens_id = gguf_find_key(out.get(), "tokenizer.ggml.tokens");
    const auto* src = static_cast<const std::int32_t*>(gguf_get_arr_data(out.get(), types_id));
    std::vector<std::int32_t> types(src, src + n_vocab);
    constexpr std::int32_t kControl = 3;  // LLAMA_TOKEN_TYPE_CONTROL
    for (std::int64_t i = 0; i < n_vocab; ++i) {
      if (types[i] != kControl && std::strcmp(gguf_get_arr_str(out.get(), out_tokens_id, i), "</s>") == 0) {
        types[i] = kControl;
      }
    }
    gguf_set_arr_data(out.get(), "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
  }
  if (gguf_find_key(out.get(), "tokenizer.chat_template") < 0) {
    gguf_set_val_str(out.get(), "tokenizer.chat_template", kChatmlTemplate);
  }

  const std::uint32_t head_dim = o.n_embd / o.n_head;
  gguf_set_val_str(out.get(), "general.architecture", "llama");
  gguf_set_val_str(out.get(), "general.name", "spool tiny random llama");
  gguf_set_val_u32(out.get(), "general.file_type", 1);  // LLAMA_FTYPE_MOSTLY_F16
  gguf_set_val_u32(out.get(), "llama.vocab_size", static_cast<std::uint32_t>(n_vocab));
  gguf_set_val_u32(out.get(), "llama.context_length", o.n_ctx_train);
  gguf_set_val_u32(out.get(), "llama.embedding_length", o.n_embd);
  gguf_set_val_u32(out.get(), "llama.block_count", o.n_layer);
  gguf_set_val_u32(out.get(), "llama.feed_forward_length", o.n_ff);
  gguf_set_val_u32(out.get(), "llama.attention.head_count", o.n_head);
  gguf_set_val_u32(out.get(), "llama.attention.head_count_kv", o.n_head_kv);
  gguf_set_val_f32(out.get(), "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  gguf_set_val_u32(out.get(), "llama.rope.dimension_count", head_dim);
  gguf_set_val_f32(out.get(), "llama.rope.freq_base", 10000.0f);

  // The tensors llm_arch LLAMA loads (src/models/llama.cpp: load_arch_tensors), ggml order {ne0 = in, ne1 = out}.
  const std::int64_t E = o.n_embd, F = o.n_ff, KV = std::int64_t{head_dim} * o.n_head_kv;
  std::vector<TensorSpec> specs = {
      {"token_embd.weight", E, n_vocab, false},
      {"output_norm.weight", E, 0, true},
      {"output.weight", E, n_vocab, false},
  };
  for (std::uint32_t il = 0; il < o.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    specs.push_back({p + "attn_norm.weight", E, 0, true});
    specs.push_back({p + "attn_q.weight", E, E, false});
    specs.push_back({p + "attn_k.weight", E, KV, false});
    specs.push_back({p + "attn_v.weight", E, KV, false});
    specs.push_back({p + "attn_output.weight", E, E, false});
    specs.push_back({p + "ffn_norm.weight", E, 0, true});
    specs.push_back({p + "ffn_gate.weight", E, F, false});
    specs.push_back({p + "ffn_up.weight", E, F, false});
    specs.push_back({p + "ffn_down.weight", F, E, false});
  }

  size_t mem = 1 << 20;
  for (const auto& s : specs) {
    mem += ggml_tensor_overhead() + static_cast<size_t>(s.ne0 * std::max<std::int64_t>(s.ne1, 1)) * 4 + 64;
  }
  ggml_init_params gp{mem, nullptr, /*no_alloc=*/false};
  GgmlPtr ctx(ggml_init(gp));
  if (!ctx) throw std::runtime_error("tiny gguf: ggml_init failed");

  for (const auto& s : specs) {
    ggml_tensor* t = s.norm ? ggml_new_tensor_1d(ctx.get(), GGML_TYPE_F32, s.ne0)
                            : ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F16, s.ne0, s.ne1);
    ggml_set_name(t, s.name.c_str());
    // Uniform with the given standard deviation, scaled by 1/sqrt(fan-in) so activations stay O(1);
    // drawn from raw 64-bit mt19937 output so that the file is the same with any standard library.
    std::mt19937_64 gen(o.seed ^ fnv1a(s.name.c_str()));
    const bool embd = s.name == "token_embd.weight";
    const double sd = s.norm ? 0.1 : (embd ? o.stdev : o.stdev / std::sqrt(static_cast<double>(s.ne0)));
    const double a = std::sqrt(3.0) * sd;
    const std::int64_t n = ggml_nelements(t);
    for (std::int64_t i = 0; i < n; ++i) {
      const double u = static_cast<double>(gen() >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
      const float v = static_cast<float>((2.0 * u - 1.0) * a + (s.norm ? 1.0 : 0.0));
      if (s.norm) {
        static_cast<float*>(t->data)[i] = v;
      } else {
        static_cast<ggml_fp16_t*>(t->data)[i] = ggml_fp32_to_fp16(v);
      }
    }
    gguf_add_tensor(out.get(), t);  // keeps t->data: ctx must live until the file is written
  }

  if (!gguf_write_to_file(out.get(), o.out_path.c_str(), /*only_meta=*/false)) {
    throw std::runtime_error("tiny gguf: cannot write " + o.out_path);
  }
}

}  // namespace spool::testing
