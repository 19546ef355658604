/// ggml's quantized blocks turned into float32, value by value exactly as ggml's reference
/// `dequantize_row_*` (and the `gguf` package) compute them: each product and sum rounded to float32 in
/// the same order, never fused. Layouts, for one block:
/// - Q4_0: f16 d, 16 bytes of nibbles; value i (i < 16) is d·(low nibble of byte i − 8), value i + 16 the high nibble.
/// - Q4_1: f16 d, f16 m, 16 bytes of nibbles; d·q + m.
/// - Q5_0 / Q5_1: as Q4_0 / Q4_1 with a fifth bit per value in a 32-bit word before the nibbles; Q5_0 subtracts 16.
/// - Q8_0: f16 d, 32 int8; d·q.
/// - Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, 128 bytes of nibbles
///   (byte b of each 32-byte group gives value b of an even sub-block in its low nibble, of the next in its high).
/// - Q5_K: as Q4_K with 32 bytes of fifth bits (bit j of byte l for value l of sub-block j) before the nibbles.
/// - Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales (one per 16 values), f16 d; d·scale·(q − 32).
public enum GGMLBlocks {
    @inline(__always) static func half(_ p: UnsafeRawBufferPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(p[offset]) | UInt16(p[offset + 1]) << 8))  // checked: widens a byte or a small shift
    }

    /// Turns `count` values (whole blocks) of `type` in `bytes` into float32 at `out`.
    public static func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<Float>, count: Int) {
        let blocks = count / type.blockSize
        for block in 0..<blocks {
            let p = UnsafeRawBufferPointer(rebasing: bytes[(block * type.typeSize)..<((block + 1) * type.typeSize)])
            let y = out + block * type.blockSize
            switch type {
            case .f32: y[0] = Float(bitPattern: p.loadUnaligned(as: UInt32.self).littleEndian)
            case .f16: y[0] = half(p, 0)
            case .bf16: y[0] = Float(bitPattern: UInt32(p.loadUnaligned(as: UInt16.self).littleEndian) << 16)  // checked: widens a byte or a small shift
            case .q4_0: q4_0(p, y)
            case .q4_1: q4_1(p, y)
            case .q5_0: q5(p, y, offsetted: false)
            case .q5_1: q5(p, y, offsetted: true)
            case .q8_0: q8_0(p, y)
            case .q4_K: qK(p, y, fifthBits: false)
            case .q5_K: qK(p, y, fifthBits: true)
            case .q6_K: q6_K(p, y)
            default: preconditionFailure("\(type) cannot be dequantized; GGUFFile.tensor checks canDequantize first")
            }
        }
    }

    static func q4_0(_ p: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for i in 0..<16 {
            let byte = p[2 + i]
            y[i] = d * Float(Int(byte & 0xF) - 8)  // checked: widens a byte or a small shift
            y[i + 16] = d * Float(Int(byte >> 4) - 8)  // checked: widens a byte or a small shift
        }
    }

    static func q4_1(_ p: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), m = half(p, 2)
        for i in 0..<16 {
            let byte = p[4 + i]
            y[i] = d * Float(byte & 0xF) + m
            y[i + 16] = d * Float(byte >> 4) + m
        }
    }

    /// Q5_0 (`offsetted` false: q − 16, scaled) and Q5_1 (d·q + m).
    static func q5(_ p: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>, offsetted: Bool) {
        let d = half(p, 0), m: Float = offsetted ? half(p, 2) : 0
        let highAt = offsetted ? 4 : 2, lowAt = highAt + 4
        let high = UInt32(p[highAt]) | UInt32(p[highAt + 1]) << 8 | UInt32(p[highAt + 2]) << 16 | UInt32(p[highAt + 3]) << 24  // checked: widens a byte or a small shift
        for j in 0..<32 {
            let nibble = j < 16 ? p[lowAt + j] & 0xF : p[lowAt + j - 16] >> 4
            let q = Int(nibble) | Int((high >> UInt32(j)) & 1) << 4  // checked: widens a byte or a small shift
            y[j] = offsetted ? d * Float(q) + m : d * Float(q - 16)
        }
    }

    static func q8_0(_ p: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for i in 0..<32 { y[i] = Float(Int8(bitPattern: p[2 + i])) * d }
    }

    /// The 6-bit scale and min of sub-block `j` (0 ..< 8) from a K-quant's 12 packed bytes at `at`.
    @inline(__always) static func scaleAndMin(_ p: UnsafeRawBufferPointer, at: Int, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (p[at + j] & 63, p[at + j + 4] & 63) }
        return ((p[at + j + 4] & 0xF) | ((p[at + j - 4] >> 6) << 4), (p[at + j + 4] >> 4) | ((p[at + j] >> 6) << 4))
    }

    /// Q4_K and Q5_K: eight sub-blocks of 32, each scaled by d·scale and shifted by dmin·min.
    static func qK(_ p: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>, fifthBits: Bool) {
        let d = half(p, 0), dmin = half(p, 2)
        let highAt = 16, lowAt = fifthBits ? 48 : 16
        for j in 0..<8 {
            let (scale, minimum) = scaleAndMin(p, at: 4, j)
            let dl = d * Float(scale), ml = dmin * Float(minimum)
            let group = lowAt + 32 * (j / 2), shift = UInt8(4 * (j % 2))
            for l in 0..<32 {
                var q = (p[group + l] >> shift) & 0xF
                if fifthBits { q |= ((p[highAt + l] >> UInt8(j)) & 1) << 4 }  // checked: widens a byte or a small shift
                y[32 * j + l] = dl * Float(q) - ml
            }
        }
    }

    static func q6_K(_ p: UnsafeRawBufferPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 208)
        for e in 0..<256 {
            let h = e / 128, r = e % 128
            let low = (p[64 * h + r % 64] >> UInt8(4 * (r / 64))) & 0xF
            let high = (p[128 + 32 * h + r % 32] >> UInt8(2 * (r / 32))) & 3
            let scale = Float(Int8(bitPattern: p[192 + e / 16]))
            y[e] = (d * scale) * Float(Int(low | high << 4) - 32)  // checked: widens a byte or a small shift
        }
    }
}
