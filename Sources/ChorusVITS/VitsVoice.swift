import ChorusText
import Foundation

/// A loaded voice: a VITS model with the front end that turns text into its ids — espeak-ng phonemes
/// for Piper voices, the character vocabulary for Hugging Face (MMS-TTS) folders.
package final class VitsVoice: Sendable {
    package enum FrontEnd: Sendable {
        case piper(PiperPhonemeIDs, espeakVoice: String, EspeakPhonemizer)
        case characters(VitsTokenizer)
    }

    package struct Scales: Sendable {
        package var noise: Float
        package var lengthScale: Float
        package var noiseW: Float
    }

    package let name: String
    package let kind: VoiceKind
    package let language: String
    package let model: VitsModel
    package let frontEnd: FrontEnd
    package let defaults: Scales
    package let speakerNames: [String: Int]

    package init(name: String, kind: VoiceKind, language: String, model: VitsModel, frontEnd: FrontEnd, defaults: Scales, speakerNames: [String: Int] = [:]) {
        self.name = name
        self.kind = kind
        self.language = language
        self.model = model
        self.frontEnd = frontEnd
        self.defaults = defaults
        self.speakerNames = speakerNames
    }

    /// A Piper voice: `<voice>.onnx` with `<voice>.onnx.json` beside it.
    package convenience init(name: String, piperONNX path: String, espeak: EspeakPhonemizer = EspeakPhonemizer()) throws {
        let config = try JSONDecoder().decode(PiperVoiceConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path + ".json")))
        let (weights, vits) = try PiperWeights.open(onnx: path, voice: config)
        try self.init(name: name, kind: .piper, language: config.language?.code ?? config.espeak.voice,
                      model: VitsModel(weights: weights, config: vits),
                      frontEnd: .piper(PiperPhonemeIDs(config), espeakVoice: config.espeak.voice, espeak),
                      defaults: Scales(noise: config.inference.noiseScale, lengthScale: config.inference.lengthScale, noiseW: config.inference.noiseW),
                      speakerNames: config.speakerIDMap ?? [:])
    }

    /// A Hugging Face VitsModel folder (facebook/mms-tts-* layout).
    package convenience init(name: String, huggingFaceFolder folder: String) throws {
        let model = try VitsModel(folder: folder)
        let tokenizer = try VitsTokenizer(folder: URL(fileURLWithPath: folder))
        let c = model.config
        self.init(name: name, kind: .mmsTTS, language: Self.language(folder) ?? "", model: model, frontEnd: .characters(tokenizer),
                      defaults: Scales(noise: c.noiseScale, lengthScale: 1 / max(c.speakingRate, 0.01), noiseW: c.noiseScaleDuration))
    }

    package var sampleRate: Int { model.sampleRate }
    package var speakers: Int { model.config.numSpeakers }

    /// Model ids for one sentence; the characters the voice has no symbol for come back too.
    package func ids(_ sentence: String) throws -> (ids: [Int], missing: Set<Character>, phonemes: String) {
        switch frontEnd {
        case .piper(let map, let voice, let espeak):
            let phonemes = try espeak.phonemes(sentence, voice: voice)
            let (ids, missing) = map.ids(phonemes)
            return (ids, missing, phonemes)
        case .characters(let tokenizer):
            return (tokenizer.encode(sentence), [], sentence)
        }
    }

    private static func language(_ folder: String) -> String? {
        guard let data = FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent("tokenizer_config.json")),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return json["language"] as? String
    }
}

/// Where a voice came from, which decides its text front end: Piper (espeak-ng phonemes) or a Hugging
/// Face VitsModel folder (MMS-TTS, characters).
package enum VoiceKind: String, Sendable {
    case piper
    case mmsTTS = "mms-tts"
}
