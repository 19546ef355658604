import ChorusTensor
import Foundation
@testable import SpeechService
import Testing
import ChorusWhisper

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

    /// The fixture's projection is tied to the embedding (no proj_out.weight): in int8 it is quantized too,
    /// and the first greedy token after the prefix is float32's.
    @Test func int8QuantizesTheTiedProjection() throws {
        let int8 = try WhisperModel(folder: Self.folder, precision: .int8)
        #expect(int8.precision == (Precision.int8.runsHere ? .int8 : .float32) && Self.model.precision == .float32)
        var state = int8.startDecoding(int8.encode(try Self.fixture.tensor("input_features").reshaped([80, 3000])))
        let logits = int8.decode(try Self.fixture.int64s("decoder_prefix_ids").map(Int.init), state: &state).slice(axis: 0, 3..<4)
        let next = logits.storage.indices.max { logits.storage[$0] < logits.storage[$1] }!
        #expect(next == (try Self.fixture.int64s("generated_ids").map(Int.init))[0])
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

/// Beam search decodes every beam in one batched step; it must give each beam what decoding it alone gives.
@Suite struct WhisperBatchedStepTests {
    @Test func batchedStepEqualsSeparateSteps() throws {
        let model = WhisperFixtureTests.model
        let audio = model.encode(try WhisperFixtureTests.fixture.tensor("input_features").reshaped([80, 3000]))
        let prefix = try WhisperFixtureTests.fixture.int64s("decoder_prefix_ids").map(Int.init)
        var shared = model.startDecoding(audio)
        _ = model.decode(prefix, state: &shared)
        // Three beams: two continue from sequence 0 with different tokens, one repeats; then a reorder.
        shared.reorder([0, 0, 0])
        let first = model.decodeStep([5, 9, 5], state: &shared)
        shared.reorder([2, 1])
        let second = model.decodeStep([7, 7], state: &shared)
        for (history, row) in [([5, 7], 0), ([9, 7], 1)] {
            var alone = model.startDecoding(audio)
            _ = model.decode(prefix, state: &alone)
            let step1 = model.decode([history[0]], state: &alone)
            let step2 = model.decode([history[1]], state: &alone)
            let vocabulary = step2.shape[1]
            #expect(step2.maxAbsDifference(second.slice(axis: 0, row..<(row + 1))).value < 1e-4)
            if row == 0 { #expect(step1.maxAbsDifference(first.slice(axis: 0, 0..<1)).value < 1e-4 && vocabulary > 0) }
        }
    }
}

/// The same tiny Whisper converted by CTranslate2's converter with `--quantization int8`: its int8 weights load
/// as CTranslate2 widens them (code / row scale), so Chorus computes what CTranslate2 computes from that file
/// with compute_type float32 (scripts/fixtures/make_ct2_int8_whisper.py).
@Suite struct WhisperCTranslate2Int8Tests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/whisper-ct2-int8"
    static let reference = try! SafeTensorsFile(path: folder + "/reference.safetensors")
    static let features = try! WhisperFixtureTests.fixture.tensor("input_features").reshaped([80, 3000])

    @Test func theFileHoldsInt8WeightsWithRowScales() throws {
        let file = try CTranslate2Model(path: Self.folder + "/model.bin")
        let codes = try file.variable("encoder/layer_0/ffn/linear_0/weight")
        #expect(codes.dtype == .int8 && codes.shape == [128, 64])
        #expect(try file.variable("encoder/layer_0/ffn/linear_0/weight_scale").shape == [128])
        // Widened by the scale: the float32 fixture's weight to within half a step of each row's grid.
        let widened = try file.tensor("encoder/layer_0/ffn/linear_0/weight")
        let original = try SafeTensorsCheckpoint(folder: WhisperFixtureTests.folder).tensor("model.encoder.layers.0.fc1.weight")
        var worst: Float = 0  // in steps of the row's grid (max |w| / 127)
        for r in 0..<128 {
            let step = original.storage[(r * 64)..<((r + 1) * 64)].map(abs).max()! / 127
            for i in 0..<64 { worst = max(worst, abs(widened.storage[r * 64 + i] - original.storage[r * 64 + i]) / step) }
        }
        #expect(worst <= 0.5001, "a widened weight is \(worst) steps from the float32 one")
    }

    @Test func encoderMatchesCTranslate2() throws {
        let model = try WhisperModel(folder: Self.folder)
        let output = model.encode(Self.features)
        let expected = try Self.reference.tensor("encoder_last_hidden_state").reshaped(output.shape)
        let (worst, at) = output.maxAbsDifference(expected)
        #expect(worst < 1e-4, "max |Δ| \(worst) at \(at)")
    }

    @Test func greedyTokensAndStepLogitsMatchCTranslate2() throws {
        let model = try WhisperModel(folder: Self.folder)
        var state = model.startDecoding(model.encode(Self.features))
        let prefix = try WhisperFixtureTests.fixture.int64s("decoder_prefix_ids").map(Int.init)
        let expectedTokens = try Self.reference.int64s("generated_ids").map(Int.init)
        let expectedLogits = try Self.reference.tensor("step_logits")
        var row = model.decode(prefix, state: &state).slice(axis: 0, (prefix.count - 1)..<prefix.count)
        var generated: [Int] = [], steps: [Float] = []
        for _ in expectedTokens {
            steps += row.storage
            let next = row.storage.indices.max { row.storage[$0] < row.storage[$1] }!
            generated.append(next)
            row = model.decode([next], state: &state)
        }
        #expect(generated == expectedTokens)
        let (worst, at) = Tensor(shape: expectedLogits.shape, storage: steps).maxAbsDifference(expectedLogits)
        #expect(worst < 1e-4, "max |Δ| \(worst) at \(at)")
    }
}
