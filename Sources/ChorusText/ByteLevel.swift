/// GPT-2's byte-level alphabet: every byte gets a printable character, so BPE works on any UTF-8.
enum ByteLevel {
    static let byteToCharacter: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            table[byte] = Character(Unicode.Scalar(printable ? byte : { defer { next += 1 }; return next }())!)
        }
        return table
    }()

    static let characterToByte: [Character: UInt8] = {
        Dictionary(uniqueKeysWithValues: byteToCharacter.enumerated().map { ($0.element, UInt8($0.offset)) })
    }()

    static func encode(_ text: Substring) -> String {
        String(text.utf8.map { byteToCharacter[Int($0)] })
    }

    static func decode(_ text: String) -> [UInt8] {
        text.compactMap { characterToByte[$0] }
    }

    /// GPT-2's pre-tokenizer, written out instead of run as a regex:
    /// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    static func split(_ text: String) -> [Substring] {
        let scalars = Array(text.unicodeScalars)
        let indices = Array(text.unicodeScalars.indices) + [text.unicodeScalars.endIndex]
        var pieces: [Substring] = []
        var i = 0
        func kind(_ s: Unicode.Scalar) -> Int { isLetter(s) ? 1 : isNumber(s) ? 2 : s.properties.isWhitespace ? 3 : 4 }
        func run(from start: Int, of k: Int) -> Int {
            var j = start
            while j < scalars.count && kind(scalars[j]) == k { j += 1 }
            return j
        }
        while i < scalars.count {
            let c = scalars[i]
            var end = i + 1
            if c == "'" , i + 1 < scalars.count {
                let rest = String(String.UnicodeScalarView(scalars[(i + 1)..<min(i + 3, scalars.count)]))
                if ["re", "ve", "ll"].contains(where: { rest.hasPrefix($0) }) { end = i + 3 }
                else if let first = rest.first, "stmd".contains(first) { end = i + 2 }
                else { end = run(from: i, of: 4) }
            } else if c == " ", i + 1 < scalars.count, kind(scalars[i + 1]) != 3 {
                end = run(from: i + 1, of: kind(scalars[i + 1]))
            } else if kind(c) == 3 {
                let whitespaceEnd = run(from: i, of: 3)
                if whitespaceEnd == scalars.count || whitespaceEnd - i == 1 {
                    end = whitespaceEnd
                } else {
                    end = whitespaceEnd - 1  // leave the last one to prefix the next word (\s+(?!\S))
                }
            } else {
                end = run(from: i, of: kind(c))
            }
            pieces.append(Substring(text.unicodeScalars[indices[i]..<indices[end]]))
            i = end
        }
        return pieces
    }

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
}
