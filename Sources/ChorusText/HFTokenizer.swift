import Foundation

/// A tokenizer assembled from the parts `tokenizer.json` describes (as Hugging Face tokenizers and
/// swift-transformers do): added tokens, normalizer, pre-tokenizer, BPE model, post-processor, decoder.
/// Parts this reader does not know are refused at load, naming the part.
public final class HFTokenizer: Tokenizer, @unchecked Sendable {
    enum Normalizer {
        case nfc, lowercase, replaceRegex(NSRegularExpression, String), replace(String, String), prepend(String)
    }

    enum PreTokenizer {
        case byteLevel(useRegex: Bool, addPrefixSpace: Bool)
        case split(NSRegularExpression, invert: Bool)
        case metaspace(replacement: String, prependFirst: Bool)
    }

    enum DecoderStep {
        case byteLevel, replace(String, String), byteFallback, fuse, strip(String, start: Int, stop: Int), metaspace(String)
    }

    let model: BPE
    let addedTokens: [String: Int]
    let specialIDs: Set<Int>
    let idToToken: [Int: String]
    let normalizers: [Normalizer]
    let preTokenizers: [PreTokenizer]
    let prefixIDs: [Int]
    let suffixIDs: [Int]
    let decoders: [DecoderStep]
    /// Added tokens by first character, longest first, for splitting them out of text.
    private let addedByFirst: [Character: [String]]

    public convenience init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TokenizerError("cannot read \(path)") }
        try self.init(json: data)
    }

    public init(json data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let modelJSON = root["model"] as? [String: Any] else {
            throw TokenizerError("tokenizer.json is not a JSON object with a model")
        }
        guard (modelJSON["type"] as? String ?? "BPE") == "BPE", let vocabulary = modelJSON["vocab"] as? [String: Int] else {
            throw TokenizerError("tokenizer.json model \(modelJSON["type"] ?? "?") is not supported; Chorus reads BPE models")
        }
        let merges: [(String, String)] = (modelJSON["merges"] as? [Any] ?? []).compactMap { merge in
            if let text = merge as? String {
                let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }
            if let pair = merge as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            return nil
        }
        model = BPE(vocabulary: vocabulary, merges: merges, endOfWordSuffix: modelJSON["end_of_word_suffix"] as? String ?? "",
                    byteFallback: modelJSON["byte_fallback"] as? Bool ?? false, unknownToken: modelJSON["unk_token"] as? String)

        var added: [String: Int] = [:]
        var special: Set<Int> = []
        for token in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = token["content"] as? String, let id = token["id"] as? Int else { continue }
            added[content] = id
            if token["special"] as? Bool ?? false { special.insert(id) }
        }
        addedTokens = added
        specialIDs = special
        var reverse = Dictionary(vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        for (content, id) in added { reverse[id] = content }
        idToToken = reverse
        addedByFirst = Dictionary(grouping: added.keys.filter { !$0.isEmpty }, by: { $0.first! }).mapValues { $0.sorted { $0.count > $1.count } }

        normalizers = try Self.flatten(root["normalizer"], key: "normalizers").map(Self.normalizer)
        preTokenizers = try Self.flatten(root["pre_tokenizer"], key: "pretokenizers").map(Self.preTokenizer)
        decoders = try Self.flatten(root["decoder"], key: "decoders").map(Self.decoder)
        (prefixIDs, suffixIDs) = try Self.postProcessor(root["post_processor"], added: added, vocabulary: vocabulary)
        // A BPE model with an end-of-word suffix (CLIP) decodes the suffix as a space, as BPEDecoder does.
        if !model.endOfWordSuffix.isEmpty && !decoders.contains(where: { if case .replace = $0 { return true }; return false }) {
            extraDecoders = [.replace(model.endOfWordSuffix, " ")]
        } else {
            extraDecoders = []
        }
    }

    private let extraDecoders: [DecoderStep]

    // MARK: encode

    public func encode(_ text: String) -> [Int] {
        prefixIDs + encodeWithoutTemplate(text) + suffixIDs
    }

    /// Ids of `text` alone, without the post-processor's special tokens.
    public func encodeWithoutTemplate(_ text: String) -> [Int] {
        var ids: [Int] = []
        var first = true
        for (segment, addedID) in splitAddedTokens(text) {
            if let addedID {
                ids.append(addedID)
            } else {
                for piece in preTokenize(normalize(segment), first: first) {
                    ids += model.encode(piece)
                }
            }
            first = false
        }
        return ids
    }

    public func id(of token: String) -> Int? {
        addedTokens[token] ?? model.vocabulary[token]
    }

    public func token(of id: Int) -> String? {
        idToToken[id]
    }

    private func splitAddedTokens(_ text: String) -> [(String, Int?)] {
        guard !addedByFirst.isEmpty else { return [(text, nil)] }
        var segments: [(String, Int?)] = []
        var current = ""
        var index = text.startIndex
        outer: while index < text.endIndex {
            if let candidates = addedByFirst[text[index]] {
                for candidate in candidates where text[index...].hasPrefix(candidate) {
                    if !current.isEmpty { segments.append((current, nil)) }
                    current = ""
                    segments.append((candidate, addedTokens[candidate]))
                    index = text.index(index, offsetBy: candidate.count)
                    continue outer
                }
            }
            current.append(text[index])
            index = text.index(after: index)
        }
        if !current.isEmpty { segments.append((current, nil)) }
        return segments
    }

    private func normalize(_ text: String) -> String {
        normalizers.reduce(text) { text, step in
            switch step {
            case .nfc: return text.precomposedStringWithCanonicalMapping
            case .lowercase: return text.lowercased()
            case .replace(let pattern, let content): return text.replacingOccurrences(of: pattern, with: content)
            case .replaceRegex(let regex, let content):
                return regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: NSRegularExpression.escapedTemplate(for: content))
            case .prepend(let prefix): return text.isEmpty ? text : prefix + text
            }
        }
    }

    private func preTokenize(_ text: String, first: Bool) -> [String] {
        var pieces = [text]
        for step in preTokenizers {
            pieces = pieces.flatMap { piece -> [String] in
                switch step {
                case .byteLevel(let useRegex, let addPrefixSpace):
                    let source = addPrefixSpace && !piece.hasPrefix(" ") ? " " + piece : piece
                    let parts = useRegex ? ByteLevel.split(source) : [source[...]]
                    return parts.map { ByteLevel.encode($0) }
                case .split(let regex, let invert):
                    return split(piece, regex, keepMatches: invert)
                case .metaspace(let replacement, let prependFirst):
                    guard !piece.isEmpty else { return [] }
                    let replaced = piece.replacingOccurrences(of: " ", with: replacement)
                    return [prependFirst && first && !replaced.hasPrefix(replacement) ? replacement + replaced : replaced]
                }
            }
        }
        return pieces.filter { !$0.isEmpty }
    }

    /// `Split` with behavior "Removed": with invert the matches are the pieces, otherwise the gaps are.
    private func split(_ text: String, _ regex: NSRegularExpression, keepMatches: Bool) -> [String] {
        let matches = regex.matches(in: text, range: NSRange(text.startIndex..., in: text))
        if keepMatches {
            return matches.compactMap { Range($0.range, in: text).map { String(text[$0]) } }
        }
        var pieces: [String] = []
        var last = text.startIndex
        for match in matches {
            guard let range = Range(match.range, in: text) else { continue }
            pieces.append(String(text[last..<range.lowerBound]))
            last = range.upperBound
        }
        pieces.append(String(text[last...]))
        return pieces
    }

    // MARK: decode

    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var tokens = ids.filter { !(skipSpecialTokens && specialIDs.contains($0)) }.compactMap { idToToken[$0] }
        // Added tokens are not byte-level encoded: they pass through the decoders untouched.
        var text = ""
        var pending: [String] = []
        func flush() {
            if !pending.isEmpty { text += runDecoders(pending) }
            pending = []
        }
        let addedContents = Set(addedTokens.keys)
        for token in tokens {
            if addedContents.contains(token) {
                flush()
                text += token
            } else {
                pending.append(token)
            }
        }
        flush()
        tokens = []
        return text
    }

    private func runDecoders(_ tokens: [String]) -> String {
        var pieces = tokens
        for step in decoders + extraDecoders {
            switch step {
            case .replace(let pattern, let content):
                pieces = pieces.map { $0.replacingOccurrences(of: pattern, with: content) }
            case .byteFallback:
                var out: [String] = []
                var bytes: [UInt8] = []
                for piece in pieces {
                    if piece.count == 6, piece.hasPrefix("<0x"), piece.hasSuffix(">"), let byte = UInt8(piece.dropFirst(3).dropLast(), radix: 16) {
                        bytes.append(byte)
                        continue
                    }
                    if !bytes.isEmpty { out.append(String(decoding: bytes, as: UTF8.self)); bytes = [] }
                    out.append(piece)
                }
                if !bytes.isEmpty { out.append(String(decoding: bytes, as: UTF8.self)) }
                pieces = out
            case .fuse:
                pieces = [pieces.joined()]
            case .strip(let content, let start, let stop):
                pieces = pieces.enumerated().map { index, piece in
                    var piece = Substring(piece)
                    if index == 0 { for _ in 0..<start where piece.hasPrefix(content) { piece = piece.dropFirst(content.count) } }
                    if index == pieces.count - 1 { for _ in 0..<stop where piece.hasSuffix(content) { piece = piece.dropLast(content.count) } }
                    return String(piece)
                }
            case .byteLevel:
                pieces = [String(decoding: ByteLevel.decode(pieces.joined()), as: UTF8.self)]
            case .metaspace(let replacement):
                let joined = pieces.joined().replacingOccurrences(of: replacement, with: " ")
                pieces = [joined.hasPrefix(" ") ? String(joined.dropFirst()) : joined]
            }
        }
        let text = pieces.joined()
        return extraDecoders.isEmpty ? text : text.trimmingCharacters(in: .whitespaces)
    }

    // MARK: reading tokenizer.json parts

    private static func flatten(_ value: Any?, key: String) -> [[String: Any]] {
        guard let object = value as? [String: Any] else { return [] }
        if object["type"] as? String == "Sequence" {
            return (object[key] as? [Any] ?? []).flatMap { flatten($0, key: key) }
        }
        return [object]
    }

    private static func pattern(_ json: [String: Any]) throws -> (NSRegularExpression?, String?) {
        let pattern = json["pattern"] as? [String: Any]
        if let regex = pattern?["Regex"] as? String { return (try NSRegularExpression(pattern: regex), nil) }
        return (nil, pattern?["String"] as? String)
    }

    private static func normalizer(_ json: [String: Any]) throws -> Normalizer {
        switch json["type"] as? String {
        case "NFC": return .nfc
        case "Lowercase": return .lowercase
        case "Prepend": return .prepend(json["prepend"] as? String ?? "")
        case "Replace":
            let (regex, string) = try pattern(json)
            let content = json["content"] as? String ?? ""
            if let regex { return .replaceRegex(regex, content) }
            return .replace(string ?? "", content)
        case let other: throw TokenizerError("tokenizer.json normalizer \(other ?? "?") is not supported")
        }
    }

    private static func preTokenizer(_ json: [String: Any]) throws -> PreTokenizer {
        switch json["type"] as? String {
        case "ByteLevel":
            return .byteLevel(useRegex: json["use_regex"] as? Bool ?? true, addPrefixSpace: json["add_prefix_space"] as? Bool ?? false)
        case "Split":
            guard let regex = try pattern(json).0 else { throw TokenizerError("tokenizer.json Split without a regex is not supported") }
            guard json["behavior"] as? String == "Removed" else { throw TokenizerError("tokenizer.json Split behavior \(json["behavior"] ?? "?") is not supported") }
            return .split(regex, invert: json["invert"] as? Bool ?? false)
        case "Metaspace":
            let scheme = json["prepend_scheme"] as? String ?? ((json["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            return .metaspace(replacement: json["replacement"] as? String ?? "▁", prependFirst: scheme != "never")
        case let other: throw TokenizerError("tokenizer.json pre-tokenizer \(other ?? "?") is not supported")
        }
    }

    private static func decoder(_ json: [String: Any]) throws -> DecoderStep {
        switch json["type"] as? String {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Replace":
            let (_, string) = try pattern(json)
            return .replace(string ?? "", json["content"] as? String ?? "")
        case "Strip": return .strip(json["content"] as? String ?? " ", start: json["start"] as? Int ?? 0, stop: json["stop"] as? Int ?? 0)
        case "Metaspace": return .metaspace(json["replacement"] as? String ?? "▁")
        case let other: throw TokenizerError("tokenizer.json decoder \(other ?? "?") is not supported")
        }
    }

    /// The special ids placed before and after a single sequence.
    private static func postProcessor(_ value: Any?, added: [String: Int], vocabulary: [String: Int]) throws -> ([Int], [Int]) {
        guard let json = value as? [String: Any] else { return ([], []) }
        switch json["type"] as? String {
        case "TemplateProcessing":
            var before: [Int] = [], after: [Int] = []
            var seenSequence = false
            for item in json["single"] as? [[String: Any]] ?? [] {
                if item["Sequence"] != nil { seenSequence = true; continue }
                guard let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String,
                      let id = added[name] ?? vocabulary[name] else { continue }
                if seenSequence { after.append(id) } else { before.append(id) }
            }
            return (before, after)
        case "RobertaProcessing", "BertProcessing":
            let cls = (json["cls"] as? [Any])?.last as? Int
            let sep = (json["sep"] as? [Any])?.last as? Int
            return (cls.map { [$0] } ?? [], sep.map { [$0] } ?? [])
        case "ByteLevel", nil:
            return ([], [])
        case let other?:
            throw TokenizerError("tokenizer.json post-processor \(other) is not supported")
        }
    }
}
