import Foundation
import Testing
@testable import ChorusMedia

@Suite("WAV codec")
struct WAVCodecTests {
    /// Values that every integer format stores exactly: multiples of 1/128 inside [-1, 1).
    private static let exactValues: [Float] = [0, 0.5, -0.5, -1, 127.0 / 128, -3.0 / 128, 1.0 / 128, 0.25]

    @Test("round trips for every sample format and 1, 2 and 6 channels", arguments: WAVSampleFormat.allCases)
    func roundTrip(format: WAVSampleFormat) throws {
        for channelCount in [1, 2, 6] {
            let channels = (0..<channelCount).map { c in Array(Self.exactValues[c...] + Self.exactValues[..<c]) }
            let audio = try AudioSamples(sampleRate: 22_050, channels: channels)
            let decoded = try WAVCodec.decode(try WAVCodec.encode(audio, format: format))
            #expect(decoded == audio, "\(format), \(channelCount) channels")
        }
    }

    @Test("arbitrary samples come back within half a quantisation step", arguments: WAVSampleFormat.allCases)
    func quantisation(format: WAVSampleFormat) throws {
        let samples = (0..<1000).map { Float(sin(Double($0) * 0.37)) * 0.9 }
        let audio = try AudioSamples(sampleRate: 16_000, mono: samples)
        let decoded = try WAVCodec.decode(try WAVCodec.encode(audio, format: format))
        let step: Float = switch format {
        case .pcm8: 1.0 / 128
        case .pcm16: 1.0 / 32768
        case .pcm24: 1.0 / 8_388_608
        case .pcm32: 2e-7 // limited by Float32 itself
        case .float32, .float64: 0
        }
        #expect(maxAbsDifference(decoded.channels[0], samples).value <= step / 2 + 1e-9)
    }

    @Test("integer formats clip at full scale and write NaN as silence")
    func clipping() throws {
        let audio = try AudioSamples(sampleRate: 8000, mono: [2, -2, .nan, .infinity])
        let decoded = try WAVCodec.decode(try WAVCodec.encode(audio, format: .pcm16))
        #expect(decoded.channels[0] == [32767.0 / 32768, -1, 0, 32767.0 / 32768])
    }

    @Test("WAVE_FORMAT_EXTENSIBLE files are read through their sub-format")
    func extensible() throws {
        let samples: [Int16] = [0, 1000, -1000, 32767, -32768, 5]
        let fmt = extensibleFmt(subFormat: WAVFormatTag.pcm, channels: 2, rate: 48_000, bits: 16)
        let data = samples.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        let audio = try WAVCodec.decode(riff([("fmt ", fmt), ("data", data)]))
        #expect(audio.sampleRate == 48_000)
        let left: [Float] = [0, -1000, -32768].map { $0 / 32768 }
        let right: [Float] = [1000, 32767, 5].map { $0 / 32768 }
        #expect(audio.channels == [left, right])

        let floats: [Float] = [0.25, -0.75]
        let floatFmt = extensibleFmt(subFormat: WAVFormatTag.ieeeFloat, channels: 1, rate: 16_000, bits: 32)
        let floatData = floats.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        #expect(try WAVCodec.decode(riff([("fmt ", floatFmt), ("data", floatData)])).channels == [floats])
    }

    @Test("a data size larger than the file (streaming writers) reads what exists")
    func streamingSize() throws {
        let audio = try AudioSamples(sampleRate: 16_000, channels: [[0.5, -0.5, 0.25], [0, 0.125, 1.0 / 64]])
        var bytes = try WAVCodec.encode(audio)
        let data = try #require(find("data", in: bytes))
        bytes.replaceSubrange((data + 4)..<(data + 8), with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try WAVCodec.decode(bytes) == audio)
        // Cut mid-frame: the partial frame is dropped.
        let cut = try WAVCodec.decode(Array(bytes.dropLast(3)))
        #expect(cut.channels == [[0.5, -0.5], [0, 0.125]])
    }

    @Test("chunks before fmt and odd-sized chunks are skipped")
    func otherChunks() throws {
        let fmt = plainFmt(tag: WAVFormatTag.pcm, channels: 1, rate: 8000, bits: 8)
        let bytes = riff([("LIST", Array("odd".utf8)), ("fmt ", fmt), ("junk", [1, 2]), ("data", [128, 255, 0])])
        #expect(try WAVCodec.decode(bytes).channels == [[0, 127.0 / 128, -1]])
    }

    @Test("the real 16 kHz clip decodes as int16 / 32768")
    func realClip() throws {
        let audio = try WAVCodec.decode(try Fixtures.bytes("real/piper_speech_service.wav"))
        #expect(audio.sampleRate == 16_000 && audio.channels.count == 1 && audio.frameCount == 47_369)
    }

    @Test("downmix is the mean of the channels")
    func downmix() throws {
        let audio = try AudioSamples(sampleRate: 16_000, channels: [[1, 0, 0.5], [0, 0, -0.5], [0.5, 0.3, 0.3]])
        let mono = audio.downmixedToMono()
        #expect(maxAbsDifference(mono, [0.5, 0.1, 0.1]).value < 1e-7)
        #expect(try AudioSamples(sampleRate: 1, mono: [0.2]).downmixedToMono() == [0.2])
    }

    // MARK: malformed files

    @Test("truncated headers are errors")
    func truncated() throws {
        let bytes = try WAVCodec.encode(try AudioSamples(sampleRate: 16_000, mono: [0.1, 0.2]))
        for length in [0, 4, 11] {
            let error = try error(Array(bytes.prefix(length)))
            if case .truncatedWAV = error {} else { Issue.record("length \(length): \(error)") }
        }
        // fmt chunk cut in half
        let error = try error(Array(bytes.prefix(12 + 8 + 8)))
        if case .truncatedWAV = error {} else { Issue.record("\(error)") }
        // header complete, no data chunk yet
        #expect(try self.error(Array(bytes.prefix(36))) == .missingWAVChunk("data"))
    }

    @Test("garbage is not a WAV file")
    func garbageInput() throws {
        let error = try error(garbage(count: 500))
        if case .invalidWAV(let detail) = error {
            #expect(detail.contains("not a RIFF/WAVE file"))
        } else {
            Issue.record("\(error)")
        }
    }

    @Test("missing chunks are named")
    func missingChunks() throws {
        #expect(try error(riff([("data", [0, 0])])) == .missingWAVChunk("fmt "))
        #expect(try error(riff([("fmt ", plainFmt(tag: 1, channels: 1, rate: 8000, bits: 16))])) == .missingWAVChunk("data"))
    }

    @Test("unsupported codecs are named by their format tag")
    func unsupportedCodec() throws {
        let mp3 = try error(riff([("fmt ", plainFmt(tag: 0x55, channels: 2, rate: 44_100, bits: 0)), ("data", [1, 2, 3])]))
        #expect(mp3 == .unsupportedWAVCodec(formatTag: 0x55, bitsPerSample: 0))
        #expect(mp3.description.contains("0x0055 (MPEG Layer 3)"), "\(mp3)")
        let pcm12 = try error(riff([("fmt ", plainFmt(tag: 1, channels: 1, rate: 8000, bits: 12)), ("data", [])]))
        #expect(pcm12 == .unsupportedWAVCodec(formatTag: 1, bitsPerSample: 12))
    }

    @Test("zero channels, zero rate and short fmt chunks are invalid")
    func invalidFmt() throws {
        for fmt in [plainFmt(tag: 1, channels: 0, rate: 8000, bits: 16), plainFmt(tag: 1, channels: 1, rate: 0, bits: 16), [1, 0, 1, 0]] {
            let error = try error(riff([("fmt ", fmt), ("data", [0, 0])]))
            if case .invalidWAV = error {} else { Issue.record("\(error)") }
        }
        let zero = try error(riff([("fmt ", plainFmt(tag: 1, channels: 0, rate: 8000, bits: 16)), ("data", [])]))
        #expect(zero.description.contains("0 channels"))
    }

    // MARK: helpers

    private func error(_ bytes: [UInt8]) throws -> MediaError {
        do {
            _ = try WAVCodec.decode(bytes)
        } catch let error as MediaError {
            return error
        }
        throw TestFailure("decoding succeeded")
    }

    private func riff(_ chunks: [(String, [UInt8])]) -> [UInt8] {
        var body = Array("WAVE".utf8)
        for (id, data) in chunks {
            body += Array(id.utf8) + le32(data.count) + data + (data.count % 2 == 1 ? [0] : [])
        }
        return Array("RIFF".utf8) + le32(body.count) + body
    }

    private func plainFmt(tag: UInt16, channels: Int, rate: Int, bits: Int) -> [UInt8] {
        let block = channels * bits / 8
        return le16(Int(tag)) + le16(channels) + le32(rate) + le32(rate * block) + le16(block) + le16(bits)
    }

    private func extensibleFmt(subFormat: UInt16, channels: Int, rate: Int, bits: Int) -> [UInt8] {
        let guidTail: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        return plainFmt(tag: 0xFFFE, channels: channels, rate: rate, bits: bits)
            + le16(22) + le16(bits) + le32(channels == 2 ? 3 : 4) + le16(Int(subFormat)) + guidTail
    }

    private func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    private func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }

    private func find(_ id: String, in bytes: [UInt8]) -> Int? {
        let pattern = Array(id.utf8)
        return (0...(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == pattern }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
