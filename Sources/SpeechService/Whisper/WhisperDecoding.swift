import ChorusTensor
import ChorusText
import Foundation

/// Options of one decoding pass over a 30 s window.
public struct WhisperDecodingOptions: Sendable {
    /// Allow timestamp tokens (segment boundaries); off prompts with <|notimestamps|>.
    public var timestamps = true
    public var suppressBlank = true
    /// nil: the model's own list (config suppress_ids / suppress_tokens).
    public var suppressTokens: [Int]? = nil
    /// The first timestamp may be at most this many 20 ms steps in (openai-whisper and CTranslate2: 50 = 1 s).
    public var maxInitialTimestampIndex = 50
    public var maxNewTokens = 224

    public init() {}
}

public struct WhisperDecodingResult: Sendable, Equatable {
    /// Generated tokens, timestamps included, <|endoftext|> excluded.
    public var tokens: [Int]
    public var sumLogprob: Float
    public var noSpeechProbability: Float

    public var averageLogprob: Float { sumLogprob / Float(max(tokens.count + 1, 1)) }
}

/// Greedy decoding with the logit rules of openai-whisper and CTranslate2 (suppress blank at the start,
/// suppress tokens, timestamp rules), one token per step through the decoder's KV cache.
struct WhisperGreedyDecoder {
    let model: WhisperModel
    let special: WhisperTokens
    let multilingual: Bool

    /// Probabilities of the language tokens after one decoder step on <|startoftranscript|>.
    func detectLanguage(_ audio: Tensor) -> [(language: String, probability: Float)] {
        var state = model.startDecoding(audio)
        let logits = model.decode([special.startOfTranscript], state: &state).storage
        let candidates = special.languages.filter { $0.value < logits.count }
        let top = candidates.values.map { logits[$0] }.max() ?? 0
        let exps = candidates.mapValues { exp(logits[$0] - top) }
        let total = exps.values.reduce(0, +)
        return exps.map { ($0.key, $0.value / total) }.sorted { $0.probability > $1.probability }
    }

    func greedy(_ audio: Tensor, prompt: [Int], options: WhisperDecodingOptions, shouldStop: () -> Bool = { false }) -> WhisperDecodingResult {
        var state = model.startDecoding(audio)
        var logits = model.decode(prompt, state: &state)
        let vocabulary = logits.shape[1]
        var row = Array(logits.storage[((prompt.count - 1) * vocabulary)...])
        let noSpeech = noSpeechProbability(logits, prompt: prompt, vocabulary: vocabulary)
        let suppress = (options.suppressTokens ?? model.config.suppressTokens ?? []).filter { $0 >= 0 && $0 < vocabulary }
        let suppressAtStart = (model.config.beginSuppressTokens ?? [special.endOfText]) + []
        var tokens: [Int] = []
        var sumLogprob: Float = 0
        let limit = min(options.maxNewTokens, model.maxTokens - prompt.count)
        while tokens.count < limit && !shouldStop() {
            if tokens.isEmpty && options.suppressBlank {
                for id in suppressAtStart where id < vocabulary { row[id] = -.infinity }
            }
            for id in suppress { row[id] = -.infinity }
            if options.timestamps { applyTimestampRules(&row, generated: tokens, options: options) }
            let logprobs = logSoftmax(row)
            let next = row.indices.max { row[$0] < row[$1] }!
            sumLogprob += logprobs[next]
            if next == special.endOfText { break }
            tokens.append(next)
            logits = model.decode([next], state: &state)
            row = logits.storage
        }
        return WhisperDecodingResult(tokens: tokens, sumLogprob: sumLogprob, noSpeechProbability: noSpeech)
    }

    /// openai-whisper's ApplyTimestampRules.
    private func applyTimestampRules(_ row: inout [Float], generated: [Int], options: WhisperDecodingOptions) {
        let begin = special.timestampBegin
        let vocabulary = row.count
        row[special.noTimestamps] = -.infinity
        let lastWasTimestamp = generated.last.map { $0 >= begin } ?? false
        let penultimateWasTimestamp = generated.count < 2 || generated[generated.count - 2] >= begin
        if lastWasTimestamp {
            if penultimateWasTimestamp {
                for id in begin..<vocabulary { row[id] = -.infinity }  // a pair is complete: text next
            } else {
                for id in 0..<special.endOfText { row[id] = -.infinity }  // close the pair (or end)
            }
        }
        if let lastTimestamp = generated.last(where: { $0 >= begin }) {
            // Timestamps never go back; a new pair starts strictly after the last one.
            let floor = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1
            for id in begin..<min(floor, vocabulary) { row[id] = -.infinity }
        }
        if generated.isEmpty {
            for id in 0..<begin { row[id] = -.infinity }  // the first token is a timestamp
            let lastAllowed = begin + options.maxInitialTimestampIndex
            if lastAllowed + 1 < vocabulary { for id in (lastAllowed + 1)..<vocabulary { row[id] = -.infinity } }
        }
        // When all timestamps together are likelier than any text token, take a timestamp.
        let logprobs = logSoftmax(row)
        let timestampMass = logSumExp(logprobs[begin...])
        let bestText = logprobs[..<begin].max() ?? -.infinity
        if timestampMass > bestText {
            for id in 0..<begin { row[id] = -.infinity }
        }
    }

    private func noSpeechProbability(_ logits: Tensor, prompt: [Int], vocabulary: Int) -> Float {
        guard let noSpeech = special.noSpeech, let index = prompt.firstIndex(of: special.startOfTranscript) else { return 0 }
        let row = Array(logits.storage[(index * vocabulary)..<((index + 1) * vocabulary)])
        return exp(logSoftmax(row)[noSpeech])
    }
}

func logSoftmax(_ row: [Float]) -> [Float] {
    let top = row.max() ?? 0
    guard top.isFinite else { return row }
    var sum: Double = 0
    for v in row where v > -.infinity { sum += Double(exp(v - top)) }
    let shift = top + Float(log(sum))
    return row.map { $0 - shift }
}

func logSumExp<C: Collection>(_ values: C) -> Float where C.Element == Float {
    let top = values.max() ?? -.infinity
    guard top.isFinite else { return top }
    var sum: Double = 0
    for v in values { sum += Double(exp(v - top)) }
    return top + Float(log(sum))
}
