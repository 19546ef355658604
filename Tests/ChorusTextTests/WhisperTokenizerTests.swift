import Testing
@testable import ChorusText

/// transformers' WhisperTokenizer behaviour beyond tokenizer.json: the prefix from language / task /
/// timestamps, and decoding that drops a previous-text prompt and timestamp tokens.
@Suite struct WhisperTokenizerTests {
    private func whisper(_ options: TokenizerOptions = TokenizerOptions()) throws -> WhisperTokenizer {
        try #require(try TokenizerLoader.load(folder: Fixtures.folder("whisper"), options: options) as? WhisperTokenizer)
    }

    @Test func prefixFollowsTheOptions() throws {
        let ids = { (token: String) in try #require(try self.whisper().tokenID(token)) }
        let (start, english, french) = (try ids("<|startoftranscript|>"), try ids("<|en|>"), try ids("<|fr|>"))
        let (transcribe, translate, noTimestamps) = (try ids("<|transcribe|>"), try ids("<|translate|>"), try ids("<|notimestamps|>"))

        #expect(try whisper().prefixIDs == [start, noTimestamps])
        #expect(try whisper(.init(whisperLanguage: "en", whisperTask: .transcribe)).prefixIDs
                == [start, english, transcribe, noTimestamps])
        #expect(try whisper(.init(whisperLanguage: "fr", whisperTask: .translate, whisperPredictsTimestamps: true)).prefixIDs
                == [start, french, translate])
    }

    @Test func encodeWrapsTheTextInPrefixAndEndOfText() throws {
        let tokenizer = try whisper(.init(whisperLanguage: "en"))
        let text = tokenizer.encodeWithoutSpecialTokens("hello world")
        #expect(tokenizer.encode("hello world") == tokenizer.prefixIDs + text + [tokenizer.endOfTextID])
    }

    @Test func unknownLanguageIsReported() {
        #expect(throws: TokenizerError.invalidOption("the Whisper vocabulary has no <|xx|> token")) {
            try whisper(.init(whisperLanguage: "xx"))
        }
    }

    @Test func timestampsAreRemovedFromText() {
        #expect(WhisperTokenizer.removingTimestamps("<|0.00|> Hi<|1.20|>!<|x.0|><|12.|>") == " Hi!<|x.0|><|12.|>")
    }
}
