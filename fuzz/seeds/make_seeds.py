#!/usr/bin/env python3
"""Writes the committed seed corpora for the fuzz targets (fuzz/seeds/<target>/).

    python3 fuzz/seeds/make_seeds.py

Plain python3, no dependencies: each seed is a small valid (or nearly valid)
input in the target's format, so libFuzzer starts from the interesting paths
instead of discovering the framing by chance.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, pad=0):
    header, blob = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(payload)]}
        blob += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(text)) + text + blob


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def message(type_, body):
    return json.dumps({"v": 1, "type": type_, "body": body}).encode()


def main():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    write("safetensors_header_fuzz", "two_tensors.safetensors",
          safetensors({"w": ("F32", [2, 2], f32), "b": ("BF16", [2], b"\x80\x3f\x00\x40")},
                      {"format": "pt"}, pad=3))
    write("safetensors_header_fuzz", "scalar_and_empty.safetensors",
          safetensors({"s": ("I64", [], struct.pack("<q", 7)), "e": ("F16", [0, 3], b"")}))
    overlapping = (b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                   b'"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}')
    write("safetensors_header_fuzz", "overlapping.safetensors",
          struct.pack("<Q", len(overlapping)) + overlapping + b"abcd")

    write("control_frame_fuzz", "request_push_reply.bin",
          frame(message("kv.get", {"id": 1, "data": {"key": "a"}})) +
          frame(message("heartbeat", {"data": {"node": "n1", "gpus": []}})) +
          frame(message("reply", {"id": 1, "data": {"ok": True}})) +
          frame(message("error", {"id": 2, "message": "no", "code": 5})))
    write("control_frame_fuzz", "bad_version.bin", frame(b'{"v": 2, "type": "x", "body": {}}'))
    write("control_frame_fuzz", "truncated.bin", frame(message("kv.put", {"id": 9, "data": "v"}))[:-3])
    write("control_frame_fuzz", "one_message.json", message("submit", {"id": 3, "data": [1, 2, 3]}))

    # SentencePiece style: the whole text is one word, cut before "\u2581"
    # (the vocabulary allows it); with byte fallback, unk and Metaspace decoding.
    sp = {
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "byte_fallback": True, "fuse_unk": True, "unk_token": "<unk>",
                  "vocab": {"<unk>": 0, "<s>": 1, "<0x48>": 2, "\u2581": 3, "H": 4, "e": 5, "l": 6, "o": 7,
                            "\u2581H": 8, "el": 9, "\u2581He": 10, "ll": 11, "\u2581\u2581": 12},
                  "merges": ["\u2581 H", "e l", "\u2581H e", "l l", "\u2581 \u2581"]},
        "added_tokens": [{"id": 1, "content": "<s>", "special": True, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False}],
    }
    write("tokenizer_json_fuzz", "sentencepiece.json", json.dumps(sp, ensure_ascii=False).encode())
    # Byte-level with Metaspace-free regex split and ignore_merges.
    bl = {
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "ignore_merges": True,
                  "vocab": {"H": 0, "e": 1, "l": 2, "o": 3, "\u0120": 4, "He": 5, "\u0120H": 6, "ll": 7},
                  "merges": [["H", "e"], ["\u0120", "H"], ["l", "l"]]},
    }
    write("tokenizer_json_fuzz", "byte_level.json", json.dumps(bl, ensure_ascii=False).encode())

    write("tokenizer_encode_fuzz", "specials.txt",
          "<|im_start|>user\nHi \u2581 there<|im_end|> <s>[INST] x [/INST]</s>".encode())
    write("tokenizer_encode_fuzz", "invalid_utf8.bin", b"caf\xc3 \xed\xa0\x80 \xf0\x9f\x98 \xff\xfe end")
    write("tokenizer_encode_fuzz", "spaces_numbers.txt", b"  12345678  \t\n\n 3.14  x" + b" " * 20)


if __name__ == "__main__":
    main()
