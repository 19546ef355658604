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
    /// 0 or 1: greedy; more: beam search with this many beams (at temperature 0).
    public var beamSize = 5
    /// Beam search ends when round(beamSize · patience) sequences have finished.
    public var patience: Float = 1
    /// 0: deterministic (greedy or beam); above: sampling at this temperature.
    public var temperature: Float = 0
    /// Samples drawn at a temperature above 0; the likeliest wins.
    public var bestOf = 5
    public var seed: UInt64 = 0

    public init() {}
}

public struct WhisperDecodingResult: Sendable, Equatable {
    /// Generated tokens, timestamps included, <|endoftext|> excluded.
    public var tokens: [Int]
    public var sumLogprob: Float
    public var noSpeechProbability: Float

    public var averageLogprob: Float { sumLogprob / Float(max(tokens.count + 1, 1)) }
}

/// Whisper's decoding — greedy, beam search or sampling, as the options say — with the logit rules of
/// openai-whisper and CTranslate2 (suppress blank at the start, suppress tokens, timestamp rules), one
/// token per step through the decoder's KV cache.
package struct WhisperDecoding {
    package let model: WhisperModel
    package let special: WhisperTokens

    package init(model: WhisperModel, special: WhisperTokens) {
        self.model = model
        self.special = special
    }

    /// Probabilities of the language tokens after one decoder step on <|startoftranscript|>.
    package func detectLanguage(_ audio: Tensor) -> [(language: String, probability: Float)] {
        var state = model.startDecoding(audio)
        let logits = model.decode([special.startOfTranscript], state: &state).storage
        let candidates = special.languages.filter { $0.value < logits.count }
        let top = candidates.values.map { logits[$0] }.max() ?? 0
        let exps = candidates.mapValues { exp(logits[$0] - top) }
        let total = exps.values.reduce(0, +)
        return exps.map { ($0.key, $0.value / total) }.sorted { $0.probability > $1.probability }
    }

    /// Greedy, beam search or sampling, as `options` say.
    package func decode(_ audio: Tensor, prompt: [Int], options: WhisperDecodingOptions, shouldStop: () -> Bool = { false }) -> WhisperDecodingResult {
        if options.temperature > 0 {
            var generator = SplitMix64(seed: options.seed)
            return (0..<max(1, options.bestOf)).map { _ in
                sample(audio, prompt: prompt, options: options, generator: &generator, shouldStop: shouldStop)
            }.max { $0.sumLogprob / Float(max($0.tokens.count, 1)) < $1.sumLogprob / Float(max($1.tokens.count, 1)) }!
        }
        if options.beamSize > 1 { return beamSearch(audio, prompt: prompt, options: options, shouldStop: shouldStop) }
        return greedy(audio, prompt: prompt, options: options, shouldStop: shouldStop)
    }

    package func greedy(_ audio: Tensor, prompt: [Int], options: WhisperDecodingOptions, shouldStop: () -> Bool = { false }) -> WhisperDecodingResult {
        var generator = SplitMix64(seed: 0)
        var deterministic = options
        deterministic.temperature = 0
        return sample(audio, prompt: prompt, options: deterministic, generator: &generator, shouldStop: shouldStop)
    }

    /// One sequence: the argmax at temperature 0, a draw from softmax(logits / T) above.
    private func sample(_ audio: Tensor, prompt: [Int], options: WhisperDecodingOptions, generator: inout SplitMix64,
                        shouldStop: () -> Bool) -> WhisperDecodingResult {
        var state = model.startDecoding(audio)
        let logits = model.decode(prompt, state: &state)
        let vocabulary = logits.shape[1]
        var row = Array(logits.storage[((prompt.count - 1) * vocabulary)...])
        let noSpeech = noSpeechProbability(logits, prompt: prompt, vocabulary: vocabulary)
        var tokens: [Int] = []
        var sumLogprob: Float = 0
        let limit = min(options.maxNewTokens, model.maxTokens - prompt.count)
        while tokens.count < limit && !shouldStop() {
            filter(&row, generated: tokens, options: options)
            let logprobs = logSoftmaxRow(row)
            let next = options.temperature > 0 ? draw(row, temperature: options.temperature, generator: &generator)
                                               : argmaxRow(row)
            sumLogprob += logprobs[next]
            if next == special.endOfText { break }
            tokens.append(next)
            row = model.decode([next], state: &state).storage
        }
        return WhisperDecodingResult(tokens: tokens, sumLogprob: sumLogprob, noSpeechProbability: noSpeech)
    }

    /// openai-whisper's BeamSearchDecoder: each live beam proposes its beamSize + 1 best tokens; the best
    /// beamSize continuations live on, finished ones are kept until round(beamSize · patience) have
    /// ended; the winner has the highest log-probability per token.
    private func beamSearch(_ audio: Tensor, prompt: [Int], options: WhisperDecodingOptions, shouldStop: () -> Bool) -> WhisperDecodingResult {
        struct Beam {
            var row: [Float]
            var tokens: [Int]
            var sumLogprob: Float
        }
        // One decoder state holds every live beam as a batch entry.
        var state = model.startDecoding(audio)
        let logits = model.decode(prompt, state: &state)
        let vocabulary = logits.shape[1]
        let noSpeech = noSpeechProbability(logits, prompt: prompt, vocabulary: vocabulary)
        var beams = [Beam(row: Array(logits.storage[((prompt.count - 1) * vocabulary)...]), tokens: [], sumLogprob: 0)]
        var finished: [(tokens: [Int], sumLogprob: Float)] = []
        let wanted = max(1, Int((Float(options.beamSize) * options.patience).rounded()))
        let limit = min(options.maxNewTokens, model.maxTokens - prompt.count)
        var step = 0
        while !beams.isEmpty && finished.count < wanted && step < limit && !shouldStop() {
            // Each beam's logit rules, log-softmax and top tokens (a few passes over 52 k logits) are its own:
            // the beams share the cores.
            var proposals = [[(beam: Int, token: Int, score: Float)]](repeating: [], count: beams.count)
            proposals.withUnsafeMutableBufferPointer { out in
                Parallel.perform(iterations: beams.count) { index in
                    let beam = beams[index]
                    var row = beam.row
                    filter(&row, generated: beam.tokens, options: options)
                    let logprobs = logSoftmaxRow(row)
                    out[index] = topIndices(logprobs, count: options.beamSize + 1).filter { logprobs[$0].isFinite }
                        .map { (index, $0, beam.sumLogprob + logprobs[$0]) }
                }
            }
            var candidates = proposals.flatMap { $0 }
            candidates.sort { $0.score > $1.score }
            var next: [Beam] = []
            var parents: [Int] = []
            var seen = Set<[Int]>()
            // openai-whisper's order: down the ranking until beamSize sequences live on; a sequence that
            // ends above that cut is finished. Ends ranked below it are not kept: short low-scoring endings
            // filled the finished list, so a window ended after its first segment and text was lost.
            for candidate in candidates {
                let tokens = beams[candidate.beam].tokens + [candidate.token]
                guard seen.insert(tokens).inserted else { continue }
                if candidate.token == special.endOfText {
                    if finished.count < wanted { finished.append((beams[candidate.beam].tokens, candidate.score)) }
                } else {
                    next.append(Beam(row: [], tokens: tokens, sumLogprob: candidate.score))
                    parents.append(candidate.beam)
                    if next.count == options.beamSize { break }
                }
            }
            if !next.isEmpty {
                // Survivors inherit their parents' caches, then all advance in one batched step.
                state.reorder(parents)
                let rows = model.decodeStep(next.map { $0.tokens.last! }, state: &state)
                for i in next.indices { next[i].row = Array(rows.storage[(i * vocabulary)..<((i + 1) * vocabulary)]) }
            }
            beams = next
            step += 1
        }
        if finished.isEmpty { finished = beams.map { ($0.tokens, $0.sumLogprob) } }
        // No beam at all only when every score was NaN (the audio is checked for that); an empty result then.
        guard let best = finished.max(by: { $0.sumLogprob / Float(max($0.tokens.count, 1)) < $1.sumLogprob / Float(max($1.tokens.count, 1)) }) else {
            return WhisperDecodingResult(tokens: [], sumLogprob: -.infinity, noSpeechProbability: noSpeech)
        }
        return WhisperDecodingResult(tokens: best.tokens, sumLogprob: best.sumLogprob, noSpeechProbability: noSpeech)
    }

    /// The logit rules, in openai-whisper's order: suppress blank (first step), suppress tokens, timestamps.
    private func filter(_ row: inout [Float], generated: [Int], options: WhisperDecodingOptions) {
        let vocabulary = row.count
        if generated.isEmpty && options.suppressBlank {
            for id in model.config.beginSuppressTokens ?? [special.endOfText] where id >= 0 && id < vocabulary { row[id] = -.infinity }
        }
        for id in options.suppressTokens ?? model.config.suppressTokens ?? [] where id >= 0 && id < vocabulary { row[id] = -.infinity }
        if options.timestamps { applyTimestampRules(&row, generated: generated, options: options) }
    }

    private func draw(_ row: [Float], temperature: Float, generator: inout SplitMix64) -> Int {
        let scaled = row.map { $0 / temperature }
        let probabilities = logSoftmaxRow(scaled).map { exp($0) }
        var target = Float(Double(generator.next() >> 11) / Double(1 << 53))
        for (index, p) in probabilities.enumerated() {
            target -= p
            if target <= 0 { return index }
        }
        return probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
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
        let logprobs = logSoftmaxRow(row)
        let timestampMass = logSumExp(logprobs[begin...])
        let bestText = maximum(of: logprobs, in: 0..<min(begin, vocabulary))
        if timestampMass > bestText {
            for id in 0..<begin { row[id] = -.infinity }
        }
    }

    private func noSpeechProbability(_ logits: Tensor, prompt: [Int], vocabulary: Int) -> Float {
        guard let noSpeech = special.noSpeech, let index = prompt.firstIndex(of: special.startOfTranscript) else { return 0 }
        let row = Array(logits.storage[(index * vocabulary)..<((index + 1) * vocabulary)])
        return exp(logSoftmaxRow(row)[noSpeech])
    }
}

/// The indices of the `count` largest values, largest first, in one pass (a vocabulary is 52k entries;
/// sorting it for every beam at every step would dominate beam search).
package func topIndices(_ values: [Float], count: Int) -> [Int] {
    var best: [(index: Int, value: Float)] = []
    best.reserveCapacity(count + 1)
    for (index, value) in values.enumerated() where best.count < count || value > best[best.count - 1].value {
        let position = best.firstIndex { value > $0.value } ?? best.count
        best.insert((index, value), at: position)
        if best.count > count { best.removeLast() }
    }
    return best.map(\.index)
}

package func logSumExp<C: Collection>(_ values: C) -> Float where C.Element == Float {
    let top = values.max() ?? -.infinity
    guard top.isFinite else { return top }
    var sum: Double = 0
    for v in values { sum += Double(exp(v - top)) }
    return top + Float(log(sum))
}
