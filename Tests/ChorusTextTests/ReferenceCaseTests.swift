import Foundation
import Testing
@testable import ChorusText

/// The shared tokenizer_cases.json (made by make_fixtures.py with transformers 5.23 / tokenizers 0.23.3)
/// and the extra cases of scripts/make_extra_tokenizer_cases.py: ids must equal the reference exactly,
/// and so must the decoded text.
@Suite struct ReferenceCaseTests {
    /// make_fixtures.py loads Whisper with language="en", task="transcribe"; the file does not say so.
    static let sharedCaseOptions = ["whisper": TokenizerOptions(whisperLanguage: "en", whisperTask: .transcribe)]

    @Test(arguments: ["clip", "whisper", "llava", "vits"])
    func sharedFixtureCases(name: String) throws {
        let all = try Fixtures.decode([String: TokenizerCases].self, from: "tokenizer_cases.json")
        let entry = try #require(all[name])
        let tokenizer = try entry.loadTokenizer(options: Self.sharedCaseOptions[name] ?? TokenizerOptions())
        check(entry, with: tokenizer)
    }

    @Test(arguments: ["clip", "whisper", "whisper_default_prefix", "llava", "llava_legacy", "vits"])
    func extraCases(name: String) throws {
        let entry = try #require(try ExtraCases.load().tokenizers[name])
        check(entry, with: try entry.loadTokenizer())
    }

    private func check(_ entry: TokenizerCases, with tokenizer: any Tokenizer) {
        #expect(!entry.cases.isEmpty)
        for reference in entry.cases {
            let ids = tokenizer.encode(reference.text)
            #expect(ids == reference.ids, "encode \(reference.text.debugDescription)")
            let decoded = tokenizer.decode(reference.ids, skipSpecialTokens: entry.decodeSkipSpecialTokens)
            #expect(decoded.codePoints == reference.decoded.codePoints,
                    "decode of \(reference.text.debugDescription): \(decoded.debugDescription) ≠ \(reference.decoded.debugDescription)")
        }
        for reference in entry.decodeCases ?? [] {
            let decoded = tokenizer.decode(reference.ids, skipSpecialTokens: reference.skipSpecialTokens)
            #expect(decoded.codePoints == reference.decoded.codePoints,
                    "decode \(reference.ids) skip=\(reference.skipSpecialTokens): \(decoded.debugDescription) ≠ \(reference.decoded.debugDescription)")
        }
    }
}
