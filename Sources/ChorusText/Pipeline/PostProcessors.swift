/// Adds the tokenizer's own special tokens around an encoded text (tokenizers' `post_processor`).
/// Only single sequences are supported: Chorus never encodes sentence pairs.
protocol PostProcessor: Sendable {
    func process(_ ids: [Int]) -> [Int]
}

enum PostProcessors {
    /// The post-processor a tokenizer.json `post_processor` entry describes, or nil when it adds nothing.
    static func make(_ json: JSON) throws -> PostProcessor? {
        guard !json.isNull else { return nil }
        switch json["type"].string {
        case "Sequence":
            return PostProcessorSequence(steps: try (json["processors"].array ?? []).compactMap(make))
        case "TemplateProcessing":
            return try TemplateProcessor(json)
        case "RobertaProcessing", "BertProcessing":
            // Both put `cls` before and `sep` after a single sequence; each is a ["token", id] pair.
            guard let cls = json["cls"].array?.last?.int, let sep = json["sep"].array?.last?.int else {
                throw TokenizerError.unsupported("\(json["type"].string ?? "") without cls/sep ids")
            }
            return TemplateProcessor(single: [.special(ids: [cls]), .sequence, .special(ids: [sep])])
        case "ByteLevel":
            // Only adjusts offsets, which Chorus does not report.
            return nil
        case let other:
            throw TokenizerError.unsupported("post-processor type \(other ?? "missing")")
        }
    }
}

struct PostProcessorSequence: PostProcessor {
    let steps: [PostProcessor]

    func process(_ ids: [Int]) -> [Int] {
        steps.reduce(ids) { ids, step in step.process(ids) }
    }
}

/// tokenizers' `TemplateProcessing`, e.g. Whisper's "<|startoftranscript|> <|notimestamps|> $A <|endoftext|>"
/// or Llama's "<s> $A".
struct TemplateProcessor: PostProcessor {
    enum Piece: Equatable {
        case sequence
        case special(ids: [Int])
    }

    let single: [Piece]

    init(single: [Piece]) {
        self.single = single
    }

    init(_ json: JSON) throws {
        let specials = json["special_tokens"]
        single = try (json["single"].array ?? []).map { piece in
            if !piece["Sequence"].isNull { return .sequence }
            guard let name = piece["SpecialToken"]["id"].string else {
                throw TokenizerError.unsupported("template piece \(piece.raw ?? "null")")
            }
            guard let ids = specials[name]["ids"].array?.compactMap(\.int) else {
                throw TokenizerError.unsupported("template special token \(name) is not listed in special_tokens")
            }
            return .special(ids: ids)
        }
    }

    func process(_ ids: [Int]) -> [Int] {
        single.flatMap { piece -> [Int] in
            switch piece {
            case .sequence: return ids
            case .special(let specialIDs): return specialIDs
            }
        }
    }
}
