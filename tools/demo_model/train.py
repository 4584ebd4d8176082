#!/usr/bin/env python3
"""Trains llmctl's embedded demo model: a tiny Llama on Debian's fortunes.

The result is a normal Hugging Face model folder (config.json,
generation_config.json, model.safetensors in fp16, tokenizer.json,
tokenizer_config.json with a chat template), written to models/demo/.

    apt-get install -y fortunes
    python3 tools/demo_model/train.py --minutes 10 --out models/demo

Needs torch (CPU is fine), transformers, tokenizers, safetensors. Only this
script needs Python; llmctl reads the folder with its own C++ loader.
"""
import argparse
import glob
import json
import os
import random
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

SPECIAL = ["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
# A small, plain template: one header token per turn, each turn ends with </s>.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
QUESTIONS = ["Tell me a fortune.", "Say something wise.", "Give me a quote.", "What do you know?",
             "Tell me something funny.", "Any advice?", "Hello!", "What is the meaning of life?"]


def read_fortunes(folder):
    texts = []
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        name = os.path.basename(path)
        # .dat are indexes, .u8 duplicates; ASCII art teaches nothing useful.
        if "." in name or name in ("art", "ascii-art") or os.path.isdir(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for chunk in f.read().split("\n%\n"):
                chunk = chunk.strip()
                if 10 <= len(chunk) <= 600:
                    texts.append(chunk)
    return texts


def chat_text(question, answer):
    return f"<s><|user|>\n{question}</s>\n<|assistant|>\n{answer}</s>\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/usr/share/games/fortunes")
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    texts = read_fortunes(args.corpus)
    print(f"{len(texts)} fortunes, {sum(map(len, texts)) / 1e6:.2f} MB")

    # Byte-level BPE, GPT-2 style: every byte is representable, no <unk>.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "model_max_length": 512,
                   "tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": True,
                   "chat_template": CHAT_TEMPLATE}, f, indent=2)

    # Training stream: plain fortunes, and one in three as a chat answer so
    # the chat endpoint produces a fortune too.
    ids = []
    for t in texts:
        if random.random() < 0.33:
            ids += tok.encode(chat_text(random.choice(QUESTIONS), t), add_special_tokens=False).ids
        else:
            ids += [bos] + tok.encode(t, add_special_tokens=False).ids + [eos]
    data = torch.tensor(ids, dtype=torch.long)
    print(f"{len(ids)} training tokens")

    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=128, intermediate_size=352,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0,
                         bos_token_id=bos, eos_token_id=eos, tie_word_embeddings=False,
                         hidden_act="silu")
    model = LlamaForCausalLM(config)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    deadline = time.time() + args.minutes * 60
    step = 0
    model.train()
    while time.time() < deadline:
        starts = torch.randint(0, len(data) - args.seq_len - 1, (args.batch,))
        x = torch.stack([data[s:s + args.seq_len] for s in starts])
        frac = 1.0 - (deadline - time.time()) / (args.minutes * 60)
        for g in opt.param_groups:  # linear decay to 10% over the time budget
            g["lr"] = 3e-3 * max(0.1, 1.0 - frac)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
        step += 1

    model.eval()
    model = model.to(torch.float16)
    model.save_pretrained(args.out, safe_serialization=True)
    GenerationConfig(bos_token_id=bos, eos_token_id=eos, max_new_tokens=64).save_pretrained(args.out)
    with torch.no_grad():
        prompt = torch.tensor([tok.encode("The meaning of life is").ids])
        out = model.float().generate(prompt, max_new_tokens=24, do_sample=False)
        print("greedy sample:", tok.decode(out[0].tolist()))
    print(f"trained {step} steps; wrote {args.out}")


if __name__ == "__main__":
    main()
