/// Reading and writing WAV (RIFF/WAVE) files with PCM integer or IEEE float samples.
public enum WAVCodec {
    /// Decodes to Float32 per channel; integers are scaled so that full scale is ±1
    /// (int16 / 32768, as soundfile, torchaudio and whisper's loaders do).
    public static func decode(_ bytes: [UInt8]) throws -> AudioSamples {
        try bytes.withUnsafeBytes { raw in
            let layout = try WAVLayout(raw)
            let start = raw.baseAddress! + layout.data.lowerBound
            let channels: [[Float]] = switch layout.format {
            case .pcm8:
                deinterleave(start, layout) { Float(Int($0.load(as: UInt8.self)) - 128) / 128 }
            case .pcm16:
                deinterleave(start, layout) { Float(Int16(littleEndian: $0.loadUnaligned(as: Int16.self))) / 32768 }
            case .pcm24:
                deinterleave(start, layout) { Float(loadInt24($0)) / 8_388_608 }
            case .pcm32:
                deinterleave(start, layout) { Float(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) / 2_147_483_648 }
            case .float32:
                deinterleave(start, layout) { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            case .float64:
                deinterleave(start, layout) { Float(Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)))) }
            }
            return try AudioSamples(sampleRate: layout.sampleRate, channels: channels)
        }
    }

    /// Writes `audio` in `format`. Integer formats round to nearest and clip at full scale.
    public static func encode(_ audio: AudioSamples, format: WAVSampleFormat = .pcm16) throws -> [UInt8] {
        let channelCount = audio.channels.count
        let blockAlign = channelCount * format.bytesPerSample
        let dataSize = audio.frameCount * blockAlign
        let isFloat = format.formatTag == WAVFormatTag.ieeeFloat
        // Non-PCM formats carry cbSize in fmt and a fact chunk with the frame count.
        let fmtSize = isFloat ? 18 : 16
        let factSize = isFloat ? 12 : 0
        let riffSize = 4 + (8 + fmtSize) + factSize + 8 + dataSize + (dataSize & 1)
        guard riffSize <= Int(UInt32.max), channelCount <= Int(UInt16.max), audio.sampleRate * blockAlign <= Int(UInt32.max) else {
            throw MediaError.encodingFailed("\(audio.frameCount) frames of \(channelCount) channels do not fit in a WAV file")
        }

        var writer = LittleEndianWriter()
        writer.bytes.reserveCapacity(8 + riffSize)
        writer.ascii("RIFF")
        writer.uint32(UInt32(riffSize))
        writer.ascii("WAVE")
        writer.ascii("fmt ")
        writer.uint32(UInt32(fmtSize))
        writer.uint16(format.formatTag)
        writer.uint16(UInt16(channelCount))
        writer.uint32(UInt32(audio.sampleRate))
        writer.uint32(UInt32(audio.sampleRate * blockAlign))
        writer.uint16(UInt16(blockAlign))
        writer.uint16(UInt16(format.bytesPerSample * 8))
        if isFloat {
            writer.uint16(0)
            writer.ascii("fact")
            writer.uint32(4)
            writer.uint32(UInt32(audio.frameCount))
        }
        writer.ascii("data")
        writer.uint32(UInt32(dataSize))
        var data = [UInt8](repeating: 0, count: dataSize + (dataSize & 1))
        data.withUnsafeMutableBytes { raw in
            guard let start = raw.baseAddress else { return }
            switch format {
            case .pcm8:
                interleave(audio, into: start, step: 1) { $1.storeBytes(of: UInt8(quantize($0, bits: 8) + 128), as: UInt8.self) }
            case .pcm16:
                interleave(audio, into: start, step: 2) { $1.storeBytes(of: Int16(quantize($0, bits: 16)).littleEndian, as: Int16.self) }
            case .pcm24:
                interleave(audio, into: start, step: 3) { storeInt24(Int32(quantize($0, bits: 24)), $1) }
            case .pcm32:
                interleave(audio, into: start, step: 4) { $1.storeBytes(of: Int32(quantize($0, bits: 32)).littleEndian, as: Int32.self) }
            case .float32:
                interleave(audio, into: start, step: 4) { $1.storeBytes(of: $0.bitPattern.littleEndian, as: UInt32.self) }
            case .float64:
                interleave(audio, into: start, step: 8) { $1.storeBytes(of: Double($0).bitPattern.littleEndian, as: UInt64.self) }
            }
        }
        return writer.bytes + data
    }
}

private func deinterleave(
    _ start: UnsafeRawPointer, _ layout: WAVLayout, _ read: (UnsafeRawPointer) -> Float
) -> [[Float]] {
    let frames = layout.frameCount
    let step = layout.channelCount * layout.format.bytesPerSample
    return (0..<layout.channelCount).map { channel in
        [Float](unsafeUninitializedCapacity: frames) { samples, initialized in
            var sample = start + channel * layout.format.bytesPerSample
            for frame in 0..<frames {
                samples[frame] = read(sample)
                sample += step
            }
            initialized = frames
        }
    }
}

private func interleave(
    _ audio: AudioSamples, into start: UnsafeMutableRawPointer, step: Int, _ write: (Float, UnsafeMutableRawPointer) -> Void
) {
    let channelCount = audio.channels.count
    for (channel, samples) in audio.channels.enumerated() {
        var target = start + channel * step
        for sample in samples {
            write(sample, target)
            target += channelCount * step
        }
    }
}

/// Rounds to the nearest `bits`-bit signed integer, clipping at full scale; NaN becomes silence.
private func quantize(_ sample: Float, bits: Int) -> Int64 {
    guard !sample.isNaN else { return 0 }
    let fullScale = Double(Int64(1) << (bits - 1))
    let scaled = (Double(sample) * fullScale).rounded()
    return Int64(min(max(scaled, -fullScale), fullScale - 1))
}

private func loadInt24(_ p: UnsafeRawPointer) -> Int32 {
    let low = Int32(p.load(fromByteOffset: 0, as: UInt8.self))
    let middle = Int32(p.load(fromByteOffset: 1, as: UInt8.self))
    let high = Int32(p.load(fromByteOffset: 2, as: Int8.self)) // carries the sign
    return low | middle << 8 | high << 16
}

private func storeInt24(_ value: Int32, _ p: UnsafeMutableRawPointer) {
    p.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: 0, as: UInt8.self)
    p.storeBytes(of: UInt8(truncatingIfNeeded: value >> 8), toByteOffset: 1, as: UInt8.self)
    p.storeBytes(of: UInt8(truncatingIfNeeded: value >> 16), toByteOffset: 2, as: UInt8.self)
}
