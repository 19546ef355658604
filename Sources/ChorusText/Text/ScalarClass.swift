/// The character classes of the tokenizer regexes (`\s`, `\p{L}`, `\p{N}`, everything else), read from
/// Unicode scalar properties as Oniguruma reads them, so that hand-written matchers agree with tokenizers.
enum ScalarClass: Equatable {
    case whitespace
    case letter
    case number
    /// `[^\s\p{L}\p{N}]`: punctuation, symbols, marks, controls, emoji.
    case other

    init(_ scalar: Unicode.Scalar) {
        if scalar.properties.isWhitespace {
            self = .whitespace
            return
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = .other
        }
    }
}

extension Unicode.Scalar {
    /// `\w` of Rust's regex crate, which tokenizers uses to decide whether an added token stands alone.
    var isRegexWordCharacter: Bool {
        let properties = self.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return true
        default:
            return false
        }
    }

    /// Python's `str.isspace`, which transformers' `strip()` calls use: White_Space plus the
    /// ASCII information separators U+001C–U+001F.
    var isPythonWhitespace: Bool {
        properties.isWhitespace || (0x1C...0x1F).contains(value)
    }
}
