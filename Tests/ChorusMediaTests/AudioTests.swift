import ChorusMedia
import ChorusTensor
import Foundation
import Testing

@Suite struct AudioTests {
    /// A WAV with any format tag and sample width, written by hand.
    static func wav(tag: UInt16, channels: UInt16, rate: UInt32, bits: UInt16, data: [UInt8], extensible: Bool = false, claimedSize: UInt32? = nil) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        let blockAlign = channels * bits / 8
        var fmt = le(extensible ? UInt16(0xFFFE) : tag) + le(channels) + le(rate) + le(rate * UInt32(blockAlign)) + le(blockAlign) + le(bits)
        if extensible { fmt += le(UInt16(22)) + le(bits) + le(UInt32(0)) + le(tag) + [UInt8](repeating: 0, count: 14) }
        let body = Array("WAVE".utf8) + Array("fmt ".utf8) + le(UInt32(fmt.count)) + fmt + Array("LIST".utf8) + le(UInt32(3)) + [1, 2, 3, 0]
            + Array("data".utf8) + le(claimedSize ?? UInt32(data.count)) + data
        return Array("RIFF".utf8) + le(UInt32(body.count)) + body
    }

    @Test func everySampleFormatDecodes() throws {
        let expected: [Float] = [0, 0.5, -0.5, -1]
        let pcm8: [UInt8] = [128, 192, 64, 0]
        let pcm16 = [Int16(0), 16384, -16384, -32768].flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        let pcm24: [UInt8] = [0, 0, 0, 0, 0, 0x40, 0, 0, 0xC0, 0, 0, 0x80]
        let pcm32 = [Int32(0), 1 << 30, -(1 << 30), Int32.min].flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        let float32 = expected.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
        let float64 = expected.flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian) { Array($0) } }
        for (tag, bits, data, extensible) in [(UInt16(1), UInt16(8), pcm8, false), (1, 16, pcm16, false), (1, 24, pcm24, false),
                                              (1, 32, pcm32, false), (3, 32, float32, false), (3, 64, float64, false), (1, 16, pcm16, true)] {
            let audio = try WAV.decode(Self.wav(tag: tag, channels: 1, rate: 8000, bits: bits, data: data, extensible: extensible))
            #expect(audio.sampleRate == 8000 && audio.channels == 1)
            #expect(audio.samples == expected, "tag \(tag), \(bits) bits")
        }
    }

    @Test func stereoDownmixesAndPCM16RoundTrips() throws {
        let stereo = AudioBuffer(sampleRate: 44100, channels: 2, samples: [0.5, -0.5, 0.25, 0.75, -1, 1])
        let decoded = try WAV.decode(WAV.encode(stereo, as: .pcm16))
        #expect(decoded.channels == 2 && decoded.sampleRate == 44100)
        #expect(zip(decoded.samples, stereo.samples).allSatisfy { abs($0 - $1) < 1.0 / 32767 })
        #expect(decoded.mono().count == 3)
        #expect(try WAV.decode(WAV.encode(stereo, as: .float32)) == stereo)
    }

    @Test func aDataChunkLongerThanTheFileIsReadAsFarAsItGoes() throws {
        let pcm16: [UInt8] = [Int16(100), 200, 300].flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } } + [7]  // half a sample at the end
        let audio = try WAV.decode(Self.wav(tag: 1, channels: 1, rate: 16000, bits: 16, data: pcm16, claimedSize: 0xFFFF_FFFF))
        #expect(audio.samples.count == 3)
    }

    @Test func malformedFilesAreRejectedClearly() {
        let cases: [([UInt8], String)] = [
            ([1, 2, 3], "too short"),
            (Array("RIFF\u{0}\u{0}\u{0}\u{0}AVI LIST".utf8), "no RIFF/WAVE header"),
            (Self.wav(tag: 2, channels: 1, rate: 8000, bits: 4, data: [0, 0]), "format tag 2"),
            (Self.wav(tag: 1, channels: 0, rate: 8000, bits: 16, data: [0, 0]), "0 channels"),
            (Array(Self.wav(tag: 1, channels: 1, rate: 8000, bits: 16, data: [0, 0]).prefix(30)), "fmt chunk is truncated"),
            (Array("RIFF\u{4}\u{0}\u{0}\u{0}WAVE".utf8), "no fmt chunk"),
        ]
        for (bytes, reason) in cases {
            #expect {
                _ = try WAV.decode(bytes)
            } throws: { error in
                (error as? MediaError)?.description.contains(reason) == true
            }
        }
    }

    @Test func theRealClipDecodesToTheReferenceSamples() throws {
        let audio = try WAV.decode(Fixture.bytes("piper_speech_service.wav"))
        let expected = try Fixture.tensors("real-whisper_mel.safetensors").tensor("piper_speech_service.audio")
        #expect(audio.sampleRate == 16000 && audio.samples == expected.storage)
    }

    @Test func resamplingKeepsASineASine() {
        let tone = (0..<44100).map { Float(sin(2 * Double.pi * 1000 * Double($0) / 44100)) * 0.5 }
        let resampled = Resampler(from: 44100, to: 16000).process(tone)
        #expect(resampled.count == 16000)
        // Away from the edges the output is the same tone sampled at 16 kHz.
        let worst = (200..<15800).map { abs(resampled[$0] - Float(sin(2 * Double.pi * 1000 * Double($0) / 16000)) * 0.5) }.max()!
        #expect(worst < 2e-3, "largest error \(worst)")
        // A tone above the new Nyquist frequency is removed, not folded back.
        let high = (0..<44100).map { Float(sin(2 * Double.pi * 12000 * Double($0) / 44100)) }
        let aliased = Resampler(from: 44100, to: 16000).process(high)[200..<15800].map { abs($0) }.max()!
        #expect(aliased < 5e-3, "12 kHz leaks through at \(aliased)")
    }

    @Test func whisperMelMatchesTheFixture() throws {
        let fixture = try Fixture.tensors("whisper-fixtures.safetensors")
        let mel = WhisperMel(melCount: 80)
        let filters = Tensor(shape: [201, 80], storage: mel.filters)
        #expect(filters.maxAbsDifference(try fixture.tensor("mel_filters")).value < 1e-7)
        let features = mel.logMel(try fixture.tensor("audio").storage)
        let (worst, at) = features.maxAbsDifference(try fixture.tensor("input_features").reshaped([80, 3000]))
        #expect(worst <= 6e-4, "max |Δ| \(worst) at \(at)")
    }

    @Test func whisperMelMatchesTheRealClipTo1e4() throws {
        let fixture = try Fixture.tensors("real-whisper_mel.safetensors")
        let features = WhisperMel().logMel(try fixture.tensor("piper_speech_service.audio").storage)
        let (worst, at) = features.maxAbsDifference(try fixture.tensor("piper_speech_service.log_mel").reshaped([80, 3000]))
        #expect(worst <= 1e-4, "max |Δ| \(worst) at \(at)")
    }
}

@Suite struct Mel128Tests {
    /// 128 bins (Whisper large-v3): filters and features against transformers (scripts/fixtures/make_mel_fixtures.py).
    @Test func oneHundredTwentyEightBinsMatchTransformers() throws {
        let fixture = try Fixture.tensors("mel128.safetensors")
        let mel = WhisperMel(melCount: 128)
        #expect(Tensor(shape: [201, 128], storage: mel.filters).maxAbsDifference(try fixture.tensor("mel_filters")).value < 1e-7)
        let (worst, at) = mel.logMel(try fixture.tensor("audio").storage).maxAbsDifference(try fixture.tensor("input_features"))
        #expect(worst <= 1e-4, "max |Δ| \(worst) at \(at)")
    }
}
