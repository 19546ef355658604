/// GPT-2's reversible map from the 256 byte values to printable scalars, which lets byte-level BPE
/// vocabularies hold any byte sequence as ordinary text (a space becomes "Ġ", a newline "Ċ").
enum ByteLevelAlphabet {
    /// Printable bytes map to themselves; the others to U+0100 onwards, in byte order.
    static let scalarForByte: [Unicode.Scalar] = {
        let printable = Set<UInt8>(Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF))
        var next: UInt32 = 0x100
        return (0...255).map { (byte: Int) -> Unicode.Scalar in
            if printable.contains(UInt8(byte)) { return Unicode.Scalar(UInt8(byte)) }
            defer { next += 1 }
            return Unicode.Scalar(next)!
        }
    }()

    static let byteForScalar: [Unicode.Scalar: UInt8] = Dictionary(
        uniqueKeysWithValues: scalarForByte.enumerated().map { ($0.element, UInt8($0.offset)) })

    /// The UTF-8 bytes of `text`, each written as its scalar.
    static func encode(_ text: String) -> String {
        String(scalars: text.utf8.map { scalarForByte[Int($0)] })
    }

    /// The bytes a token stands for, or nil if it holds a scalar outside the alphabet (an added token
    /// such as "<|endoftext|>" whose characters happen to be outside it).
    static func bytes(of token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for scalar in token.unicodeScalars {
            guard let byte = byteForScalar[scalar] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
