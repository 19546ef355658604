import ChorusTensor
import Foundation
@testable import SpeechService
import Testing
import ChorusVITS

/// Piper's front end: espeak-ng IPA with clause punctuation, mapped through the voice's phoneme_id_map.
@Suite struct PiperPhonemizerTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/piper"
    static let config = try! JSONDecoder().decode(PiperVoiceConfig.self,
                                                  from: Data(contentsOf: URL(fileURLWithPath: folder + "/en_US-joe-medium.onnx.json")))
    let espeak = EspeakPhonemizer()

    @Test func espeakIsInstalled() {
        #expect(espeak.isAvailable, "espeak-ng is missing: run scripts/install-deps (apt-get install espeak-ng)")
    }

    /// ../shared/real: piper-tts's phonemes for the ASR clip's sentence, and for "Hello world" its ids.
    @Test func phonemesMatchPiper() throws {
        #expect(try espeak.phonemes("Hello world, this is a test of the speech service.", voice: "en-us")
                == "həlˈoʊ wˈɜːld, ðɪs ɪz ɐ tˈɛst ʌvðə spˈiːtʃ sˈɜːvɪs.")
        let phonemes = try espeak.phonemes("Hello world", voice: "en-us")
        #expect(phonemes == "həlˈoʊ wˈɜːld")
        let recorded = try SafeTensorsFile(path: Self.folder + "/piper.safetensors").int64s("hello_world.phoneme_ids").map(Int.init)
        let (ids, missing) = PiperPhonemeIDs(Self.config).ids(phonemes)
        #expect(ids == recorded && missing.isEmpty)
    }

    @Test func sentencesSplitWhereSpeechPauses() {
        #expect(EspeakPhonemizer.sentences("Hello there. Dr. Smith paid $5.50! Really?! Yes\n\nNew paragraph")
                == ["Hello there.", "Dr. Smith paid $5.50!", "Really?!", "Yes", "New paragraph"])
        #expect(EspeakPhonemizer.clausePunctuation("One, two; three: four.") == [",", ";", ":", "."])
        #expect(EspeakPhonemizer.clausePunctuation("Pi is 3.14, roughly") == [",", ""])
    }

    @Test func unknownCharactersAreReportedNotFatal() throws {
        let (ids, missing) = PiperPhonemeIDs(Self.config).ids("a☃b")
        #expect(missing == ["☃"] && ids.count == 2 + 2 * 2 + 1)
        // espeak-ng itself copes with any Unicode (it spells or skips what it cannot say).
        _ = try espeak.phonemes("😀 ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", voice: "en-us")
    }
}
