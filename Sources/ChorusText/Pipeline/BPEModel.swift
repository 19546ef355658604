import Foundation

/// Byte-pair encoding as tokenizers' `models::bpe::BPE` does it: a word starts as one symbol per
/// character, then the adjacent pair with the lowest merge rank is merged until no merge applies.
/// Results are cached per word, since running text repeats its words.
final class BPEModel: @unchecked Sendable {
    struct Options {
        var unknownToken: String?
        var continuingSubwordPrefix: String?
        var endOfWordSuffix: String?
        /// Consecutive unknown characters become one unknown token.
        var fusesUnknown = false
        /// Characters outside the vocabulary become their UTF-8 bytes as "<0xNN>" tokens (SentencePiece).
        var byteFallback = false
        /// A word that is itself in the vocabulary is not merged from its characters (Llama 3).
        var ignoresMerges = false
    }

    let vocabulary: Vocabulary
    let options: Options
    private let merges: MergeTable
    private let unknownID: Int?

    private let cacheLock = NSLock()
    private var cache: [[UInt8]: [Int]] = [:]
    /// Bounded so a long-running server does not grow without end; tokenizers uses the same size.
    private let cacheCapacity = 10_000

    init(vocabulary: Vocabulary, merges: [(String, String)], options: Options, path: String) throws {
        self.vocabulary = vocabulary
        self.options = options
        self.merges = try MergeTable(merges, vocabulary: vocabulary,
                                     continuingSubwordPrefix: options.continuingSubwordPrefix, path: path)
        if let unknown = options.unknownToken {
            // A named unknown token missing from the vocabulary only matters once a character needs it:
            // tokenizers then fails the whole encode, this model drops the character.
            unknownID = vocabulary.id(unknown)
        } else {
            unknownID = nil
        }
    }

    /// The BPE model of a tokenizer.json `model` entry.
    convenience init(json: JSON, path: String) throws {
        let type = json["type"].string ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError.unsupported("model type \(type) in \(path) (only BPE is implemented)")
        }
        if let dropout = json["dropout"].raw as? NSNumber, dropout.doubleValue > 0 {
            throw TokenizerError.unsupported("BPE dropout \(dropout) in \(path): it makes encoding random")
        }
        var options = Options()
        options.unknownToken = json["unk_token"].string
        options.continuingSubwordPrefix = json["continuing_subword_prefix"].string
        options.endOfWordSuffix = json["end_of_word_suffix"].string
        options.fusesUnknown = json["fuse_unk"].bool ?? false
        options.byteFallback = json["byte_fallback"].bool ?? false
        options.ignoresMerges = json["ignore_merges"].bool ?? false
        try self.init(vocabulary: try Vocabulary(json: json["vocab"], path: path),
                      merges: try MergeTable.pairs(json["merges"], path: path), options: options, path: path)
    }

    /// The ids of one pre-tokenized word.
    func tokenize(_ word: String) -> [Int] {
        let key = Array(word.utf8)
        cacheLock.lock()
        let cached = cache[key]
        cacheLock.unlock()
        if let cached { return cached }

        let ids = tokenizeUncached(word)
        cacheLock.lock()
        if cache.count >= cacheCapacity { cache.removeAll(keepingCapacity: true) }
        cache[key] = ids
        cacheLock.unlock()
        return ids
    }

    private func tokenizeUncached(_ word: String) -> [Int] {
        if options.ignoresMerges, let id = vocabulary.id(word) { return [id] }
        return merges.apply(to: initialSymbols(of: word))
    }

    /// One symbol per character, with the subword prefix on all but the first and the end-of-word
    /// suffix on the last; characters outside the vocabulary become bytes or the unknown token.
    private func initialSymbols(of word: String) -> [Int] {
        let characters = Array(word.unicodeScalars)
        var symbols: [Int] = []
        symbols.reserveCapacity(characters.count)
        var pendingUnknowns = 0
        func flushUnknowns() {
            guard let unknownID, pendingUnknowns > 0 else { return }
            symbols.append(contentsOf: repeatElement(unknownID, count: options.fusesUnknown ? 1 : pendingUnknowns))
            pendingUnknowns = 0
        }
        for (index, character) in characters.enumerated() {
            var spelling = String(character)
            if index > 0, let prefix = options.continuingSubwordPrefix { spelling = prefix + spelling }
            if index == characters.count - 1, let suffix = options.endOfWordSuffix { spelling += suffix }

            if let id = vocabulary.id(spelling) {
                flushUnknowns()
                symbols.append(id)
            } else if options.byteFallback, let byteIDs = byteFallbackIDs(spelling) {
                // tokenizers emits these ahead of unknowns still pending; kept for identical output.
                symbols.append(contentsOf: byteIDs)
            } else if unknownID != nil {
                pendingUnknowns += 1
            }
        }
        flushUnknowns()
        return symbols
    }

    private func byteFallbackIDs(_ spelling: String) -> [Int]? {
        var ids: [Int] = []
        for byte in spelling.utf8 {
            guard let id = vocabulary.id(ByteFallbackToken.spelling(of: byte)) else { return nil }
            ids.append(id)
        }
        return ids
    }
}
