/// A weighted prompt cut into the text encoder's windows as AUTOMATIC1111 cuts it (`sd_hijack_clip.py`,
/// `FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line`): each piece's tokens carry its weight; every 75
/// tokens close a chunk, framed as start-of-text, the 75 (padded with end-of-text), end-of-text; a token that
/// would open the 76th moves the text after the last comma of the chunk (within `backtrack` tokens) into the
/// next one; `BREAK` closes a chunk early. A prompt of any length is so many 77-token chunks, each encoded
/// on its own and then laid side by side.
public struct PromptChunks: Equatable, Sendable {
    /// Prompt tokens per chunk, start and end of text aside.
    public static let length = 75

    /// 77 ids a chunk.
    public var tokens: [[Int]]
    /// 77 weights a chunk, 1 at the frame and the padding.
    public var multipliers: [[Double]]
    /// A1111's token count: 75 for every chunk but the last, whose own tokens count.
    public var tokenCount: Int

    public init(tokens: [[Int]], multipliers: [[Double]], tokenCount: Int) {
        (self.tokens, self.multipliers, self.tokenCount) = (tokens, multipliers, tokenCount)
    }

    /// `tokenize` gives a piece's ids without start and end of text; `comma` is the vocabulary's ",</w>" (nil:
    /// no comma backtracking); `backtrack` is A1111's `comma_padding_backtrack` (20 by default).
    public init(_ prompt: A1111Prompt, start: Int, end: Int, comma: Int?, backtrack: Int = 20, tokenize: (String) -> [Int]) {
        var chunks: [(tokens: [Int], multipliers: [Double])] = []
        var chunkTokens: [Int] = [], chunkMultipliers: [Double] = []
        var tokenCount = 0, lastComma = -1
        func nextChunk(isLast: Bool = false) {
            tokenCount += isLast ? chunkTokens.count : Self.length
            let padding = max(0, Self.length - chunkTokens.count)
            chunks.append(([start] + chunkTokens + Array(repeating: end, count: padding) + [end],
                           [1] + chunkMultipliers + Array(repeating: 1, count: padding) + [1]))
            (chunkTokens, chunkMultipliers, lastComma) = ([], [], -1)
        }
        for piece in prompt.pieces {
            if piece.isBreak {
                nextChunk()
                continue
            }
            for token in tokenize(piece.text) {
                if token == comma {
                    lastComma = chunkTokens.count
                } else if backtrack != 0, chunkTokens.count == Self.length, lastComma != -1, chunkTokens.count - lastComma <= backtrack {
                    // The text after the last comma moves whole into the next chunk.
                    let moved = (chunkTokens[(lastComma + 1)...], chunkMultipliers[(lastComma + 1)...])
                    chunkTokens.removeSubrange((lastComma + 1)...)
                    chunkMultipliers.removeSubrange((lastComma + 1)...)
                    nextChunk()
                    (chunkTokens, chunkMultipliers) = (Array(moved.0), Array(moved.1))
                }
                if chunkTokens.count == Self.length { nextChunk() }
                chunkTokens.append(token)
                chunkMultipliers.append(piece.weight)
            }
        }
        if !chunkTokens.isEmpty || chunks.isEmpty { nextChunk(isLast: true) }
        self.init(tokens: chunks.map(\.tokens), multipliers: chunks.map(\.multipliers), tokenCount: tokenCount)
    }
}
