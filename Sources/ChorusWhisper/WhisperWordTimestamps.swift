import ChorusTensor
import Foundation

/// A word with its time in the audio, from the cross-attention of the alignment heads.
public struct TimedWord: Sendable, Equatable, Codable {
    public var word: String
    public var start: Double
    public var end: Double
    public var probability: Float
}

/// Word-level timestamps as openai-whisper's `timing.py` finds them: the decoder reruns the text, the
/// cross-attention of the model's alignment heads (which follow the audio) is softmaxed over the window's
/// frames, standardised per frame, median-filtered and averaged, and dynamic time warping aligns tokens
/// to 20 ms frames. Words are split on spaces and punctuation.
package struct WhisperAligner {
    package let engine: WhisperEngine

    package func words(audio: Tensor, sotSequence: [Int], textTokens: [Int], windowFrames: Int, offset: Double) -> [TimedWord] {
        let model = engine.model
        let special = engine.special
        guard !textTokens.isEmpty, let heads = model.config.alignmentHeads, !heads.isEmpty else { return [] }
        let tokens = sotSequence + [special.noTimestamps] + textTokens + [special.endOfText]
        let frames = max(1, min(1500, windowFrames / 2))
        let (qks, logits) = model.crossAttentionScores(audio: audio, tokens: tokens, heads: heads)
        // Probability of each text token where it was predicted.
        let vocabulary = logits.shape[1]
        let probabilities: [Float] = textTokens.enumerated().map { index, token in
            let row = Array(logits.storage[((sotSequence.count + index) * vocabulary)..<((sotSequence.count + index) * vocabulary + special.endOfText)])
            return exp(logSoftmaxRow(row)[token])
        }
        // weights[head][token][frame]: softmax over frames, standardised per frame across tokens, median-filtered.
        var matrix = [Float](repeating: 0, count: tokens.count * frames)
        for qk in qks {
            var w = Tensor(shape: [tokens.count, frames], storage: (0..<tokens.count).flatMap { t in qk.storage[(t * 1500)..<(t * 1500 + frames)] })
            w.softmaxLastDimension()
            for f in 0..<frames {
                var mean: Float = 0, square: Float = 0
                for t in 0..<tokens.count { mean += w.storage[t * frames + f] }
                mean /= Float(tokens.count)
                for t in 0..<tokens.count { let d = w.storage[t * frames + f] - mean; square += d * d }
                let std = max((square / Float(tokens.count)).squareRoot(), 1e-12)
                for t in 0..<tokens.count { w.storage[t * frames + f] = (w.storage[t * frames + f] - mean) / std }
            }
            let filtered = medianFilter(w.storage, rows: tokens.count, columns: frames, width: 7)
            for i in matrix.indices { matrix[i] += filtered[i] / Float(qks.count) }
        }
        // Rows of the positions that predict the text tokens and <|endoftext|>.
        let first = sotSequence.count, rows = textTokens.count + 1
        let cost = Array(matrix[(first * frames)..<((first + rows) * frames)]).map { -$0 }
        let (textIndices, timeIndices) = dtw(cost, rows: rows, columns: frames)
        var jumpTimes: [Double] = []
        var previous = -1
        for (i, t) in zip(textIndices, timeIndices) where i != previous {
            jumpTimes.append(Double(t) / 50)
            previous = i
        }
        let groups = splitIntoWords(textTokens)
        var words: [TimedWord] = []
        var boundary = 0
        for group in groups {
            let startIndex = boundary, endIndex = boundary + group.count
            boundary = endIndex
            guard startIndex < jumpTimes.count else { break }
            let text = engine.tokenizer.decode(group, skipSpecialTokens: true)
            let probability = probabilities[startIndex..<endIndex].reduce(0, +) / Float(group.count)
            words.append(TimedWord(word: text, start: offset + jumpTimes[startIndex],
                                   end: offset + jumpTimes[min(endIndex, jumpTimes.count - 1)], probability: probability))
        }
        return words
    }

    /// Tokens grouped into words: a word starts at a token whose text begins with a space, or that is
    /// punctuation alone (openai-whisper's `split_tokens_on_spaces`, for space-separated languages).
    private func splitIntoWords(_ tokens: [Int]) -> [[Int]] {
        var groups: [[Int]] = []
        for token in tokens {
            let text = engine.tokenizer.decode([token], skipSpecialTokens: true)
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            let punctuation = !trimmed.isEmpty && trimmed.unicodeScalars.allSatisfy { CharacterSet.punctuationCharacters.contains($0) }
            if groups.isEmpty || text.hasPrefix(" ") || (punctuation && !isAttachedPunctuation(trimmed)) {
                groups.append([token])
            } else {
                groups[groups.count - 1].append(token)
            }
        }
        return groups
    }

    /// Closing punctuation stays with the word before it, as openai-whisper's merge_punctuations does.
    private func isAttachedPunctuation(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { "\"'.。,，!！?？:：”)]}、".unicodeScalars.contains($0) }
    }
}

/// Median over a sliding window of `width` along each row, edges reflected (scipy-style, as openai-whisper).
package func medianFilter(_ values: [Float], rows: Int, columns: Int, width: Int) -> [Float] {
    guard columns >= width else { return values }
    let half = width / 2
    var out = values
    var window = [Float](repeating: 0, count: width)
    for r in 0..<rows {
        let base = r * columns
        for c in 0..<columns {
            for k in 0..<width {
                var index = c - half + k
                if index < 0 { index = -index }
                if index >= columns { index = 2 * columns - 2 - index }
                window[k] = values[base + index]
            }
            window.sort()
            out[base + c] = window[half]
        }
    }
    return out
}

/// Dynamic time warping over a rows × columns cost matrix; returns the aligned (row, column) path.
package func dtw(_ cost: [Float], rows: Int, columns: Int) -> ([Int], [Int]) {
    var total = [Float](repeating: .infinity, count: (rows + 1) * (columns + 1))
    var trace = [UInt8](repeating: 0, count: (rows + 1) * (columns + 1))
    let width = columns + 1
    total[0] = 0
    for j in 1...columns {
        for i in 1...rows {
            let c0 = total[(i - 1) * width + j - 1], c1 = total[(i - 1) * width + j], c2 = total[i * width + j - 1]
            let (c, t): (Float, UInt8) = c0 < c1 && c0 < c2 ? (c0, 0) : (c1 < c0 && c1 < c2 ? (c1, 1) : (c2, 2))
            total[i * width + j] = cost[(i - 1) * columns + j - 1] + c
            trace[i * width + j] = t
        }
    }
    for j in 0...columns { trace[j] = 2 }
    for i in 0...rows { trace[i * width] = 1 }
    var i = rows, j = columns
    var path: [(Int, Int)] = []
    while i > 0 || j > 0 {
        path.append((i - 1, j - 1))
        switch trace[i * width + j] {
        case 0: i -= 1; j -= 1
        case 1: i -= 1
        default: j -= 1
        }
    }
    path.reverse()
    return (path.map(\.0), path.map(\.1))
}
