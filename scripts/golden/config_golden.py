#!/usr/bin/env python3
"""Writes config.json files made by Hugging Face transformers for every architecture llmopt parses, plus
what transformers itself derives from them (head_dim, KV heads, rope, MLA dims), to testdata/configs/.
tests/model/test_config.cpp parses each file with llmopt and compares against expected.json.
Also writes a legacy (transformers 4.x style) Llama config with rope_theta + rope_scaling by hand."""
import json, os, sys
import transformers as T

out = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "configs")
os.makedirs(out, exist_ok=True)

small = dict(vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=8,
             max_position_embeddings=256)
configs = {
    "llama3_rope": T.LlamaConfig(**small, num_key_value_heads=2, rope_theta=500000.0, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64}, tie_word_embeddings=True, bos_token_id=1, eos_token_id=[2, 3]),
    "llama_linear": T.LlamaConfig(**small, num_key_value_heads=8, rope_scaling={"rope_type": "linear", "factor": 2.0},
                                  attention_bias=True),
    "mistral": T.MistralConfig(**small, num_key_value_heads=4, sliding_window=128),
    "qwen2": T.Qwen2Config(**small, num_key_value_heads=4, rope_theta=1000000.0),
    "qwen3": T.Qwen3Config(**small, num_key_value_heads=4, head_dim=16),
    "deepseek_v2": T.DeepseekV2Config(**small, num_key_value_heads=8, q_lora_rank=None, kv_lora_rank=32,
                                      qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, first_k_dense_replace=2),
    "deepseek_v3": T.DeepseekV3Config(**small, num_key_value_heads=8, q_lora_rank=48, kv_lora_rank=32,
                                      qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, first_k_dense_replace=2),
    "deepseek_v3_moe": T.DeepseekV3Config(**small, num_key_value_heads=8, q_lora_rank=48, kv_lora_rank=32,
                                          qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, first_k_dense_replace=1),
}

expected = {}
for name, c in configs.items():
    c.save_pretrained(os.path.join(out, name))
    os.rename(os.path.join(out, name, "config.json"), os.path.join(out, name + ".json"))
    os.rmdir(os.path.join(out, name))
    rp = getattr(c, "rope_parameters", None) or {}
    e = {"model_type": c.model_type, "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
         "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
         "vocab_size": c.vocab_size, "rope_theta": rp.get("rope_theta", getattr(c, "rope_theta", None)),
         "rope_type": rp.get("rope_type", "default"), "rope_factor": rp.get("factor", 1.0),
         "tie_word_embeddings": c.tie_word_embeddings, "rms_norm_eps": c.rms_norm_eps}
    if c.model_type.startswith("deepseek"):
        e.update(kv_lora_rank=c.kv_lora_rank, qk_rope_head_dim=c.qk_rope_head_dim, v_head_dim=c.v_head_dim,
                 q_lora_rank=c.q_lora_rank or 0, qk_nope_head_dim=c.qk_nope_head_dim,
                 moe_layers=sum(1 for l in range(c.num_hidden_layers)
                                if c.n_routed_experts and l >= c.first_k_dense_replace))
    else:
        # the head size transformers' attention actually uses
        e["head_dim"] = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    # the biases transformers' modules create
    e["attention_bias"] = bool(getattr(c, "attention_bias", False)) or c.model_type == "qwen2"
    expected[name] = e

legacy = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], **small, "num_key_value_heads": 4,
          "rope_theta": 250000.0, "rope_scaling": {"type": "linear", "factor": 4.0}, "torch_dtype": "bfloat16",
          "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}
with open(os.path.join(out, "llama_legacy.json"), "w") as f:
    json.dump(legacy, f, indent=2)
c = T.LlamaConfig.from_pretrained(os.path.join(out, "llama_legacy.json"))
rp = c.rope_parameters
expected["llama_legacy"] = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8,
                            "num_key_value_heads": c.num_key_value_heads, "vocab_size": 512,
                            "rope_theta": rp["rope_theta"], "rope_type": rp["rope_type"], "rope_factor": rp["factor"],
                            "tie_word_embeddings": c.tie_word_embeddings, "rms_norm_eps": c.rms_norm_eps,
                            "head_dim": c.head_dim, "attention_bias": False}
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"transformers_version": T.__version__, "configs": expected}, f, indent=2, sort_keys=True)
print("wrote", len(expected), "configs to", out, file=sys.stderr)
