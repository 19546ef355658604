import Testing
@testable import ChorusText

/// The five delimiter behaviours, on the example of tokenizers' own `NormalizedString::split` test.
@Suite struct SplitBehaviorTests {
    private func pieces(_ behavior: SplitBehavior, invert: Bool = false) -> [String] {
        TextPiece(text: "The-final--countdown", isAtInputStart: true)
            .split(by: LiteralPattern("-"), behavior: behavior, invert: invert)
            .map(\.text)
    }

    @Test func behavioursMatchTokenizers() {
        #expect(pieces(.removed) == ["The", "final", "countdown"])
        #expect(pieces(.isolated) == ["The", "-", "final", "-", "-", "countdown"])
        #expect(pieces(.mergedWithPrevious) == ["The-", "final-", "-", "countdown"])
        #expect(pieces(.mergedWithNext) == ["The", "-final", "-", "-countdown"])
        #expect(pieces(.contiguous) == ["The", "-", "final", "--", "countdown"])
    }

    @Test func invertKeepsTheMatches() {
        #expect(pieces(.removed, invert: true) == ["-", "-", "-"])
    }

    /// Only the piece that starts the input keeps the flag Metaspace's "first" scheme looks at.
    @Test func onlyTheFirstPieceIsAtInputStart() {
        let split = TextPiece(text: "a b", isAtInputStart: true).split(by: LiteralPattern(" "), behavior: .removed)
        #expect(split.map(\.isAtInputStart) == [true, false])
    }
}
