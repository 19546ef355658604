/// What Python's `str` methods and `re` classes say of a character, for the prompt grammars recorded from
/// Python tools (A1111's and compel's): they decide on code points, so these take Unicode scalars.
enum PythonText {
    /// `\w` on str: `str.isalnum()` (letters, and characters with a numeric value) or `_`.
    static func isWord(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return c == "_" || c.properties.numericType != nil
        }
    }

    /// `\s` on str: `str.isspace()`.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// `\d` on str: a decimal digit of any script.
    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.properties.generalCategory == .decimalNumber }

    /// `float()` of a sign, decimal digits (any script's, as Python reads them) and dots; nil where Python
    /// raises ValueError.
    static func float(_ scalars: ArraySlice<Unicode.Scalar>) -> Double? {
        var ascii = ""
        for c in scalars {
            if c == "+" || c == "-" || c == "." {
                ascii.unicodeScalars.append(c)
            } else if let value = c.properties.numericValue, isDigit(c), value >= 0, value <= 9 {
                ascii += String(Int(value))  // checked: a decimal digit's value, 0‥9
            } else {
                return nil
            }
        }
        guard ascii.filter({ $0 == "." }).count <= 1, ascii.contains(where: \.isNumber) else { return nil }
        return Double(ascii)
    }

    /// `str.strip()` leaves nothing.
    static func isBlank(_ s: some Collection<Unicode.Scalar>) -> Bool { s.allSatisfy(isSpace) }
}
