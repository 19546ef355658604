import Foundation

/// Whisper's byte-level BPE with transformers' `WhisperTokenizer` behaviour on top of tokenizer.json:
/// the decoder prompt prefix (<|startoftranscript|>, language, task, <|notimestamps|>) is built from the
/// options rather than read from the file, and decoding drops a <|startofprev|> prompt and timestamps.
public struct WhisperTokenizer: Tokenizer {
    public enum Task: String, Sendable {
        case transcribe, translate
    }

    public let pipeline: PipelineTokenizer
    /// The ids `encode` puts before the text, e.g. [<|startoftranscript|>, <|en|>, <|transcribe|>, <|notimestamps|>].
    public let prefixIDs: [Int]
    public let endOfTextID: Int
    private let previousTextID: Int?
    private let startOfTranscriptID: Int

    /// `language` is a code as in the vocabulary's language tokens ("en" for "<|en|>"); nil leaves it out,
    /// as does a nil `task`. `predictTimestamps: false` adds <|notimestamps|>.
    public init(pipeline: PipelineTokenizer, language: String?, task: Task?, predictTimestamps: Bool) throws {
        func required(_ token: String) throws -> Int {
            guard let id = pipeline.tokenID(token) else {
                throw TokenizerError.invalidOption("the Whisper vocabulary has no \(token) token")
            }
            return id
        }
        startOfTranscriptID = try required("<|startoftranscript|>")
        endOfTextID = try required("<|endoftext|>")
        previousTextID = pipeline.tokenID("<|startofprev|>")
        var prefix = [startOfTranscriptID]
        if let language {
            prefix.append(try required("<|\(language.lowercased())|>"))
        }
        if let task { prefix.append(try required("<|\(task.rawValue)|>")) }
        if !predictTimestamps { prefix.append(try required("<|notimestamps|>")) }
        prefixIDs = prefix

        var pipeline = pipeline
        pipeline.postProcessor = TemplateProcessor(single: [.special(ids: prefix), .sequence, .special(ids: [endOfTextID])])
        self.pipeline = pipeline
    }

    public func encode(_ text: String) -> [Int] {
        pipeline.encode(text)
    }

    /// The text alone, without prefix and <|endoftext|> (for prompts given with <|startofprev|>).
    public func encodeWithoutSpecialTokens(_ text: String) -> [Int] {
        pipeline.encode(text, addSpecialTokens: false)
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        let ids = skipSpecialTokens ? withoutPrompt(ids) : ids
        return Self.removingTimestamps(pipeline.decode(ids, skipSpecialTokens: skipSpecialTokens))
    }

    public func tokenID(_ token: String) -> Int? { pipeline.tokenID(token) }

    public func token(_ id: Int) -> String? { pipeline.token(id) }

    /// A sequence that opens with <|startofprev|> carries a prompt up to <|startoftranscript|>; only
    /// what follows is the transcript (transformers' `_strip_prompt`).
    private func withoutPrompt(_ ids: [Int]) -> [Int] {
        guard let previousTextID, ids.first == previousTextID else { return ids }
        guard let start = ids.firstIndex(of: startOfTranscriptID) else { return [] }
        return Array(ids[start...])
    }

    /// Removes "<|1.23|>" timestamp tokens from decoded text, as transformers' `_filter_timestamp_ids`
    /// does with the regex `<\|(\d+\.\d+)\|>`.
    static func removingTimestamps(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var result = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            if let end = timestampEnd(in: scalars, from: index) {
                index = end
            } else {
                result.append(scalars[index])
                index += 1
            }
        }
        return String(result)
    }

    /// The end of a "<|digits.digits|>" starting at `start`, if one does.
    private static func timestampEnd(in scalars: [Unicode.Scalar], from start: Int) -> Int? {
        guard scalars.hasLiteral(["<", "|"], at: start) else { return nil }
        func digitsEnd(from index: Int) -> Int {
            var end = index
            while end < scalars.count, scalars[end].properties.numericType == .decimal { end += 1 }
            return end
        }
        let integerEnd = digitsEnd(from: start + 2)
        guard integerEnd > start + 2, integerEnd < scalars.count, scalars[integerEnd] == "." else { return nil }
        let fractionEnd = digitsEnd(from: integerEnd + 1)
        guard fractionEnd > integerEnd + 1, scalars.hasLiteral(["|", ">"], at: fractionEnd) else { return nil }
        return fractionEnd + 2
    }
}
