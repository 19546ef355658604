/// Where the samples of a WAV file are and how they are stored, found by walking its RIFF chunks.
struct WAVLayout {
    let format: WAVSampleFormat
    let channelCount: Int
    let sampleRate: Int
    /// Byte range of the samples, cut to whole frames that exist in the file.
    let data: Range<Int>

    var frameCount: Int { data.count / (channelCount * format.bytesPerSample) }

    init(_ raw: UnsafeRawBufferPointer) throws {
        guard raw.count >= 12 else {
            throw MediaError.truncatedWAV("the file is \(raw.count) bytes, shorter than the 12-byte RIFF header")
        }
        // RF64 keeps 64-bit sizes in a ds64 chunk and 0xFFFFFFFF in the 32-bit fields; reading
        // the data chunk to the end of the file (below) covers it.
        guard ["RIFF", "RF64"].contains(raw.ascii(at: 0)), raw.ascii(at: 8) == "WAVE" else {
            throw MediaError.invalidWAV("not a RIFF/WAVE file (it starts with \(hexString(Array(raw.prefix(12)))))")
        }
        var fmt: FmtChunk?
        var data: Range<Int>?
        var offset = 12
        while offset + 8 <= raw.count, fmt == nil || data == nil {
            let declared = Int(raw.littleEndianUInt32(at: offset + 4))
            let body = offset + 8
            let available = raw.count - body
            switch raw.ascii(at: offset) {
            case "fmt ":
                guard declared <= available else {
                    throw MediaError.truncatedWAV("the fmt chunk needs \(declared) bytes, the file has \(available) left")
                }
                fmt = try FmtChunk(raw, at: body, size: declared)
            case "data":
                // Streaming writers cannot know the length up front and leave a size that is too
                // large (often 0xFFFFFFFF): take the samples that are there.
                data = body..<(body + min(declared, available))
            default:
                break
            }
            if declared > available { break }
            offset = body + declared + (declared & 1) // chunks are padded to even sizes
        }
        guard let fmt else { throw MediaError.missingWAVChunk("fmt ") }
        guard let data else { throw MediaError.missingWAVChunk("data") }

        guard fmt.channelCount > 0 else { throw MediaError.invalidWAV("the fmt chunk says the file has 0 channels") }
        guard fmt.sampleRate > 0 else { throw MediaError.invalidWAV("the fmt chunk says the sample rate is 0 Hz") }
        guard let format = WAVSampleFormat(formatTag: fmt.formatTag, bitsPerSample: fmt.bitsPerSample) else {
            throw MediaError.unsupportedWAVCodec(formatTag: fmt.formatTag, bitsPerSample: fmt.bitsPerSample)
        }
        self.format = format
        self.channelCount = fmt.channelCount
        self.sampleRate = fmt.sampleRate
        let frameSize = fmt.channelCount * format.bytesPerSample
        self.data = data.lowerBound..<(data.lowerBound + data.count / frameSize * frameSize)
    }
}

/// The fields of a fmt chunk that decoding needs.
private struct FmtChunk {
    let formatTag: UInt16
    let channelCount: Int
    let sampleRate: Int
    /// The container size; WAVE_FORMAT_EXTENSIBLE may hold fewer valid bits, left-aligned, which
    /// reads correctly at full scale.
    let bitsPerSample: Int

    init(_ raw: UnsafeRawBufferPointer, at body: Int, size: Int) throws {
        guard size >= 16 else { throw MediaError.invalidWAV("the fmt chunk is \(size) bytes, at least 16 are needed") }
        var tag = raw.littleEndianUInt16(at: body)
        if tag == WAVFormatTag.extensible {
            guard size >= 40 else {
                throw MediaError.invalidWAV("the WAVE_FORMAT_EXTENSIBLE fmt chunk is \(size) bytes, 40 are needed")
            }
            // The sub-format GUID begins with the plain format tag.
            tag = raw.littleEndianUInt16(at: body + 24)
        }
        formatTag = tag
        channelCount = Int(raw.littleEndianUInt16(at: body + 2))
        sampleRate = Int(raw.littleEndianUInt32(at: body + 4))
        bitsPerSample = Int(raw.littleEndianUInt16(at: body + 14))
    }
}
