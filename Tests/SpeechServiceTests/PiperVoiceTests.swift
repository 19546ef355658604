import ChorusTensor
import ChorusTestSupport
import Foundation
@testable import SpeechService
import Testing
import ChorusVITS

/// The real Piper voice (scripts/fetch-models) against ONNX Runtime's output in ../shared/real.
@Suite struct PiperVoiceTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.resourcePath! + "/Fixtures/piper/piper.safetensors")

    @Test func recordedIDsGiveOnnxRuntimesWaveform() throws {
        let voice = try VitsVoice(name: "joe", piperONNX: try RealModels.path("piper/en_US-joe-medium.onnx"))
        #expect(voice.model.config.resblock == "2" && voice.model.config.upsampleRates == [8, 8, 4] && voice.sampleRate == 22050)
        let ids = try Self.reference.int64s("hello_world.phoneme_ids").map(Int.init)
        let out = voice.model.synthesize(ids, noise: .init(scale: 0, durationScale: 0, lengthScale: 1))
        let expected = try Self.reference.tensor("hello_world.waveform").storage
        #expect(out.waveform.count == expected.count, "samples: \(out.waveform.count) vs \(expected.count)")
        guard out.waveform.count == expected.count else { return }
        let bad = out.waveform.indices.filter { abs(out.waveform[$0] - expected[$0]) > 3e-4 + 1e-4 * abs(expected[$0]) }
        let worst = out.waveform.indices.map { abs(out.waveform[$0] - expected[$0]) }.max() ?? 0
        #expect(bad.isEmpty, "\(bad.count) samples off, max |Δ| \(worst)")
        // ONNX Runtime's durations before ceil: exp(logw).
        let durations = try Self.reference.tensor("hello_world.durations").storage
        let ours = out.logDurations.map { expf($0) }
        #expect(zip(ours, durations).allSatisfy { abs($0 - $1) < 1e-3 }, "\(zip(ours, durations).map { $0 - $1 }.map(abs).max() ?? 0)")
    }
}
