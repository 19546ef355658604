/// Reads the PNG chunk list directly, without libpng, for the two things libpng's simplified API
/// does not let us control.
enum PNGChunks {
    private static let firstChunkOffset = 8

    /// Width and height from IHDR, which the PNG specification requires to be the first chunk.
    /// Checked against the limits before libpng sees the file, so an absurd size is reported as
    /// too large rather than as whatever libpng's own limits make of it.
    static func headerSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 24, chunkType(bytes, at: firstChunkOffset) == "IHDR" else { return nil }
        return (Int(bigEndian32(bytes, at: 16)), Int(bigEndian32(bytes, at: 20)))
    }

    /// libpng's simplified API converts pixels according to gAMA/sRGB/cHRM/iCCP, while PIL and
    /// torchvision hand over the stored values. Dropping these chunks (they must precede IDAT)
    /// makes libpng return the stored values too: 8-bit data is then taken as sRGB and 16-bit data
    /// as linear, which are exactly the encodings we ask for.
    static func withoutColorManagement(_ bytes: [UInt8]) -> [UInt8] {
        let dropped: Set<String> = ["gAMA", "sRGB", "cHRM", "iCCP"]
        var drop: [Range<Int>] = []
        var offset = firstChunkOffset
        while offset + 12 <= bytes.count {
            let length = Int(bigEndian32(bytes, at: offset))
            let end = offset + 12 + length
            let type = chunkType(bytes, at: offset)
            if type == "IDAT" || type == "IEND" || end > bytes.count { break }
            if dropped.contains(type) { drop.append(offset..<end) }
            offset = end
        }
        guard !drop.isEmpty else { return bytes }
        var kept: [UInt8] = []
        kept.reserveCapacity(bytes.count)
        var start = 0
        for range in drop {
            kept += bytes[start..<range.lowerBound]
            start = range.upperBound
        }
        kept += bytes[start...]
        return kept
    }

    private static func chunkType(_ bytes: [UInt8], at offset: Int) -> String {
        String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
    }

    private static func bigEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
