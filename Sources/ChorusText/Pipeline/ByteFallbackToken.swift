/// SentencePiece's byte tokens "<0x00>" … "<0xFF>", which spell the bytes of characters the
/// vocabulary lacks.
enum ByteFallbackToken {
    private static let spellings: [String] = (0...255).map { byte in
        let hex = String(byte, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    static func spelling(of byte: UInt8) -> String { spellings[Int(byte)] }

    /// The byte a token spells, or nil for any other token.
    static func byte(of token: String) -> UInt8? {
        let scalars = Array(token.unicodeScalars)
        guard scalars.count == 6, token.startsWithScalars("<0x"), scalars[5] == ">" else { return nil }
        return UInt8(String(scalars: scalars[3..<5]), radix: 16)
    }
}
