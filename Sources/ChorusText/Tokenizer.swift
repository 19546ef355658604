/// Text ⇄ token ids: the one interface the Chorus models see, whatever tokenizer a checkpoint ships.
public protocol Tokenizer: Sendable {
    /// The ids the reference tokenizer gives for `text`, with the tokenizer's own special tokens
    /// (CLIP's start/end of text, Whisper's prefix, Llama's BOS, VITS's blanks).
    func encode(_ text: String) -> [Int]

    /// The text of `ids`; `skipSpecialTokens` drops the tokens the tokenizer marks as special.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String

    /// The id of one vocabulary entry, written as the vocabulary writes it ("<|en|>", "<image>", "a").
    func tokenID(_ token: String) -> Int?

    /// The vocabulary entry of `id`.
    func token(_ id: Int) -> String?
}

/// Tokenizers that can read special tokens written in the text either as those tokens or as plain text
/// (llama.cpp's `parse_special`); neither way adds BOS or other special tokens of its own.
public protocol SpecialTokenParsing: Tokenizer {
    func encode(_ text: String, parseSpecial: Bool) -> [Int]
}
