import Foundation

/// A tokenizer assembled from the parts tokenizer.json describes, run in tokenizers' order:
/// added tokens are cut out, the rest is normalized, pre-tokenized into words, each word is BPE-encoded,
/// and the post-processor adds the special tokens. Decoding maps ids to tokens and runs the decoder.
public struct PipelineTokenizer: Tokenizer, SpecialTokenParsing {
    let addedVocabulary: AddedVocabulary
    /// The added tokens that are not special: what `parseSpecial: false` still cuts out (as llama.cpp
    /// does with user-defined tokens); nil when every added token is kept.
    var literalAddedVocabulary: AddedVocabulary?
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: BPEModel
    var postProcessor: PostProcessor?
    let decoder: TokenDecoder?

    init(addedVocabulary: AddedVocabulary, normalizer: Normalizer?, preTokenizer: PreTokenizer?,
         model: BPEModel, postProcessor: PostProcessor?, decoder: TokenDecoder?) {
        self.addedVocabulary = addedVocabulary
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
    }

    /// The tokenizer a tokenizer.json file describes.
    public init(tokenizerJSON url: URL) throws {
        try self.init(json: try JSON.load(url), path: url.path)
    }

    /// The tokenizer a tokenizer.json-shaped object describes (a GGUF file's vocabulary and merges put in
    /// tokenizers' terms); `origin` names it in errors.
    public init(tokenizerJSONObject object: [String: Any], origin: String) throws {
        try self.init(json: JSON(object), path: origin)
    }

    init(json: JSON, path: String) throws {
        let normalizer = try Normalizers.make(json["normalizer"])
        let addedTokens = (json["added_tokens"].array ?? []).compactMap(AddedToken.init)
        self.init(addedVocabulary: AddedVocabulary(addedTokens, normalizer: normalizer),
                  normalizer: normalizer,
                  preTokenizer: try PreTokenizers.make(json["pre_tokenizer"]),
                  model: try BPEModel(json: json["model"], path: path),
                  postProcessor: try PostProcessors.make(json["post_processor"]),
                  decoder: try TokenDecoders.make(json["decoder"]))
        literalAddedVocabulary = AddedVocabulary(addedTokens.filter { !$0.isSpecial }, normalizer: normalizer)
    }

    public func encode(_ text: String) -> [Int] {
        encode(text, addSpecialTokens: true)
    }

    /// `addSpecialTokens: false` leaves out what the post-processor adds (BOS, Whisper's prefix…);
    /// special tokens written in the text are still recognised.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        encode(text, addSpecialTokens: addSpecialTokens, parseSpecial: true)
    }

    /// llama.cpp's `parse_special`: with false, special tokens written in the text are read as text.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        encode(text, addSpecialTokens: false, parseSpecial: parseSpecial)
    }

    func encode(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int] {
        let addedVocabulary = parseSpecial ? self.addedVocabulary : literalAddedVocabulary ?? self.addedVocabulary
        var ids: [Int] = []
        for segment in addedVocabulary.splitRaw(text) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(var piece):
                piece.text = normalizer?.normalize(piece.text) ?? piece.text
                for inner in addedVocabulary.splitNormalized(piece) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let normalized): ids.append(contentsOf: tokenizeWords(of: normalized))
                    }
                }
            }
        }
        guard addSpecialTokens, let postProcessor else { return ids }
        return postProcessor.process(ids)
    }

    private func tokenizeWords(of piece: TextPiece) -> [Int] {
        let words = preTokenizer?.split(piece) ?? [piece]
        return words.filter { !$0.text.isEmpty }.flatMap { model.tokenize($0.text) }
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        let tokens = ids.compactMap { id -> String? in
            guard let token = addedVocabulary.spelling(id) ?? model.vocabulary.token(id) else { return nil }
            return skipSpecialTokens && addedVocabulary.isSpecial(token) ? nil : token
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens).joined()
    }

    public func tokenID(_ token: String) -> Int? {
        addedVocabulary.id(token) ?? model.vocabulary.id(token)
    }

    public func token(_ id: Int) -> String? {
        addedVocabulary.spelling(id) ?? model.vocabulary.token(id)
    }

    /// Whether `id` is an added token marked special (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecialToken(_ id: Int) -> Bool {
        token(id).map(addedVocabulary.isSpecial) ?? false
    }
}
