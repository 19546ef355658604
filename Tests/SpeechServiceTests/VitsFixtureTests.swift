import ChorusTensor
import ChorusTestSupport
import ChorusText
import Foundation
@testable import SpeechService
import Testing
import ChorusVITS

/// The tiny random VitsModel of ../shared/fixtures/vits, made with transformers: both manifest cases.
@Suite struct VitsFixtureTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/vits"
    static let fixture = try! SafeTensorsFile(path: folder + "/fixtures.safetensors")
    static let model = try! VitsModel(folder: folder)

    func expectClose(_ actual: [Float], _ name: String, atol: Float = 4e-5, rtol: Float = 1e-4,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let mismatch = fixtureMismatch(name, actual, try Self.fixture.tensor(name).storage, atol: atol, rtol: rtol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    func ids() throws -> [Int] { try Self.fixture.int64s("input_ids").map(Int.init) }

    @Test func tokenizerGivesTheFixtureIDs() throws {
        let tokenizer = try TokenizerLoader.load(folder: URL(fileURLWithPath: Self.folder))
        #expect(tokenizer.encode("the quick brown fox") == (try ids()))
    }

    @Test func deterministicCaseMatchesTransformers() throws {
        let out = Self.model.synthesize(try ids(), noise: .init(scale: 0, durationScale: 0, lengthScale: 1))
        try expectClose(out.logDurations, "det_log_duration")
        try expectClose(out.spectrogram.storage, "det_spectrogram")
        try expectClose(out.waveform, "det_waveform")
        #expect(out.waveform.count == (try Self.fixture.int64s("det_sequence_lengths")[0]))
    }

    @Test func recordedNoiseCaseMatchesTransformers() throws {
        let noise = VitsModel.Noise(scale: 0.667, durationScale: 0.8, lengthScale: 1,
                                    duration: try Self.fixture.tensor("noise_duration"), prior: try Self.fixture.tensor("noise_prior"))
        let out = Self.model.synthesize(try ids(), noise: noise)
        try expectClose(out.waveform, "noisy_waveform")
        #expect(out.waveform.count == (try Self.fixture.int64s("noisy_sequence_lengths")[0]))
    }

    @Test func aSeedGivesTheSameAudioAndAnotherSeedOther() {
        let ids = [0, 23, 0, 11, 0, 5, 0]
        let a = Self.model.synthesize(ids, noise: .init(scale: 0.667, durationScale: 0.8, lengthScale: 1, seed: 7)).waveform
        let b = Self.model.synthesize(ids, noise: .init(scale: 0.667, durationScale: 0.8, lengthScale: 1, seed: 7)).waveform
        let c = Self.model.synthesize(ids, noise: .init(scale: 0.667, durationScale: 0.8, lengthScale: 1, seed: 8)).waveform
        #expect(a == b && a != c)
    }
}

/// A tiny three-speaker VitsModel (scripts/fixtures/make_vits_speakers.py, transformers): speaker
/// conditioning of the duration predictor, flows and HiFi-GAN, and weight norm stored as weight_g/weight_v.
@Suite struct VitsSpeakerTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/vits-speakers"

    @Test func eachSpeakerMatchesTransformers() throws {
        let model = try VitsModel(folder: Self.folder)
        let expected = try SafeTensorsFile(path: Self.folder + "/expected.safetensors")
        let ids = try expected.int64s("input_ids").map(Int.init)
        for speaker in [0, 2] {
            let out = model.synthesize(ids, speaker: speaker, noise: .init(scale: 0, durationScale: 0, lengthScale: 1)).waveform
            let reference = try expected.tensor("speaker\(speaker)_waveform").storage
            #expect(out.count == reference.count, "speaker \(speaker): \(out.count) samples vs \(reference.count)")
            guard out.count == reference.count else { continue }
            let worst = out.indices.map { abs(out[$0] - reference[$0]) }.max() ?? 0
            #expect(worst < 1e-4, "speaker \(speaker): max |Δ| \(worst)")
        }
    }

    /// The MMS-TTS path end to end: the character tokenizer and the model of a Hugging Face folder as a voice.
    @Test func huggingFaceFolderIsAVoice() throws {
        let voice = try VitsVoice(name: "tiny", huggingFaceFolder: VitsFixtureTests.folder)
        let (ids, missing, _) = try voice.ids("the quick brown fox")
        #expect(ids == (try VitsFixtureTests.fixture.int64s("input_ids").map(Int.init)) && missing.isEmpty)
        #expect(voice.kind == .mmsTTS && voice.sampleRate == 16000 && voice.speakers == 1)
    }
}

extension VitsFixtureTests {
    /// noise_w 5 with length_scale 20 drew e^12 frames for one phoneme: gigabytes of prior and waveform.
    @Test func durationsAreBoundedWhateverTheScales() throws {
        let ids = try ids()
        let out = Self.model.synthesize(ids, noise: .init(scale: 5, durationScale: 5, lengthScale: 20, seed: 3))
        let frames = out.spectrogram.shape[2]
        #expect(frames >= 1 && frames <= min(ids.count * VitsModel.maxFramesPerToken, VitsModel.maxFrames))
        #expect(out.waveform.allSatisfy { $0.isFinite })
    }
}
