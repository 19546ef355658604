/// A token added on top of the model's vocabulary (tokenizer.json `added_tokens`): special tokens such
/// as "<|endoftext|>" and extra ones such as Whisper's timestamps. Added tokens are cut out of the text
/// before anything else sees it.
struct AddedToken {
    let id: Int
    let content: String
    let isSpecial: Bool
    /// Whether the token is looked for in the normalized text rather than the raw input.
    let isNormalized: Bool
    /// Take the whitespace on this side along with the token.
    let stripsLeft: Bool
    let stripsRight: Bool
    /// Match only where no word character touches the token.
    let isSingleWord: Bool

    init(id: Int, content: String, isSpecial: Bool, isNormalized: Bool = false,
         stripsLeft: Bool = false, stripsRight: Bool = false, isSingleWord: Bool = false) {
        self.id = id
        self.content = content
        self.isSpecial = isSpecial
        self.isNormalized = isNormalized
        self.stripsLeft = stripsLeft
        self.stripsRight = stripsRight
        self.isSingleWord = isSingleWord
    }

    /// One entry of tokenizer.json's `added_tokens`, with serde's defaults.
    init?(_ json: JSON) {
        guard let id = json["id"].int else { return nil }
        self.init(id: id, json: json)
    }

    /// The same fields as tokenizer_config.json's `added_tokens_decoder` writes them, keyed by id.
    init?(id: Int, json: JSON) {
        guard let content = json["content"].string else { return nil }
        let isSpecial = json["special"].bool ?? false
        self.init(id: id, content: content, isSpecial: isSpecial,
                  isNormalized: json["normalized"].bool ?? !isSpecial,
                  stripsLeft: json["lstrip"].bool ?? false, stripsRight: json["rstrip"].bool ?? false,
                  isSingleWord: json["single_word"].bool ?? false)
    }
}
