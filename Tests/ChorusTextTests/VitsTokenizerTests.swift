import Testing
@testable import ChorusText

/// The MMS-TTS character vocabulary: blanks interleaved, unknown characters dropped after lowercasing.
@Suite struct VitsTokenizerTests {
    private let tokenizer = Result { try VitsTokenizer(folder: Fixtures.folder("vits")) }

    @Test func blanksSurroundEveryCharacter() throws {
        let vits = try tokenizer.get()
        let (a, b) = (try #require(vits.tokenID("a")), try #require(vits.tokenID("b")))
        #expect(vits.encode("Ab!") == [0, a, 0, b, 0])
        #expect(vits.decode([0, a, 0, b, 0], skipSpecialTokens: false) == "ab")
    }

    @Test func textWithoutVocabularyCharactersIsEmpty() throws {
        #expect(try tokenizer.get().encode("!?…") == [])
    }
}
