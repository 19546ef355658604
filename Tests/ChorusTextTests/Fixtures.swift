import Foundation
@testable import ChorusText

/// The test data in Tests/ChorusTextTests/Fixtures, copied from the shared fixtures or made by
/// scripts/fixtures/make_extra_tokenizer_cases.py.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func folder(_ name: String) -> URL {
        root.appendingPathComponent(name)
    }

    static func decode<T: Decodable>(_ type: T.Type, from file: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: root.appendingPathComponent(file)))
    }
}

/// One tokenizer's expected outputs, in the layout of tokenizer_cases.json.
struct TokenizerCases: Decodable {
    struct EncodeCase: Decodable {
        let text: String
        let ids: [Int]
        let decoded: String
    }

    struct DecodeCase: Decodable {
        let ids: [Int]
        let skipSpecialTokens: Bool
        let decoded: String

        enum CodingKeys: String, CodingKey {
            case ids, decoded
            case skipSpecialTokens = "skip_special_tokens"
        }
    }

    let folder: String
    let decodeSkipSpecialTokens: Bool
    let cases: [EncodeCase]
    let decodeCases: [DecodeCase]?
    let language: String?
    let task: String?

    enum CodingKeys: String, CodingKey {
        case folder, cases, language, task
        case decodeSkipSpecialTokens = "decode_skip_special_tokens"
        case decodeCases = "decode_cases"
    }

    func loadTokenizer(options: TokenizerOptions = TokenizerOptions()) throws -> any Tokenizer {
        var options = options
        if let language { options.whisperLanguage = language }
        if let task { options.whisperTask = WhisperTokenizer.Task(rawValue: task) }
        return try TokenizerLoader.load(folder: Fixtures.folder(folder), options: options)
    }
}

/// extra_cases.json.
struct ExtraCases: Decodable {
    struct Split: Decodable {
        let text: String
        let pieces: [String]
    }

    let tokenizers: [String: TokenizerCases]
    let pretokenize: [String: [Split]]

    static func load() throws -> ExtraCases {
        try Fixtures.decode(ExtraCases.self, from: "extra_cases.json")
    }
}

extension String {
    /// Swift's `==` treats canonically equivalent strings as equal; tokenizers' outputs must agree
    /// code point for code point.
    var codePoints: [UInt32] { unicodeScalars.map(\.value) }
}
