import Testing
@testable import ChorusText

/// The merge loop on a vocabulary small enough to follow by hand.
@Suite struct BPEModelTests {
    private func model(_ tokens: [String], merges: [(String, String)], options: BPEModel.Options = .init()) throws -> BPEModel {
        let vocabulary = Vocabulary(tokens.enumerated().map { (token: $0.element, id: $0.offset) })
        return try BPEModel(vocabulary: vocabulary, merges: merges, options: options, path: "test")
    }

    /// "abc" with merges ranked (b c) before (a b) must merge b+c first, whatever their order in the word.
    @Test func lowestRankMergesFirst() throws {
        let bpe = try model(["a", "b", "c", "ab", "bc", "abc"], merges: [("b", "c"), ("a", "bc"), ("a", "b")])
        #expect(bpe.tokenize("abc") == [5])
        #expect(bpe.tokenize("ab") == [3])
    }

    /// Among equal pairs the leftmost merges first: "aaa" → "aa" "a", not "a" "aa".
    @Test func leftmostWinsAmongEqualRanks() throws {
        let bpe = try model(["a", "aa"], merges: [("a", "a")])
        #expect(bpe.tokenize("aaa") == [1, 0])
        #expect(bpe.tokenize("aaaa") == [1, 1])
    }

    /// A long word goes through the priority queue; a quadratic scan would take seconds here.
    @Test func longWordMergesCompletely() throws {
        let bpe = try model(["a", "aa", "aaaa"], merges: [("a", "a"), ("aa", "aa")])
        let ids = bpe.tokenize(String(repeating: "a", count: 100_001))
        #expect(ids == Array(repeating: 2, count: 25_000) + [0])
    }

    @Test func unknownCharactersFuseWhenAsked() throws {
        var options = BPEModel.Options()
        options.unknownToken = "<unk>"
        #expect(try model(["<unk>", "a"], merges: [], options: options).tokenize("a??a") == [1, 0, 0, 1])
        options.fusesUnknown = true
        #expect(try model(["<unk>", "a"], merges: [], options: options).tokenize("a??a") == [1, 0, 1])
    }

    @Test func byteFallbackSpellsMissingCharacters() throws {
        var options = BPEModel.Options()
        options.byteFallback = true
        let bytes = (0...255).map { ByteFallbackToken.spelling(of: UInt8($0)) }
        let bpe = try model(bytes + ["a"], merges: [], options: options)
        #expect(bpe.tokenize("aé") == [256, 0xC3, 0xA9])
    }

    @Test func endOfWordSuffixMarksTheLastSymbol() throws {
        var options = BPEModel.Options()
        options.endOfWordSuffix = "</w>"
        let bpe = try model(["a", "b", "a</w>", "b</w>", "ab</w>"], merges: [("a", "b</w>")], options: options)
        #expect(bpe.tokenize("ab") == [4])
        #expect(bpe.tokenize("ba") == [1, 2])
    }

    @Test func mergeOutsideTheVocabularyIsAnError() {
        #expect(throws: TokenizerError.self) { try model(["a", "b"], merges: [("a", "b")]) }
    }

    /// "Å" (U+212B) and "Å" (U+00C5) are canonically equivalent; Swift's String keys would confuse them.
    @Test func vocabularyKeysAreExactCodePoints() {
        let vocabulary = Vocabulary([(token: "\u{00C5}", id: 0), (token: "\u{212B}", id: 1)])
        #expect(vocabulary.id("\u{00C5}") == 0)
        #expect(vocabulary.id("\u{212B}") == 1)
    }
}
