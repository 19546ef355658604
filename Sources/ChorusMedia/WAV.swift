import Foundation

/// Audio samples in Float32, channels interleaved.
public struct AudioBuffer: Sendable, Equatable {
    public var sampleRate: Int
    public var channels: Int
    public var samples: [Float]

    public init(sampleRate: Int, channels: Int, samples: [Float]) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.samples = samples
    }

    public var frames: Int { samples.count / max(channels, 1) }
    public var duration: Double { Double(frames) / Double(sampleRate) }

    /// The average of the channels.
    public func mono() -> [Float] {
        guard channels > 1 else { return samples }
        let scale = 1 / Float(channels)
        return (0..<frames).map { frame in
            var sum: Float = 0
            for c in 0..<channels { sum += samples[frame * channels + c] }
            return sum * scale
        }
    }
}

/// RIFF/WAVE: PCM 8/16/24/32-bit and IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE included, any rate and
/// channel count. A data chunk that claims more bytes than the file has (streaming writers do that)
/// is read as far as whole frames go.
public enum WAV {
    public static func decode(_ bytes: [UInt8]) throws -> AudioBuffer {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw MediaError.unsupported(bytes.count < 12 ? "audio of \(bytes.count) bytes is too short for a WAV header" : "not a WAV file (no RIFF/WAVE header)")
        }
        var format: (tag: Int, channels: Int, rate: Int, bits: Int, blockAlign: Int)?
        var offset = 12
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
            let size = u32(offset + 4)
            let body = offset + 8
            if id == "fmt " {
                guard size >= 16, body + 16 <= bytes.count else { throw MediaError.corrupt("WAV fmt chunk is truncated") }
                var tag = u16(body)
                if tag == 0xFFFE && size >= 40 && body + 26 <= bytes.count { tag = u16(body + 24) }  // extensible: the sub-format's first two bytes
                format = (tag, u16(body + 2), u32(body + 4), u16(body + 14), u16(body + 12))
            } else if id == "data" {
                guard let f = format else { throw MediaError.corrupt("WAV data chunk comes before its fmt chunk") }
                return try decodeSamples(bytes, from: body, count: min(size, bytes.count - body), format: f)
            }
            offset = body + size + (size & 1)  // chunks are padded to even sizes
        }
        throw MediaError.corrupt(format == nil ? "WAV file has no fmt chunk" : "WAV file has no data chunk")
    }

    private static func decodeSamples(_ bytes: [UInt8], from start: Int, count: Int, format f: (tag: Int, channels: Int, rate: Int, bits: Int, blockAlign: Int)) throws -> AudioBuffer {
        guard f.channels > 0 else { throw MediaError.corrupt("WAV header says 0 channels") }
        guard f.rate > 0 && f.rate <= 768_000 else { throw MediaError.corrupt("WAV header says \(f.rate) Hz") }
        let width = f.bits / 8
        let supported = (f.tag == 1 && [1, 2, 3, 4].contains(width)) || (f.tag == 3 && [4, 8].contains(width))
        guard supported, f.bits % 8 == 0 else {
            throw MediaError.unsupported("WAV format tag \(f.tag) with \(f.bits)-bit samples; supported: PCM 8/16/24/32-bit, float 32/64-bit")
        }
        let frames = count / (width * f.channels)
        let total = frames * f.channels
        var samples = [Float](repeating: 0, count: total)
        bytes.withUnsafeBytes { raw in
            let base = start
            switch (f.tag, width) {
            case (1, 1): for i in 0..<total { samples[i] = (Float(raw[base + i]) - 128) / 128 }
            case (1, 2): for i in 0..<total { samples[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * i, as: Int16.self))) / 32768 }
            case (1, 3):
                for i in 0..<total {
                    let p = base + 3 * i
                    let value = Int32(bitPattern: UInt32(raw[p]) << 8 | UInt32(raw[p + 1]) << 16 | UInt32(raw[p + 2]) << 24) >> 8
                    samples[i] = Float(value) / 8_388_608
                }
            case (1, 4): for i in 0..<total { samples[i] = Float(Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: Int32.self))) / 2_147_483_648) }
            case (3, 4): for i in 0..<total { samples[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self).littleEndian) }
            default: for i in 0..<total { samples[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: base + 8 * i, as: UInt64.self).littleEndian)) }
            }
        }
        return AudioBuffer(sampleRate: f.rate, channels: f.channels, samples: samples)
    }

    public enum Encoding: Sendable { case pcm16, float32 }

    public static func encode(_ audio: AudioBuffer, as encoding: Encoding = .pcm16) -> [UInt8] {
        let width = encoding == .pcm16 ? 2 : 4
        let dataSize = audio.samples.count * width
        var out: [UInt8] = []
        out.reserveCapacity(44 + dataSize)
        func u16(_ v: Int) { out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) { u16(v & 0xFFFF); u16(v >> 16 & 0xFFFF) }
        out += Array("RIFF".utf8); u32(36 + dataSize); out += Array("WAVEfmt ".utf8)
        u32(16); u16(encoding == .pcm16 ? 1 : 3); u16(audio.channels); u32(audio.sampleRate)
        u32(audio.sampleRate * audio.channels * width); u16(audio.channels * width); u16(width * 8)
        out += Array("data".utf8); u32(dataSize)
        for sample in audio.samples {
            if encoding == .pcm16 {
                let clipped = max(-1, min(1, sample))
                u16(Int(Int16((clipped * 32767).rounded())) & 0xFFFF)
            } else {
                u32(Int(sample.bitPattern))
            }
        }
        return out
    }
}
