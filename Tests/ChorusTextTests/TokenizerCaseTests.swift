import ChorusText
import Foundation
import Testing

/// Every case of tokenizer_cases.json (made with transformers' tokenizers), exactly.
@Suite struct TokenizerCaseTests {
    struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String }
    struct Family: Decodable {
        let folder: String
        let decode_skip_special_tokens: Bool
        let cases: [Case]
    }

    static let families: [String: Family] = {
        let path = Bundle.module.path(forResource: "tokenizer_cases", ofType: "json", inDirectory: "Fixtures")!
        return try! JSONDecoder().decode([String: Family].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }()

    static func folder(_ name: String) -> String {
        Bundle.module.resourcePath! + "/Fixtures/" + name
    }

    /// WhisperTokenizer.from_pretrained(folder, language="en", task="transcribe").encode(text)
    static func whisperEncode(_ tokenizer: HFTokenizer, _ text: String) throws -> [Int] {
        let special = try WhisperTokens(tokenizer)
        return special.prompt(language: "en", timestamps: false) + tokenizer.encodeWithoutTemplate(text) + [special.endOfText]
    }

    @Test(arguments: ["clip", "whisper", "llava", "vits"])
    func encodesAndDecodesEveryCaseExactly(family name: String) throws {
        let family = try #require(Self.families[name])
        let tokenizer = try TokenizerLoader.load(folder: Self.folder(family.folder))
        for item in family.cases {
            let ids = name == "whisper" ? try Self.whisperEncode(tokenizer as! HFTokenizer, item.text) : tokenizer.encode(item.text)
            #expect(ids == item.ids, "\(name) encode \(item.text.debugDescription)")
            #expect(tokenizer.decode(item.ids, skipSpecialTokens: family.decode_skip_special_tokens) == item.decoded,
                    "\(name) decode \(item.ids)")
        }
    }

    @Test func brokenTokenizerFilesAreReportedNotCrashed() {
        #expect(throws: TokenizerError.self) { try HFTokenizer(json: Data("{}".utf8)) }
        #expect(throws: TokenizerError.self) { try HFTokenizer(json: Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8)) }
        #expect(throws: TokenizerError.self) { try TokenizerLoader.load(folder: "/nonexistent") }
        #expect(throws: (any Error).self) { try HFTokenizer(json: Data("not json".utf8)) }
    }
}

@Suite struct LegacyFilesTests {
    /// A CLIP folder with only vocab.json + merges.txt tokenizes exactly as its tokenizer.json does.
    @Test func clipFromVocabAndMergesMatchesTheCases() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clip-legacy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: TokenizerCaseTests.folder("clip") + "/" + name, toPath: folder.appendingPathComponent(name).path)
        }
        let tokenizer = try TokenizerLoader.load(folder: folder.path)
        for item in TokenizerCaseTests.families["clip"]!.cases {
            #expect(tokenizer.encode(item.text) == item.ids, "\(item.text.debugDescription)")
            #expect(tokenizer.decode(item.ids, skipSpecialTokens: true) == item.decoded)
        }
    }
}
