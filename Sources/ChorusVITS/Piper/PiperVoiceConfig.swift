import Foundation

/// A Piper voice's `.onnx.json`: sample rate, espeak-ng voice, default inference scales, the phoneme
/// to id map and the speakers.
struct PiperVoiceConfig: Decodable, Sendable {
    struct Audio: Decodable, Sendable {
        var sampleRate: Int
        enum CodingKeys: String, CodingKey { case sampleRate = "sample_rate" }
    }
    struct Espeak: Decodable, Sendable { var voice: String }
    struct Inference: Decodable, Sendable {
        var noiseScale: Float = 0.667
        var lengthScale: Float = 1
        var noiseW: Float = 0.8
        enum CodingKeys: String, CodingKey { case noiseScale = "noise_scale", lengthScale = "length_scale", noiseW = "noise_w" }
    }
    struct Language: Decodable, Sendable {
        var code: String?
    }

    var audio: Audio
    var espeak: Espeak
    var inference: Inference
    var phonemeType: String?
    var phonemeIDMap: [String: [Int]]
    var numSpeakers: Int?
    var speakerIDMap: [String: Int]?
    var language: Language?

    enum CodingKeys: String, CodingKey {
        case audio, espeak, inference, language
        case phonemeType = "phoneme_type", phonemeIDMap = "phoneme_id_map", numSpeakers = "num_speakers", speakerIDMap = "speaker_id_map"
    }
}

/// Piper's mapping from phonemes to model input: '^' '_' then each phoneme followed by '_', then '$'.
/// Phonemes the voice has no id for are dropped (as Piper does) and reported back.
struct PiperPhonemeIDs {
    let map: [Unicode.Scalar: [Int]]

    init(_ config: PiperVoiceConfig) {
        var map: [Unicode.Scalar: [Int]] = [:]
        for (key, ids) in config.phonemeIDMap {
            if key.unicodeScalars.count == 1, let scalar = key.unicodeScalars.first { map[scalar] = ids }
        }
        self.map = map
    }

    func ids(_ phonemes: String) -> (ids: [Int], missing: Set<Character>) {
        let pad = map["_"] ?? [0]
        var ids = (map["^"] ?? [1]) + pad
        var missing = Set<Character>()
        for scalar in phonemes.decomposedStringWithCanonicalMapping.unicodeScalars {
            guard let id = map[scalar] else {
                missing.insert(Character(scalar))
                continue
            }
            ids += id + pad
        }
        return (ids + (map["$"] ?? [2]), missing)
    }
}
