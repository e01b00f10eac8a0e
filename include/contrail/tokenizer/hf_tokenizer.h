// Hugging Face tokenizer files -> VocabData, so that contrail::Tokenizer encodes like the
// reference implementations (HF `tokenizers`, and llama.cpp on the GGUF conversion of the same
// directory).
//
// Every loader validates all sizes, offsets, ids and JSON types before use and throws FormatError
// naming the file, the JSON path or byte offset, the offending value and the limit. Features the
// engine cannot reproduce (other model types, normalizers or pre-tokenizers) are a FormatError,
// never a silently different tokenization. The result always passes VocabData::validate.
#pragma once
#include <string>

#include "contrail/tokenizer/vocab.h"

namespace contrail {

// HF `tokenizers` JSON (tokenizer.json) with a BPE model.
//  * Byte-level (a ByteLevel pre-tokenizer, alone or in a Sequence with Split/Digits; GPT-2,
//    Llama 3, Qwen2): kind BytePair, model "gpt2", pre "". pre_patterns come from the file: each
//    Split(Regex|String, behavior "Isolated", invert false) in order, Digits as \p{N} / \p{N}+,
//    and ByteLevel with use_regex (default true) appends GPT-2's pattern. add_space_prefix false.
//  * SentencePiece-style (Metaspace pre-tokenizer, or a Replace " " -> U+2581 normalizer; Llama 2,
//    Mistral, Gemma): kind SentencePiece, model "llama", pre "default", pieces merged by the
//    file's merge ranks. add_space_prefix from Metaspace's prepend_scheme ("first"/"always" ->
//    true, "never" -> false; legacy add_prefix_space) or a Prepend(U+2581) normalizer.
//    "<0xHH>" pieces are TokenType::Byte. byte_fallback from the model.
//  Normalizers: null, NFC (-> normalize_nfc), Replace(" " -> U+2581), Prepend(U+2581), Sequence
//  of those. merges in both the "a b" and the ["a", "b"] form; every merge must name two tokens
//  whose concatenation is a token. ignore_merges from the model. added_tokens: special ->
//  Control, else UserDefined (content kept verbatim), lstrip/rstrip -> lstrip_ids/rstrip_ids;
//  ids may extend beyond the model vocab, holes become "[PAD<id>]" Unused tokens (at most as
//  many holes as listed tokens, plus 1024). Added tokens with single_word -> FormatError. unk_id from model.unk_token. post_processor TemplateProcessing: one
//  special token before $A -> add_bos + bos_id, one after -> add_eos + eos_id; no template ->
//  add_bos = add_eos = false. scores are left empty (the merges carry the order).
VocabData load_hf_tokenizer_json(const std::string& path);

// SentencePiece ModelProto (tokenizer.model), read with a bounds-checked protobuf wire-format
// reader. Only model_type BPE is supported (unigram/word/char -> FormatError). Piece types map
// like llama.cpp's converter: UNKNOWN -> Unknown, CONTROL -> Control, UNUSED -> Unused, BYTE ->
// Byte, NORMAL and USER_DEFINED -> Normal. scores = piece scores, no merges (merged by score).
// trainer_spec: byte_fallback, unk/bos/eos/pad ids (-1 = none, else must be a piece).
// normalizer_spec: add_dummy_prefix ->
// add_space_prefix. Like llama.cpp's and HF's converters, precompiled_charsmap and
// remove_extra_whitespaces are not applied; treat_whitespace_as_suffix -> FormatError.
// add_bos = (bos_id set), add_eos = false (LlamaTokenizer / llama.cpp defaults).
VocabData load_sentencepiece_model(const std::string& path);

// Llama 3's tiktoken-format tokenizer.model: lines "<base64 token bytes> <rank>", ranks 0..n-1
// in order. Byte-level BPE with Meta's Llama 3 pattern (pre "llama-bpe"), merges rebuilt from
// the ranks as HF's TikTokenConverter does (for each token in rank order, every split into two
// tokens, by the parts' ranks; equals Meta's tokenizer.json and llama.cpp's GGUF merges, and makes
// rank-ordered BPE equal to tiktoken's), ignore_merges, and Meta's
// 256 special tokens (<|begin_of_text|> = n, ...) as Control; bos <|begin_of_text|>, eos
// <|end_of_text|>, eot <|eot_id|>, add_bos.
VocabData load_tiktoken_model(const std::string& path);

// A Hugging Face model directory. Base vocabulary: tokenizer.json if present, else
// tokenizer.model (SentencePiece, or tiktoken text detected by its content). Then, in order:
//  * added_tokens.json (tokenizer.model only): {content: id} -> UserDefined, score -1000.
//  * tokenizer_config.json: added_tokens_decoder (tokenizer.model: special or llama.cpp's
//    "looks special" -> Control, else UserDefined with U+2581 -> ' ', score -1000, as llama.cpp's
//    converter; tokenizer.json: only ids it does not already list as added tokens, content
//    verbatim, as transformers), lstrip/rstrip; add_bos_token / add_eos_token; bos/eos/unk/pad
//    token (string, AddedToken object or null) -> id of the token with that text;
//    clean_up_tokenization_spaces; add_prefix_space (SentencePiece only); chat_template (a
//    string, or a list of {name, template} -> "default"), else chat_template.jinja.
//  * special_tokens_map.json: bos/eos/unk/pad token, overriding tokenizer_config.json.
//  * config.json: vocab_size > token count -> "[PAD<id>]" Unused tokens (score -1000 when the
//    vocab has scores), as llama.cpp's converter pads to the embedding size; bos/eos/pad
//    _token_id fill ids still unset.
//  * generation_config.json: eos_token_id (int or list): the first becomes eos_id if still
//    unset; every listed id other than eos_id goes to VocabData::eog_ids. bos/pad fill unset ids.
// Missing optional files are skipped. Errors name the file, the JSON path and the value.
VocabData load_hf_tokenizer(const std::string& dir);

}  // namespace contrail
