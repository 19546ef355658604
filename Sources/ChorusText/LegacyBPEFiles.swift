import Foundation

/// Older exports ship `vocab.json` + `merges.txt` instead of `tokenizer.json`. This writes the
/// tokenizer.json that Hugging Face's converters would make from them (CLIP's or GPT-2's pipeline),
/// so one reader serves both layouts.
enum LegacyBPEFiles {
    static func tokenizerJSON(vocabulary: Data, merges text: String, clip: Bool) throws -> Data {
        guard let vocab = try JSONSerialization.jsonObject(with: vocabulary) as? [String: Int] else {
            throw TokenizerError("vocab.json is not a JSON object of token → id")
        }
        let merges = text.split(separator: "\n", omittingEmptySubsequences: true)
            .filter { !$0.hasPrefix("#version") }
            .map(String.init)
        var json: [String: Any] = [
            "model": ["type": "BPE", "vocab": vocab, "merges": merges, "end_of_word_suffix": clip ? "</w>" : "",
                      "unk_token": clip ? "<|endoftext|>" : NSNull()],
            "decoder": ["type": "ByteLevel"],
        ]
        if clip {
            let start = vocab["<|startoftext|>"], end = vocab["<|endoftext|>"]
            guard let start, let end else { throw TokenizerError("a CLIP vocab.json needs <|startoftext|> and <|endoftext|>") }
            json["added_tokens"] = [["id": start, "content": "<|startoftext|>", "special": true],
                                    ["id": end, "content": "<|endoftext|>", "special": true]]
            json["normalizer"] = ["type": "Sequence", "normalizers": [
                ["type": "NFC"], ["type": "Replace", "pattern": ["Regex": "\\s+"], "content": " "], ["type": "Lowercase"]]]
            json["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#],
                 "behavior": "Removed", "invert": true],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]]
            json["post_processor"] = ["type": "RobertaProcessing", "cls": ["<|startoftext|>", start], "sep": ["<|endoftext|>", end]]
        } else {
            json["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true]
        }
        return try JSONSerialization.data(withJSONObject: json)
    }
}
