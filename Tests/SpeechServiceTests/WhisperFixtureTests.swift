import ChorusTensor
import Foundation
@testable import SpeechService
import Testing

/// The tiny random Whisper of ../shared/fixtures/whisper, made with transformers: every case of its manifest.
@Suite struct WhisperFixtureTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/whisper"
    static let fixture = try! SafeTensorsFile(path: Bundle.module.resourcePath! + "/Fixtures/whisper-fixtures.safetensors")
    static let model = try! WhisperModel(folder: folder)

    func close(_ actual: Tensor, _ expected: Tensor, atol: Float, rtol: Float = 1e-4) -> (Bool, String) {
        let (worst, at) = actual.maxAbsDifference(expected)
        var ok = true
        for i in 0..<actual.count where abs(actual.storage[i] - expected.storage[i]) > atol + rtol * abs(expected.storage[i]) { ok = false }
        return (ok, "max |Δ| \(worst) at \(at)")
    }

    @Test func encoderMatchesTransformers() throws {
        let features = try Self.fixture.tensor("input_features").reshaped([80, 3000])
        let output = Self.model.encode(features)
        let (ok, detail) = close(output, try Self.fixture.tensor("encoder_last_hidden_state"), atol: 2e-5)
        #expect(ok, "\(detail)")
    }

    @Test func prefixLogitsMatchTransformers() throws {
        let audio = Self.model.encode(try Self.fixture.tensor("input_features").reshaped([80, 3000]))
        var state = Self.model.startDecoding(audio)
        let prefix = try Self.fixture.int64s("decoder_prefix_ids").map(Int.init)
        let logits = Self.model.decode(prefix, state: &state)
        let (ok, detail) = close(logits, try Self.fixture.tensor("prefix_logits").reshaped([4, -1]), atol: 2e-5)
        #expect(ok, "\(detail)")
    }

    /// Greedy, one token at a time through the KV cache (the reference reran the whole sequence each step).
    @Test func greedyTokensAndStepLogitsMatchTransformers() throws {
        let audio = Self.model.encode(try Self.fixture.tensor("input_features").reshaped([80, 3000]))
        var state = Self.model.startDecoding(audio)
        let prefix = try Self.fixture.int64s("decoder_prefix_ids").map(Int.init)
        var logits = Self.model.decode(prefix, state: &state)
        var lastRow = logits.slice(axis: 0, 3..<4)
        var generated: [Int] = []
        var steps: [Float] = []
        for _ in 0..<5 {
            steps += lastRow.storage
            let next = lastRow.storage.indices.max { lastRow.storage[$0] < lastRow.storage[$1] }!
            generated.append(next)
            logits = Self.model.decode([next], state: &state)
            lastRow = logits
        }
        #expect(generated == (try Self.fixture.int64s("generated_ids").map(Int.init)))
        let (ok, detail) = close(Tensor(shape: [5, steps.count / 5], storage: steps), try Self.fixture.tensor("step_logits"), atol: 2e-5)
        #expect(ok, "\(detail)")
    }
}
