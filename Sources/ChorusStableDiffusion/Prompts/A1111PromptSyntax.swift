/// AUTOMATIC1111's prompt-attention syntax, parsed as its `modules/prompt_parser.py` `parse_prompt_attention`
/// parses it: `(text)` multiplies the weight of `text` by 1.1, `[text]` divides it by 1.1, `(text:1.5)` sets the
/// factor, brackets nest and multiply, `\(` `\)` `\[` `\]` `\\` are literal, brackets left open apply to the end,
/// and `BREAK` (a word on its own) starts a new 75-token chunk. The result is A1111's list of pieces, each a
/// run of text with one weight, runs of equal weights merged; a BREAK is the piece ("BREAK", -1).
///
/// A1111 runs a regular expression over the text; this walks the same alternatives over Unicode scalars (Python
/// strings index code points), with Python's `\s`, `\w` and `\d` classes, so the pieces are the same strings and
/// the weights the same doubles (the same products in the same order). Where A1111 raises (a weight such as
/// `1.2.3` fails Python's `float()`) or computes an infinite weight, Chorus refuses the prompt by name.
public struct A1111Prompt: Equatable, Sendable {
    public struct Piece: Equatable, Sendable {
        public var text: String
        public var weight: Double

        public init(text: String, weight: Double) { (self.text, self.weight) = (text, weight) }
        /// A1111 starts a new chunk at a piece that is exactly ("BREAK", -1): `(a BREAK b:1.5)` weighs it and
        /// leaves the word as text, as A1111 does.
        public var isBreak: Bool { text == "BREAK" && weight == -1 }
    }

    public enum SyntaxError: Error, Equatable, CustomStringConvertible {
        /// `(x:1.2.3)`: the characters after the colon are digits and dots but not a number; the offset counts
        /// Unicode scalars from 0 (the message counts from 1).
        case weightIsNotANumber(String, scalarOffset: Int)
        /// `(x:1e400)` or 8 000 nested brackets: a weight that does not fit a double.
        case weightOverflows(String)

        public var description: String {
            switch self {
            case .weightIsNotANumber(let text, let offset):
                "prompt weight \"\(text)\" at character \(offset + 1) is not a number (write it as 1.5 or .5)"
            case .weightOverflows(let text):
                "prompt weight of \"\(text.prefix(40))\" overflows (brackets or factors multiply past 1e308)"
            }
        }
    }

    public let pieces: [Piece]

    public init(pieces: [Piece]) { self.pieces = pieces }

    public init(parsing text: String) throws {
        let s = Array(text.unicodeScalars)
        var res: [(text: [Unicode.Scalar], weight: Double)] = []
        var round: [Int] = [], square: [Int] = []
        func multiply(from start: Int, by factor: Double) {
            for p in start..<res.count { res[p].weight *= factor }
        }
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\\" {
                // `\(` `\)` `\[` `\]` `\\` are the character; a lone backslash is nothing.
                if i + 1 < s.count, "()[]\\".unicodeScalars.contains(s[i + 1]) {
                    res.append(([s[i + 1]], 1))
                    i += 2
                } else {
                    res.append(([], 1))
                    i += 1
                }
                continue
            }
            if c == "(" { round.append(res.count); i += 1; continue }
            if c == "[" { square.append(res.count); i += 1; continue }
            // The token this position starts: `:N)` (a weight), `)`, `]`, `:`, or a run of other characters.
            var token: ArraySlice<Unicode.Scalar>
            var weight: ArraySlice<Unicode.Scalar>? = nil
            if c == ":", let (number, end) = Self.weightToken(s, from: i) {
                token = s[i..<end]
                weight = number
            } else if c == ")" || c == "]" || c == ":" {
                token = s[i..<(i + 1)]
            } else {
                var end = i
                while end < s.count, !"\\()[]:".unicodeScalars.contains(s[end]) { end += 1 }
                token = s[i..<end]
            }
            if let weight, let start = round.popLast() {
                guard let value = PythonText.float(weight) else {
                    throw SyntaxError.weightIsNotANumber(String(String.UnicodeScalarView(weight)), scalarOffset: i + 1)
                }
                multiply(from: start, by: value)
            } else if c == ")" && weight == nil && !round.isEmpty {
                multiply(from: round.removeLast(), by: 1.1)
            } else if c == "]" && !square.isEmpty {
                multiply(from: square.removeLast(), by: 1 / 1.1)
            } else {
                for (n, part) in Self.splitAtBreaks(token).enumerated() {
                    if n > 0 { res.append((Array("BREAK".unicodeScalars), -1)) }
                    res.append((part, 1))
                }
            }
            i = token.endIndex
        }
        for start in round { multiply(from: start, by: 1.1) }
        for start in square { multiply(from: start, by: 1 / 1.1) }
        if res.isEmpty { res = [([], 1)] }
        var merged: [Piece] = []
        for (scalars, weight) in res {
            let piece = String(String.UnicodeScalarView(scalars))
            guard weight.isFinite else { throw SyntaxError.weightOverflows(piece) }
            if let last = merged.last, last.weight == weight {
                merged[merged.count - 1].text += piece
            } else {
                merged.append(Piece(text: piece, weight: weight))
            }
        }
        pieces = merged
    }

    /// `:` `[+-]?[.\d]+` `)` at `start`: the number's scalars and the index past `)`, or nil (then `:` is text).
    private static func weightToken(_ s: [Unicode.Scalar], from start: Int) -> (ArraySlice<Unicode.Scalar>, Int)? {
        var i = start + 1
        let numberStart = i
        if i < s.count, s[i] == "+" || s[i] == "-" { i += 1 }
        let digitsStart = i
        while i < s.count, s[i] == "." || s[i].properties.generalCategory == .decimalNumber { i += 1 }
        guard i > digitsStart, i < s.count, s[i] == ")" else { return nil }
        return (s[numberStart..<i], i + 1)
    }

    /// Python's `re.split(r"\s*\bBREAK\b\s*", text)`: BREAK with a non-word character (or an end) on each side
    /// takes the whitespace around it; matches never overlap, left to right.
    private static func splitAtBreaks(_ text: ArraySlice<Unicode.Scalar>) -> [[Unicode.Scalar]] {
        let s = Array(text), word = Array("BREAK".unicodeScalars)
        var parts: [[Unicode.Scalar]] = [], partStart = 0, i = 0
        while i + word.count <= s.count {
            if Array(s[i..<(i + word.count)]) == word,
               i == 0 || !PythonText.isWord(s[i - 1]), i + word.count == s.count || !PythonText.isWord(s[i + word.count]) {
                var start = i
                while start > partStart, PythonText.isSpace(s[start - 1]) { start -= 1 }
                var end = i + word.count
                while end < s.count, PythonText.isSpace(s[end]) { end += 1 }
                parts.append(Array(s[partStart..<start]))
                partStart = end
                i = end
            } else {
                i += 1
            }
        }
        parts.append(Array(s[partStart...]))
        return parts
    }
}
