import ChorusTensor

/// How a request's prompt and negative prompt become the UNet's context.
public enum PromptSyntax: String, Sendable, CaseIterable {
    /// AUTOMATIC1111's: `(word:1.3)` weights, `BREAK`, prompts of any length in 75-token chunks (the default).
    case a1111
    /// compel's (`word+`, `(a photo)1.3`, `.blend()`, `.and()`), embedded as `CompelForSD` embeds it:
    /// prompts of any length in 77-token chunks.
    case compel
    /// diffusers' `encode_prompt`: the text as it is, cut at the text encoder's 77 tokens.
    case plain
}

/// The context of one run: the prompt's and (when guided) the negative prompt's embeddings, [1, L, D] each
/// and of one length L, and what became of the text.
package struct PromptConditioning: Sendable {
    package var cond: Tensor
    package var uncond: Tensor?
    /// The prompt's tokens as A1111 counts them (plain: as the tokenizer gives them, start and end aside).
    package var promptTokens: Int
    /// Plain prompts past 77 tokens lose the rest; this many.
    package var truncatedTokens: Int
}

package enum PromptConditioningError: Error, CustomStringConvertible {
    case tooLong(tokens: Int, limit: Int)

    package var description: String {
        switch self {
        case .tooLong(let tokens, let limit):
            "the prompt is \(tokens) tokens; the limit is \(limit) (\(limit / PromptChunks.length) chunks of \(PromptChunks.length))"
        }
    }
}

extension StableDiffusionPipeline {
    /// Chunks past this many are refused: each adds 77 keys to every cross-attention of every step.
    package static let maxPromptChunks = 32

    /// `prompt` in A1111's chunks with this folder's tokenizer (its start, end and comma tokens).
    public func chunks(_ prompt: A1111Prompt) -> PromptChunks {
        let start = tokenizer.tokenID("<|startoftext|>") ?? 0, end = tokenizer.tokenID("<|endoftext|>") ?? 0
        return PromptChunks(prompt, start: start, end: end, comma: tokenizer.tokenID(",</w>"), tokenize: fragmentIDs)
    }

    /// [1, 77 · chunks, D]: every chunk through the text encoder, then A1111's "Original" emphasis on each —
    /// the outputs times their tokens' weights, rescaled to the chunk's mean before weighting. A tokenizer
    /// whose padding is not end-of-text (SD 2.x) pads after the chunk's first end-of-text, as A1111 does.
    package func encode(_ chunks: PromptChunks) -> Tensor {
        let end = tokenizer.tokenID("<|endoftext|>") ?? padID
        let ids = chunks.tokens.map { tokens -> [Int] in
            guard padID != end, let first = tokens.firstIndex(of: end) else { return tokens }
            return Array(tokens[...first]) + Array(repeating: padID, count: tokens.count - first - 1)
        }
        let z = textEmbeddings(ids: ids)  // [chunks, 77, D]
        let perChunk = z.count / max(1, ids.count), width = z.shape[2]
        var out = z.storage
        for (c, multipliers) in chunks.multipliers.enumerated() {
            let range = (c * perChunk)..<((c + 1) * perChunk)
            let originalMean = Float(out[range].reduce(0.0) { $0 + Double($1) } / Double(perChunk))
            for (t, weight) in multipliers.enumerated() where weight != 1 {
                let factor = Float(weight)
                for k in 0..<width { out[range.lowerBound + t * width + k] *= factor }
            }
            let newMean = Float(out[range].reduce(0.0) { $0 + Double($1) } / Double(perChunk))
            let rescale = originalMean / newMean
            for i in range { out[i] *= rescale }
        }
        return Tensor(shape: [1, ids.count * z.shape[1], width], storage: out)
    }

    /// The chunks of the prompt and (when guided) the negative prompt; a syntax error or a prompt past
    /// `maxPromptChunks` chunks throws, naming the problem.
    package func checkedChunks(prompt: String, negative: String, guided: Bool) throws -> (PromptChunks, PromptChunks?) {
        let promptChunks = chunks(try A1111Prompt(parsing: prompt))
        let negativeChunks = guided ? chunks(try A1111Prompt(parsing: negative)) : nil
        for c in [promptChunks, negativeChunks].compactMap({ $0 }) where c.tokens.count > Self.maxPromptChunks {
            throw PromptConditioningError.tooLong(tokens: c.tokenCount, limit: Self.maxPromptChunks * PromptChunks.length)
        }
        return (promptChunks, negativeChunks)
    }

    /// The compel layout of the prompt and (when guided) the negative prompt; a syntax error, a prompt past
    /// `maxPromptChunks` chunks or `maxCompelEncoderPasses` passes throws, naming the problem.
    package func checkedCompelTokens(prompt: String, negative: String, guided: Bool) throws -> (CompelTokens, CompelTokens?) {
        let promptTokens = try compelTokens(CompelPrompt(parsing: prompt))
        let negativeTokens = guided ? try compelTokens(CompelPrompt(parsing: negative)) : nil
        return (promptTokens, negativeTokens)
    }

    /// The prompt's context and, when guided, the negative's: A1111 weighs and chunks both and pads the
    /// shorter with whole chunks of the empty prompt's embedding (its `pad_cond_uncond`); plain encodes
    /// one 77-token window each, as diffusers does.
    package func conditioning(prompt: String, negative: String, syntax: PromptSyntax, guided: Bool) throws -> PromptConditioning {
        switch syntax {
        case .plain:
            let cond = textEmbeddings(ids: [tokenize(prompt)])
            let uncond = guided ? textEmbeddings(ids: [tokenize(negative)]) : nil
            return PromptConditioning(cond: cond, uncond: uncond, promptTokens: plainTokenCount(prompt),
                                      truncatedTokens: truncatedTokens(prompt))
        case .compel:
            let (promptTokens, negativeTokens) = try checkedCompelTokens(prompt: prompt, negative: negative, guided: guided)
            let empty = emptyCompelChunk()
            let cond = encode(promptTokens, empty: empty)
            guard let negativeTokens else {
                return PromptConditioning(cond: cond, uncond: nil, promptTokens: promptTokens.tokenCount, truncatedTokens: 0)
            }
            let both = padded([cond, encode(negativeTokens, empty: empty)], empty: empty)
            return PromptConditioning(cond: both[0], uncond: both[1], promptTokens: promptTokens.tokenCount, truncatedTokens: 0)
        case .a1111:
            let (promptChunks, negativeChunks) = try checkedChunks(prompt: prompt, negative: negative, guided: guided)
            var cond = encode(promptChunks)
            guard let negativeChunks else {
                return PromptConditioning(cond: cond, uncond: nil, promptTokens: promptChunks.tokenCount, truncatedTokens: 0)
            }
            var uncond = encode(negativeChunks)
            let (have, want) = (negativeChunks.tokens.count, promptChunks.tokens.count)
            if have != want {
                let empty = encode(chunks(try A1111Prompt(parsing: "")))
                let padding = Array(repeating: empty, count: abs(have - want))
                if have < want {
                    uncond = Tensor.concatenate([uncond] + padding, axis: 1)
                } else {
                    cond = Tensor.concatenate([cond] + padding, axis: 1)
                }
            }
            return PromptConditioning(cond: cond, uncond: uncond, promptTokens: promptChunks.tokenCount, truncatedTokens: 0)
        }
    }
}
