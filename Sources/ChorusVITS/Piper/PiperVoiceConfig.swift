import Foundation

/// A Piper voice's `.onnx.json`: sample rate, espeak-ng voice, default inference scales, the phoneme
/// to id map and the speakers.
package struct PiperVoiceConfig: Decodable, Sendable {
    package struct Audio: Decodable, Sendable {
        package var sampleRate: Int
        package enum CodingKeys: String, CodingKey { case sampleRate = "sample_rate" }
    }
    package struct Espeak: Decodable, Sendable { var voice: String }
    package struct Inference: Decodable, Sendable {
        package var noiseScale: Float = 0.667
        package var lengthScale: Float = 1
        package var noiseW: Float = 0.8
        package enum CodingKeys: String, CodingKey { case noiseScale = "noise_scale", lengthScale = "length_scale", noiseW = "noise_w" }
    }
    package struct Language: Decodable, Sendable {
        package var code: String?
    }

    package var audio: Audio
    package var espeak: Espeak
    package var inference: Inference
    package var phonemeType: String?
    package var phonemeIDMap: [String: [Int]]
    package var numSpeakers: Int?
    package var speakerIDMap: [String: Int]?
    package var language: Language?

    package enum CodingKeys: String, CodingKey {
        case audio, espeak, inference, language
        case phonemeType = "phoneme_type", phonemeIDMap = "phoneme_id_map", numSpeakers = "num_speakers", speakerIDMap = "speaker_id_map"
    }
}

/// Piper's mapping from phonemes to model input: '^' '_' then each phoneme followed by '_', then '$'.
/// Phonemes the voice has no id for are dropped (as Piper does) and reported back.
package struct PiperPhonemeIDs {
    package let map: [Unicode.Scalar: [Int]]

    package init(_ config: PiperVoiceConfig) {
        var map: [Unicode.Scalar: [Int]] = [:]
        for (key, ids) in config.phonemeIDMap {
            if key.unicodeScalars.count == 1, let scalar = key.unicodeScalars.first { map[scalar] = ids }
        }
        self.map = map
    }

    package func ids(_ phonemes: String) -> (ids: [Int], missing: Set<Character>) {
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
