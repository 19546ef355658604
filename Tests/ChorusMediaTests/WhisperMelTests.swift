import Foundation
import Testing
@testable import ChorusMedia

@Suite("Whisper log-mel")
struct WhisperMelTests {
    /// The fixtures store the frames that carry signal plus the one value that every later
    /// (silent, clamped) frame holds; see Fixtures/media/make_fixtures.py.
    private func expectMatches(
        _ mel: [Float], melBins: Int, head: SafeTensors.Tensor, tail: SafeTensors.Tensor, atol: Float, label: String
    ) throws {
        let frames = 3000
        let headFrames = head.shape[1]
        let headValues = try head.floats()
        let tailValue = try tail.floats()[0]
        var expected = [Float](repeating: tailValue, count: melBins * frames)
        for m in 0..<melBins {
            for t in 0..<headFrames { expected[m * frames + t] = headValues[m * headFrames + t] }
        }
        #expect(mel.count == expected.count)
        let worst = maxAbsDifference(mel, expected)
        print("\(label): max |diff| \(worst.value) at mel \(worst.index / frames), frame \(worst.index % frames)")
        #expect(worst.value <= atol, "\(label): max |diff| \(worst.value) at mel \(worst.index / frames), frame \(worst.index % frames)")
    }

    /// Case whisper/log_mel: mel_filters (201, 80) from transformers' mel_filter_bank.
    @Test("Slaney mel filters match transformers / librosa")
    func filters() throws {
        let fixture = try Fixtures.tensors("whisper/log_mel.safetensors").tensor("mel_filters")
        #expect(fixture.shape == [201, 80])
        let expected = try fixture.floats()
        let bank = MelFilterBank(sampleRate: 16_000, fftSize: 400, melBins: 80)
        // The fixture is (frequency, mel); ours is (mel, frequency).
        let transposed: [Float] = (0..<(201 * 80)).map { (i: Int) -> Float in
            let (frequency, mel) = i.quotientAndRemainder(dividingBy: 80)
            return bank.weights[mel * 201 + frequency]
        }
        let worst = maxAbsDifference(transposed, expected)
        #expect(worst.value < 1e-7, "max |diff| \(worst.value)")
    }

    @Test("128-bin filters cover 0-8 kHz with unit-area triangles")
    func filters128() {
        let bank = MelFilterBank(sampleRate: 16_000, fftSize: 400, melBins: 128)
        #expect(bank.weights.count == 128 * 201)
        #expect(bank.weights.allSatisfy { $0 >= 0 })
        for m in 0..<128 {
            #expect(bank.weights[(m * 201)..<((m + 1) * 201)].contains { $0 > 0 }, "mel bin \(m) is empty")
        }
    }

    /// Case whisper/log_mel: 1 s tone -> (1, 80, 3000), atol 6e-4.
    @Test("matches WhisperFeatureExtractor on the synthetic tone")
    func fixtureTone() throws {
        let fixture = try Fixtures.tensors("whisper/log_mel.safetensors")
        let audio = try fixture.tensor("audio").floats()
        let mel = try WhisperMel(melBins: 80).logMel(audio)
        try expectMatches(mel, melBins: 80, head: fixture.tensor("input_features_head"),
                          tail: fixture.tensor("input_features_tail_value"), atol: 6e-4, label: "whisper/log_mel")
    }

    /// Case whisper_mel/piper_speech_service of the real references: the WAV read with our own
    /// reader, atol 1e-4.
    @Test("matches the real-clip reference to 1e-4")
    func realClip() throws {
        let audio = try WAVCodec.decode(try Fixtures.bytes("real/piper_speech_service.wav"))
        #expect(audio.sampleRate == WhisperMel.sampleRate)
        let mel = try WhisperMel(melBins: 80).logMel(audio.downmixedToMono())
        let fixture = try Fixtures.tensors("real/piper_speech_service_log_mel.safetensors")
        try expectMatches(mel, melBins: 80, head: fixture.tensor("log_mel_head"),
                          tail: fixture.tensor("log_mel_tail_value"), atol: 1e-4, label: "whisper_mel/piper_speech_service")
    }

    @Test("30 s of audio: shape, and how long it takes")
    func timing() throws {
        let extractor = try WhisperMel(melBins: 128)
        let audio = garbage(count: 480_000, seed: 11).map { Float($0) / 256 - 0.5 }
        _ = extractor.logMel(Array(audio.prefix(16_000)))
        var times: [Double] = []
        var mel: [Float] = []
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            mel = extractor.logMel(audio)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        print("WhisperMel 128 bins, 30 s: \(times.map { String(format: "%.1f", $0) }.joined(separator: ", ")) ms")
        #expect(mel.count == 128 * 3000)
        #expect(mel.allSatisfy { $0.isFinite })
        // Longer input is cut to 30 s.
        #expect(extractor.logMel(audio + audio.prefix(1000)) == mel)
    }
}
