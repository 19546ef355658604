import Testing
@testable import ChorusText

/// The hand-written GPT-2 and CLIP regexes against the pieces tokenizers' own Split (Oniguruma) cuts
/// from the same texts (extra_cases.json → pretokenize).
@Suite struct TextPatternTests {
    @Test(arguments: ["gpt2", "clip"])
    func piecesMatchTokenizersSplit(pattern name: String) throws {
        let pattern: TextPattern = name == "gpt2" ? GPT2Pattern() : CLIPPattern()
        let splits = try #require(try ExtraCases.load().pretokenize[name])
        #expect(!splits.isEmpty)
        for split in splits {
            let piece = TextPiece(text: split.text, isAtInputStart: true)
            let pieces = piece.split(by: pattern, behavior: .isolated).map(\.text)
            #expect(pieces.map(\.codePoints) == split.pieces.map(\.codePoints),
                    "\(split.text.debugDescription): \(pieces) ≠ \(split.pieces)")
        }
    }

    @Test func knownRegexesAreMatchedByHand() throws {
        #expect(try TextPatterns.regex(GPT2Pattern.source) is GPT2Pattern)
        #expect(try TextPatterns.regex(CLIPPattern.source) is CLIPPattern)
        #expect(try TextPatterns.regex(#"\s+"#) is WhitespaceRunPattern)
    }

    /// Any other regex goes through NSRegularExpression, with matches mapped back to scalar offsets.
    @Test func otherRegexesFallBackToFoundation() throws {
        let pattern = try TextPatterns.regex(#"\p{N}{1,3}"#)
        let text = Array("👋 12345 é".unicodeScalars)
        #expect(pattern.matches(in: text) == [2..<5, 5..<7])
    }

    @Test func unreadableRegexIsReported() {
        #expect(throws: TokenizerError.self) { try TextPatterns.regex("(unclosed") }
    }

    @Test func replaceCollapsesWhitespaceRuns() {
        #expect(WhitespaceRunPattern().replacingMatches(in: "a \t\n b  c", with: " ") == "a b c")
    }
}
