import ChorusTestSupport
import ChorusText
import Foundation
import Testing

/// The tokenizers of the real Whisper models give the ids CTranslate2 generated for the reference clips.
@Suite struct RealWhisperTokenizerTests {
    @Test(arguments: [
        ("whisper-tiny.en", " Hello world, this is a test of the speech service.", [18435, 995, 11, 428, 318, 257, 1332, 286, 262, 4046, 2139, 13]),
        ("whisper-tiny.en", " Please turn off the lights before you leave.", [4222, 1210, 572, 262, 7588, 878, 345, 2666, 13]),
        ("whisper-base", " Hello world, this is a test of the speech service.", [2425, 1002, 11, 341, 307, 257, 1500, 295, 264, 6218, 2643, 13]),
        ("whisper-base", " Please turn off the lights before you leave.", [2555, 1261, 766, 264, 5811, 949, 291, 1856, 13]),
    ])
    func textTokensMatchTheReference(model: String, text: String, ids: [Int]) throws {
        let tokenizer = try PipelineTokenizer(tokenizerJSON: URL(fileURLWithPath: RealModels.path("\(model)/tokenizer.json")))
        #expect(tokenizer.encode(text, addSpecialTokens: false) == ids)
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == text)
    }

    @Test func specialTokensHaveTheirRoles() throws {
        let english = try WhisperTokens(PipelineTokenizer(tokenizerJSON: URL(fileURLWithPath: RealModels.path("whisper-tiny.en/tokenizer.json"))))
        #expect(english.startOfTranscript == 50257 && english.endOfText == 50256 && english.timestampBegin == 50363)
        #expect(english.prompt(language: nil, timestamps: true) == [50257])
        let multilingual = try WhisperTokens(PipelineTokenizer(tokenizerJSON: URL(fileURLWithPath: RealModels.path("whisper-base/tokenizer.json"))))
        #expect(multilingual.prompt(language: "en", timestamps: true) == [50258, 50259, 50359])
        #expect(multilingual.timestampBegin == 50364 && multilingual.languages.count == 99)
    }
}
