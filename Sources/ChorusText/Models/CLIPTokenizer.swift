import Foundation

/// CLIP's BPE (transformers' `CLIPTokenizer`): NFC, whitespace collapsed, lowercase, CLIP's word regex,
/// byte-level BPE whose word-final symbols carry "</w>", and <|startoftext|> … <|endoftext|> around it.
public struct CLIPTokenizer: Tokenizer {
    public let pipeline: PipelineTokenizer

    /// Wraps a pipeline read from tokenizer.json.
    public init(pipeline: PipelineTokenizer) {
        self.pipeline = pipeline
    }

    /// Builds the tokenizer from vocab.json and merges.txt the way transformers' `CLIPTokenizer.__init__`
    /// assembles it, for folders (older Stable Diffusion ones) that ship no tokenizer.json.
    public init(vocabAndMergesIn folder: URL) throws {
        let config = try TokenizerConfig(folder: folder)
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let vocabulary = try Vocabulary(json: JSON.load(vocabURL), path: vocabURL.path)
        let merges = try MergesFile.pairs(at: folder.appendingPathComponent("merges.txt"))

        let bos = config.specialToken("bos_token") ?? "<|startoftext|>"
        let eos = config.specialToken("eos_token") ?? "<|endoftext|>"
        let unknown = config.specialToken("unk_token") ?? "<|endoftext|>"
        let pad = config.specialToken("pad_token") ?? "<|endoftext|>"
        guard let bosID = vocabulary.id(bos), let eosID = vocabulary.id(eos) else {
            throw TokenizerError.invalidFile(path: vocabURL.path, reason: "\(bos) or \(eos) is not in the vocabulary")
        }
        var options = BPEModel.Options()
        options.unknownToken = unknown
        options.continuingSubwordPrefix = ""
        options.endOfWordSuffix = "</w>"
        let model = try BPEModel(vocabulary: vocabulary, merges: merges, options: options, path: vocabURL.path)

        let specials = Set([bos, eos, unknown, pad]).compactMap { token in
            vocabulary.id(token).map { AddedToken(id: $0, content: token, isSpecial: true) }
        }
        let normalizer = NormalizerSequence(steps: [
            UnicodeFormNormalizer(form: .nfc),
            ReplaceNormalizer(pattern: WhitespaceRunPattern(), content: " "),
            LowercaseNormalizer(),
        ])
        let preTokenizer = PreTokenizerSequence(steps: [
            SplitPreTokenizer(pattern: CLIPPattern(), behavior: .removed, invert: true),
            ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
        ])
        self.init(pipeline: PipelineTokenizer(
            addedVocabulary: AddedVocabulary(specials, normalizer: normalizer),
            normalizer: normalizer, preTokenizer: preTokenizer, model: model,
            postProcessor: TemplateProcessor(single: [.special(ids: [bosID]), .sequence, .special(ids: [eosID])]),
            decoder: ByteLevelDecoder()))
    }

    public func encode(_ text: String) -> [Int] {
        pipeline.encode(text)
    }

    /// The byte-level decoder leaves "</w>" in the text; transformers turns each into a space and
    /// strips the ends, so words come back separated by single spaces ("a photo , too").
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        let text = pipeline.decode(ids, skipSpecialTokens: skipSpecialTokens)
        guard let suffix = pipeline.model.options.endOfWordSuffix, !suffix.isEmpty else { return text }
        let spaced = LiteralPattern(suffix).replacingMatches(in: text, with: " ")
        return String(scalars: Array(spaced.unicodeScalars).trimmed(where: \.isPythonWhitespace))
    }

    public func tokenID(_ token: String) -> Int? { pipeline.tokenID(token) }

    public func token(_ id: Int) -> String? { pipeline.token(id) }
}
