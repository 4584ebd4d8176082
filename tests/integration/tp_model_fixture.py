"""A small random-weight Llama folder for tensor-parallel tests, written with
the standard library only (CI has plain python3): attention and o_proj bias,
one KV head (replicated at tp 2 and 4), tied embeddings and a vocabulary of
515 rows (not divisible by 2 or 4, so the vocab-parallel split pads), with
stories260K's tokenizer (512 tokens) beside it. Deterministic for a seed."""
import json
import os
import random
import struct

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FF, LAYERS, VOCAB = 32, 4, 1, 8, 64, 2, 515


def _tensors(seed):
    rng = random.Random(seed)

    def t(*shape, scale=0.2):
        n = 1
        for s in shape:
            n *= s
        return list(shape), [rng.uniform(-scale, scale) for _ in range(n)]

    out = {"model.embed_tokens.weight": t(VOCAB, HIDDEN, scale=1.0), "model.norm.weight": t(HIDDEN)}
    out["model.norm.weight"][1][:] = [1.0 + v for v in out["model.norm.weight"][1]]
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = ([HIDDEN], [1.0 + rng.uniform(-0.1, 0.1) for _ in range(HIDDEN)])
        out[p + "post_attention_layernorm.weight"] = ([HIDDEN], [1.0 + rng.uniform(-0.1, 0.1) for _ in range(HIDDEN)])
        out[p + "self_attn.q_proj.weight"] = t(q, HIDDEN)
        out[p + "self_attn.k_proj.weight"] = t(kv, HIDDEN)
        out[p + "self_attn.v_proj.weight"] = t(kv, HIDDEN)
        out[p + "self_attn.o_proj.weight"] = t(HIDDEN, q)
        out[p + "self_attn.q_proj.bias"] = t(q)
        out[p + "self_attn.k_proj.bias"] = t(kv)
        out[p + "self_attn.v_proj.bias"] = t(kv)
        out[p + "self_attn.o_proj.bias"] = t(HIDDEN)
        out[p + "mlp.gate_proj.weight"] = t(FF, HIDDEN)
        out[p + "mlp.up_proj.weight"] = t(FF, HIDDEN)
        out[p + "mlp.down_proj.weight"] = t(HIDDEN, FF)
    return out


def write_model(dest, shared_dir, seed=9):
    os.makedirs(dest, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": FF, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "vocab_size": VOCAB, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 512, "rope_theta": 10000.0, "attention_bias": True,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(config, f)
    header, blobs, offset = {}, [], 0
    for name, (shape, values) in sorted(_tensors(seed).items()):
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(os.path.join(dest, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    stories = os.path.join(shared_dir, "assets", "stories260K")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(stories, name)
        if os.path.exists(src):
            os.symlink(src, os.path.join(dest, name))
    return dest
