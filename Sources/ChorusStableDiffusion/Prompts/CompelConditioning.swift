import ChorusTensor
import Foundation

/// A compel prompt laid out in tokens as compel's `EmbeddingsProvider` lays it out with
/// `truncate_long_prompts=False` (how `CompelForSD` runs it): per run of fragments, the fragments' tokens one
/// after another, cut into 77-token chunks (start, at most 75, end, padding) at the last full stop within
/// the 75, else the last `.`, `,`, `;` or `:`, else the last word's end; the tokens' weights; and where each
/// fragment's tokens are (compel finds them again in the chunked ids, skipping the chunks' frames).
package struct CompelTokens: Sendable {
    package struct Run: Sendable {
        /// 77 · chunks ids, and their weights (1 at the frames and the padding).
        package var ids: [Int]
        package var weights: [Double]
        /// Each fragment's first and last index in `ids` (nil for a fragment without tokens) and weight.
        package var fragments: [(range: ClosedRange<Int>?, weight: Double)]
        package var chunks: Int { ids.count / CompelTokens.window }
    }

    package enum Part: Sendable {
        case run(Run)
        case blend([Run], weights: [Double], normalize: Bool)

        package var runs: [Run] {
            switch self {
            case .run(let r): [r]
            case .blend(let rs, _, _): rs
            }
        }
        /// A blend is as long as its longest run (the others padded); a run as its chunks.
        package var chunks: Int { runs.map(\.chunks).max() ?? 1 }
    }

    static let window = 77

    package var parts: [Part]
    package var partWeights: [Double]
    /// The fragments' tokens, frames and padding aside.
    package var tokenCount: Int

    /// 77-token windows in the conditioning: the parts side by side.
    package var chunks: Int { max(1, parts.map(\.chunks).reduce(0, +)) }

    /// Text-encoder passes to build it: every chunk once, and again for each down-weighted fragment
    /// (compel encodes the run with that fragment masked out).
    package var encoderPasses: Int {
        parts.flatMap(\.runs).map { run in run.chunks * (1 + run.fragments.filter { $0.weight < 1 && $0.range != nil }.count) }.reduce(0, +)
    }
}

package enum CompelConditioningError: Error, CustomStringConvertible {
    case tooLong(chunks: Int, limit: Int)
    case tooManyPasses(passes: Int, limit: Int)
    case fragmentNotFound(String)
    case blendWeightsSumToZero

    package var description: String {
        switch self {
        case .tooLong(let chunks, let limit):
            "the prompt takes \(chunks) chunks of 77 tokens; the limit is \(limit)"
        case .tooManyPasses(let passes, let limit):
            "the prompt needs \(passes) text-encoder passes (every chunk again for each down-weighted fragment); the limit is \(limit)"
        case .fragmentNotFound(let text):
            "compel could not find the tokens of \"\(text)\" in the chunked prompt"
        case .blendWeightsSumToZero:
            "the weights of .blend() sum to 0, which cannot be normalised (add no_normalize to use them as they are)"
        }
    }
}

extension StableDiffusionPipeline {
    /// Down-weighted fragments re-encode their run; past this many passes a prompt is refused.
    package static let maxCompelEncoderPasses = 128

    /// A fragment's ids without start and end of text (A1111's pieces and compel's fragments alike).
    func fragmentIDs(_ text: String) -> [Int] {
        let start = tokenizer.tokenID("<|startoftext|>"), end = tokenizer.tokenID("<|endoftext|>")
        var ids = tokenizer.encode(text)
        if let first = ids.first, first == start { ids.removeFirst() }
        if let last = ids.last, last == end { ids.removeLast() }
        return ids
    }

    package func compelTokens(_ prompt: CompelPrompt) throws -> CompelTokens {
        var parts: [CompelTokens.Part] = [], tokenCount = 0
        for part in prompt.parts {
            switch part {
            case .fragments(let run):
                let r = try compelRun(run)
                parts.append(.run(r.run))
                tokenCount += r.tokens
            case .blend(let runs, let weights, let normalize):
                let rs = try runs.map(compelRun)
                parts.append(.blend(rs.map(\.run), weights: weights, normalize: normalize))
                tokenCount += rs.map(\.tokens).reduce(0, +)
                if normalize, Float(weights.map { Float($0) }.reduce(0, +)) == 0 { throw CompelConditioningError.blendWeightsSumToZero }
            }
        }
        // compel fails on a prompt with no parts (`()`); it is the empty prompt here.
        if parts.isEmpty { return try compelTokens(CompelPrompt(parts: [.fragments([.init("", 1)])], weights: [1])) }
        let tokens = CompelTokens(parts: parts, partWeights: prompt.weights, tokenCount: tokenCount)
        guard tokens.chunks <= Self.maxPromptChunks else { throw CompelConditioningError.tooLong(chunks: tokens.chunks, limit: Self.maxPromptChunks) }
        guard tokens.encoderPasses <= Self.maxCompelEncoderPasses else {
            throw CompelConditioningError.tooManyPasses(passes: tokens.encoderPasses, limit: Self.maxCompelEncoderPasses)
        }
        return tokens
    }

    /// compel's `get_token_ids_and_expand_weights`, `_chunk_and_pad_token_ids` and `_get_token_ranges_for_fragments`.
    private func compelRun(_ fragments: [CompelPrompt.Fragment]) throws -> (run: CompelTokens.Run, tokens: Int) {
        let start = tokenizer.tokenID("<|startoftext|>") ?? 0, end = tokenizer.tokenID("<|endoftext|>") ?? 0
        let perFragment = fragments.map { fragmentIDs($0.text) }
        var remaining = perFragment.flatMap { $0 }
        var remainingWeights = zip(perFragment, fragments).flatMap { ids, f in Array(repeating: f.weight, count: ids.count) }
        let tokens = remaining.count
        let inner = CompelTokens.window - 2
        var ids: [Int] = [], weights: [Double] = []
        repeat {
            let split = splitPoint(remaining, limit: inner)
            let chunk = [start] + remaining.prefix(split) + [end]
            let padding = CompelTokens.window - chunk.count
            ids += chunk + Array(repeating: padID, count: padding)
            weights += [1] + remainingWeights.prefix(split) + [1] + Array(repeating: 1, count: padding)
            remaining.removeFirst(min(split, remaining.count))
            remainingWeights.removeFirst(min(split, remainingWeights.count))
        } while !remaining.isEmpty

        // Each fragment's tokens found again in order, skipping the frames and padding between chunks.
        var ranges: [(range: ClosedRange<Int>?, weight: Double)] = [], from = 0
        for (index, fragmentIDs) in perFragment.enumerated() {
            guard let first = fragmentIDs.first else {
                ranges.append((nil, fragments[index].weight))
                continue
            }
            let notFound = CompelConditioningError.fragmentNotFound(fragments[index].text)
            while true {
                guard from < ids.count - 1 else { throw notFound }
                if ids[from] == first { break }
                from += 1
            }
            var last = from, matched = 0
            while true {
                guard last < ids.count - 1 else { throw notFound }
                if ids[last] == fragmentIDs[matched] {
                    matched += 1
                    if matched == fragmentIDs.count { break }
                    last += 1
                } else if [end, padID, start].contains(ids[last]) {
                    last += 1
                } else {
                    throw notFound
                }
            }
            ranges.append((from...last, fragments[index].weight))
            from = last + 1
        }
        return (CompelTokens.Run(ids: ids, weights: weights, fragments: ranges), tokens)
    }

    /// compel's `_find_next_best_split_point` in its default mode (SENTENCES): the token after the last full
    /// stop within `limit`, else after the last phrase mark, else after the last word's end, else `limit`.
    private func splitPoint(_ ids: [Int], limit: Int) -> Int {
        guard ids.count > limit else { return limit }
        let texts = ids.prefix(limit).map { tokenizer.token($0) ?? "" }
        let tests: [(String) -> Bool] = [{ $0 == ".</w>" }, { [".</w>", ",</w>", ";</w>", ":</w>"].contains($0) }, { $0.hasSuffix("</w>") }]
        for test in tests {
            if let index = texts.lastIndex(where: test) { return index + 1 }
        }
        return limit
    }

    /// [1, 77 · chunks, D]: compel's `build_conditioning_tensor_for_conjunction` for each part (a run, or a
    /// blend of runs padded to one length and mixed), parts of weight w moved from the empty prompt's
    /// embedding by w, then laid side by side. `empty` is `emptyCompelChunk()`, made once per request.
    package func encode(_ tokens: CompelTokens, empty: Tensor) -> Tensor {
        var pieces: [Tensor] = []
        for (part, weight) in zip(tokens.parts, tokens.partWeights) {
            var z: Tensor
            switch part {
            case .run(let run): z = encode(run, empty: empty)
            case .blend(let runs, let weights, let normalize):
                let zs = padded(runs.map { encode($0, empty: empty) }, empty: empty)
                var w = weights.map { Float($0) }
                if normalize {
                    let sum = w.reduce(0, +)
                    w = w.map { $0 / sum }
                }
                z = mix(zs, w)
            }
            if weight != 1 {
                let base = padded([empty, z], empty: empty)[0]
                let f = Float(weight)
                z = Tensor(shape: z.shape, storage: zip(base.storage, z.storage).map { b, v in b + (v - b) * f })
            }
            pieces.append(z)
        }
        return pieces.count == 1 ? pieces[0] : Tensor.concatenate(pieces, axis: 1)
    }

    /// compel's `empty_z`: start, end and padding through the text encoder, [1, 77, D].
    package func emptyCompelChunk() -> Tensor {
        let start = tokenizer.tokenID("<|startoftext|>") ?? 0, end = tokenizer.tokenID("<|endoftext|>") ?? 0
        return textEmbeddings(ids: [[start, end] + Array(repeating: padID, count: CompelTokens.window - 2)])
    }

    /// compel's `pad_conditioning_tensors_to_same_length`: the shorter ones get whole `empty` chunks.
    func padded(_ zs: [Tensor], empty: Tensor) -> [Tensor] {
        let longest = zs.map { $0.shape[1] }.max() ?? 0
        return zs.map { z in
            let missing = (longest - z.shape[1]) / CompelTokens.window
            return missing == 0 ? z : Tensor.concatenate([z] + Array(repeating: empty, count: missing), axis: 1)
        }
    }

    /// Σ wᵢ · zᵢ (compel's `apply_embedding_weights` after its normalisation).
    private func mix(_ zs: [Tensor], _ w: [Float]) -> Tensor {
        var out = [Float](repeating: 0, count: zs[0].count)
        for (z, wi) in zip(zs, w) {
            for i in out.indices { out[i] += z.storage[i] * wi }
        }
        return Tensor(shape: zs[0].shape, storage: out)
    }

    /// compel's `get_embeddings_for_weighted_prompt_fragments` for one run: the weighted embedding, and for
    /// each fragment weighted below 1 the weighted embedding with that fragment's keys masked out, mixed with
    /// weights 1 and tan((1 − w)·π/2) (normalised to their sum).
    private func encode(_ run: CompelTokens.Run, empty: Tensor) -> Tensor {
        let all = [Int](repeating: 1, count: run.ids.count)
        var versions = [weighted(run, mask: all, empty: empty)], lerp: [Float] = [1]
        for fragment in run.fragments where fragment.weight < 1 {
            // A fragment without tokens masks nothing (compel raises TypeError on it).
            guard let range = fragment.range else { continue }
            var mask = all
            for i in range { mask[i] = 0 }
            for chunk in 0..<run.chunks {
                mask[chunk * CompelTokens.window] = 1
                mask[chunk * CompelTokens.window + CompelTokens.window - 1] = 1
            }
            versions.append(weighted(run, mask: mask, empty: empty))
            lerp.append(Float(tan((1 - max(1e-5, fragment.weight)) * Double.pi / 2)))
        }
        guard versions.count > 1 else { return versions[0] }
        let sum = lerp.reduce(0, +)
        return mix(versions, lerp.map { $0 / sum })
    }

    /// compel's `build_weighted_embedding_tensor`: each chunk through the text encoder (with `mask` on its
    /// keys), each token of weight w ≠ 1 moved from the empty prompt's embedding by w.
    private func weighted(_ run: CompelTokens.Run, mask: [Int], empty: Tensor) -> Tensor {
        let w = CompelTokens.window
        let chunkIDs = (0..<run.chunks).map { Array(run.ids[($0 * w)..<(($0 + 1) * w)]) }
        let chunkMasks = (0..<run.chunks).map { Array(mask[($0 * w)..<(($0 + 1) * w)]) }
        let z = textEncoder(ids: chunkIDs, attentionMask: chunkMasks).lastHiddenState  // [chunks, 77, D]
        let width = z.shape[2]
        var out = z.storage
        for (t, weight) in run.weights.enumerated() where Float(weight) != 1 {
            let f = Float(weight), e = (t % w) * width
            for k in 0..<width { out[t * width + k] = empty.storage[e + k] + (out[t * width + k] - empty.storage[e + k]) * f }
        }
        return Tensor(shape: [1, run.ids.count, width], storage: out)
    }
}
