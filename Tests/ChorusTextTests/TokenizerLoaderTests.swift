import Foundation
import Testing
@testable import ChorusText

@Suite struct TokenizerLoaderTests {
    @Test func picksTheTokenizerKindFromTheFolder() throws {
        #expect(try TokenizerLoader.load(folder: Fixtures.folder("clip")) is CLIPTokenizer)
        #expect(try TokenizerLoader.load(folder: Fixtures.folder("whisper")) is WhisperTokenizer)
        #expect(try TokenizerLoader.load(folder: Fixtures.folder("llava")) is PipelineTokenizer)
        #expect(try TokenizerLoader.load(folder: Fixtures.folder("vits")) is VitsTokenizer)
    }

    /// Older Stable Diffusion folders ship only vocab.json and merges.txt: built as transformers'
    /// CLIPTokenizer builds itself, the tokenizer must give the same ids as tokenizer.json's.
    @Test func clipFromVocabAndMergesMatchesTokenizerJSON() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clip-vocab-merges-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for file in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.folder("clip").appendingPathComponent(file),
                                             to: folder.appendingPathComponent(file))
        }
        let fromFiles = try TokenizerLoader.load(folder: folder)
        let fromJSON = try TokenizerLoader.load(folder: Fixtures.folder("clip"))
        let cases = try #require(try ExtraCases.load().tokenizers["clip"]).cases
        for reference in cases {
            #expect(fromFiles.encode(reference.text) == reference.ids, "encode \(reference.text.debugDescription)")
            #expect(fromFiles.decode(reference.ids, skipSpecialTokens: true) == fromJSON.decode(reference.ids, skipSpecialTokens: true))
        }
    }

    @Test func missingFolderNamesTheFile() {
        let folder = URL(fileURLWithPath: "/nonexistent/model")
        #expect {
            try TokenizerLoader.load(folder: folder)
        } throws: { error in
            String(describing: error).contains("/nonexistent/model/tokenizer.json")
        }
    }

    @Test func specialTokensAreLookedUpByName() throws {
        let llava = try TokenizerLoader.load(folder: Fixtures.folder("llava"))
        #expect(llava.tokenID("<image>") == 401)
        #expect(llava.tokenID("<s>") == 1)
        #expect(llava.token(401) == "<image>")
        #expect(llava.tokenID("no such token") == nil)
    }

    /// The post-processor's tokens are left out on request; special tokens written in the text are not.
    @Test func encodeWithoutSpecialTokens() throws {
        let llava = try PipelineTokenizer(tokenizerJSON: Fixtures.folder("llava").appendingPathComponent("tokenizer.json"))
        let withBOS = llava.encode("USER: <image>")
        #expect(withBOS.first == 1)
        #expect(llava.encode("USER: <image>", addSpecialTokens: false) == Array(withBOS.dropFirst()))
        #expect(llava.isSpecialToken(401))
        #expect(!llava.isSpecialToken(withBOS[1]))
    }
}
