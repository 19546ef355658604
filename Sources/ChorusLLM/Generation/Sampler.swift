import ChorusTensor
import Foundation

/// How the next token is chosen, as transformers' `generate` takes it.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 = greedy (argmax).
    public var temperature: Float = 0
    /// Keep the smallest set of tokens whose probability reaches this (1 = off).
    public var topP: Float = 1
    /// Keep the k most likely tokens (0 = off).
    public var topK = 0
    /// CTRL's penalty on tokens already in the sequence (1 = off).
    public var repetitionPenalty: Float = 1
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topP: Float = 1, topK: Int = 0, repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }
}

/// Picks tokens from logits in transformers' order: repetition penalty, temperature, top-k, top-p,
/// then argmax or a draw from the seeded generator.
struct Sampler {
    let options: SamplingOptions
    var random: SplitMix64

    init(_ options: SamplingOptions) {
        self.options = options
        random = SplitMix64(seed: options.seed)
    }

    mutating func next(_ logits: [Float], history: [Int]) -> Int {
        var scores = logits
        if options.repetitionPenalty != 1 {
            for id in Set(history) where scores.indices.contains(id) {
                scores[id] = scores[id] < 0 ? scores[id] * options.repetitionPenalty : scores[id] / options.repetitionPenalty
            }
        }
        guard options.temperature > 0 else { return Self.argmax(scores) }
        var candidates = scores.indices.map { (id: $0, score: scores[$0] / options.temperature) }
        candidates.sort { $0.score > $1.score }
        if options.topK > 0 { candidates = Array(candidates.prefix(options.topK)) }
        let top = candidates[0].score
        var probabilities = candidates.map { expf($0.score - top) }
        var total = probabilities.reduce(0, +)
        if options.topP < 1 {
            // The most likely tokens until their mass reaches top_p; the first one always stays.
            var mass: Float = 0, keep = 0
            while keep < probabilities.count {
                mass += probabilities[keep] / total
                keep += 1
                if mass >= options.topP { break }
            }
            candidates = Array(candidates.prefix(keep))
            probabilities = Array(probabilities.prefix(keep))
            total = probabilities.reduce(0, +)
        }
        var draw = Float(random.uniform()) * total
        for (candidate, p) in zip(candidates, probabilities) {
            draw -= p
            if draw <= 0 { return candidate.id }
        }
        return candidates[candidates.count - 1].id
    }

    /// The first index of the largest value (torch.argmax's tie rule).
    static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
