/// Where something is in the template source, 1-based.
struct SourcePosition: Sendable {
    let line: Int
    let column: Int
}

struct TemplateToken: Sendable {
    enum Kind: Sendable, Equatable {
        case name(String), string(String), int(Int), double(Double), op(String)
        /// The closing `}}` or `%}` of the tag, so the parser can say a tag ended too early.
        case end
    }

    let kind: Kind
    let position: SourcePosition
}

/// The template cut into literal text and tags, with Jinja's whitespace control already applied to the text.
enum TemplatePiece: Sendable {
    case text(String)
    case output([TemplateToken], SourcePosition)
    case statement([TemplateToken], SourcePosition)
}

/// Splits a template the way jinja2's lexer does with `trim_blocks=True, lstrip_blocks=True`
/// (how Hugging Face renders chat templates).
struct TemplateLexer {
    private let src: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var i = 0
    /// jinja2 lstrips a tag at the very start of the text only if the previous tag ended with a newline.
    private var lineStarting = true
    private var pieces: [TemplatePiece] = []

    init(_ source: String) {
        // jinja2 normalises newlines and, without keep_trailing_newline, drops one final newline.
        var text = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if text.hasSuffix("\n") { text.removeLast() }
        src = Array(text.unicodeScalars)
        for (k, u) in src.enumerated() where u == "\n" { lineStarts.append(k + 1) }
    }

    func position(_ index: Int) -> SourcePosition {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return SourcePosition(line: lo + 1, column: index - lineStarts[lo] + 1)
    }

    private func error(_ message: String, at index: Int) -> TemplateError {
        let p = position(index)
        return TemplateError(.syntax, message, line: p.line, column: p.column)
    }

    private func at(_ k: Int, _ s: String) -> Bool {
        var k = k
        for u in s.unicodeScalars {
            guard k < src.count, src[k] == u else { return false }
            k += 1
        }
        return true
    }

    private func isSpace(_ k: Int) -> Bool { k < src.count && src[k].properties.isWhitespace }

    mutating func tokenize() throws -> [TemplatePiece] {
        while i < src.count {
            guard let start = nextTagStart(from: i) else {
                emitText(src[i...])
                break
            }
            let kind = src[start + 1]
            let sign: Unicode.Scalar? = start + 2 < src.count && (src[start + 2] == "-" || src[start + 2] == "+") ? src[start + 2] : nil
            emitText(stripBeforeTag(src[i..<start], sign: sign, isBlock: kind != "{"))
            i = start + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#":
                guard let close = find("#}", from: i) else { throw error("missing end of comment tag", at: start) }
                finishTag(closeAt: close, sign: close > i ? src[close - 1] : nil, trims: true)
            case "%" where isRawTag(from: i):
                try readRaw(tagStart: start)
            default:
                let tokens = try readTokens(closing: kind == "{" ? "}}" : "%}", tagStart: start)
                pieces.append(kind == "{" ? .output(tokens, position(start)) : .statement(tokens, position(start)))
            }
        }
        return pieces
    }

    private func nextTagStart(from k: Int) -> Int? {
        var k = k
        while k + 1 < src.count {
            if src[k] == "{", src[k + 1] == "{" || src[k + 1] == "%" || src[k + 1] == "#" { return k }
            k += 1
        }
        return nil
    }

    private func find(_ s: String, from k: Int) -> Int? {
        var k = k
        while k < src.count {
            if at(k, s) { return k }
            k += 1
        }
        return nil
    }

    private mutating func emitText(_ text: ArraySlice<Unicode.Scalar>) {
        if !text.isEmpty { pieces.append(.text(string(text.indices))) }
    }

    /// `{%-` eats all whitespace before the tag; lstrip_blocks eats the indentation of a block or comment tag
    /// that starts its line.
    private func stripBeforeTag(_ text: ArraySlice<Unicode.Scalar>, sign: Unicode.Scalar?, isBlock: Bool) -> ArraySlice<Unicode.Scalar> {
        if sign == "-" {
            var end = text.endIndex
            while end > text.startIndex, text[end - 1].properties.isWhitespace { end -= 1 }
            return text[text.startIndex..<end]
        }
        guard sign != "+", isBlock else { return text }
        let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? text.startIndex
        guard lineStart > text.startIndex || lineStarting, lineStart < text.endIndex,
              text[lineStart...].allSatisfy({ $0.properties.isWhitespace }) else { return text }
        return text[text.startIndex..<lineStart]
    }

    /// Moves past a closing tag at `close`: `-%}` eats all whitespace after it, trim_blocks one newline.
    private mutating func finishTag(closeAt close: Int, sign: Unicode.Scalar?, trims: Bool) {
        i = close + 2
        if sign == "-" {
            while isSpace(i) { i += 1 }
        } else if trims, sign != "+", i < src.count, src[i] == "\n" {
            i += 1
        }
        lineStarting = src[i - 1] == "\n"
    }

    private func isRawTag(from k: Int) -> Bool {
        var k = k
        while isSpace(k) { k += 1 }
        guard at(k, "raw") else { return false }
        k += 3
        while isSpace(k) { k += 1 }
        return at(k, "%}") || at(k, "-%}")
    }

    /// `{% raw %}` keeps its body verbatim; jinja2 does not trim the newline after the opening tag.
    private mutating func readRaw(tagStart: Int) throws {
        guard let open = find("%}", from: i) else { throw error("missing end of raw directive", at: tagStart) }
        i = open + 2
        if src[open - 1] == "-" { while isSpace(i) { i += 1 } }
        lineStarting = src[i - 1] == "\n"
        var k = i
        while let start = find("{%", from: k) {
            var j = start + 2
            let sign: Unicode.Scalar? = j < src.count && (src[j] == "-" || src[j] == "+") ? src[j] : nil
            if sign != nil { j += 1 }
            while isSpace(j) { j += 1 }
            if at(j, "endraw") {
                j += 6
                while isSpace(j) { j += 1 }
                let close = at(j, "-%}") || at(j, "+%}") ? j + 1 : j
                if at(close, "%}") {
                    emitText(stripBeforeTag(src[i..<start], sign: sign, isBlock: true))
                    finishTag(closeAt: close, sign: src[close - 1], trims: true)
                    return
                }
            }
            k = start + 2
        }
        throw error("missing end of raw directive", at: tagStart)
    }

    private static let operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                                    "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"]

    private mutating func readTokens(closing: String, tagStart: Int) throws -> [TemplateToken] {
        var tokens: [TemplateToken] = []
        var closers: [String] = []
        while true {
            while isSpace(i) { i += 1 }
            guard i < src.count else { throw error("missing '\(closing)' to close this tag", at: tagStart) }
            let here = position(i)
            if closers.isEmpty, at(i, closing) || ((at(i, "-") || (closing == "%}" && at(i, "+"))) && at(i + 1, closing)) {
                let close = at(i, closing) ? i : i + 1
                tokens.append(TemplateToken(kind: .end, position: here))
                finishTag(closeAt: close, sign: close > i ? src[i] : nil, trims: closing == "%}")
                return tokens
            }
            let u = src[i]
            let kind: TemplateToken.Kind
            if u == "_" || u.properties.isAlphabetic && u.isASCII {
                let start = i
                while i < src.count, src[i] == "_" || (src[i].isASCII && (src[i].properties.isAlphabetic || src[i].properties.numericType != nil)) { i += 1 }
                kind = .name(string(start..<i))
            } else if u.isASCII, u.properties.numericType != nil {
                kind = readNumber()
            } else if u == "'" || u == "\"" {
                kind = .string(try readString(quote: u))
            } else if let op = Self.operators.first(where: { at(i, $0) }) {
                if let pair = ["(": ")", "[": "]", "{": "}"][op] { closers.append(pair) }
                if ")]}".contains(op) {
                    guard closers.last == op else {
                        throw error("unexpected '\(op)'" + (closers.last.map { ", expected '\($0)'" } ?? ""), at: i)
                    }
                    closers.removeLast()
                }
                i += op.unicodeScalars.count
                kind = .op(op)
            } else {
                throw error("unexpected character '\(u)'", at: i)
            }
            tokens.append(TemplateToken(kind: kind, position: here))
        }
    }

    private func string(_ range: Range<Int>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[range])
        return String(s)
    }

    private func isDigit(_ k: Int) -> Bool { k < src.count && src[k].isASCII && src[k].properties.numericType != nil }

    private mutating func readNumber() -> TemplateToken.Kind {
        let start = i
        while isDigit(i) { i += 1 }
        var isFloat = false
        if i < src.count, src[i] == ".", isDigit(i + 1) {
            isFloat = true
            i += 1
            while isDigit(i) { i += 1 }
        }
        if i < src.count, src[i] == "e" || src[i] == "E" {
            let sign = i + 1 < src.count && (src[i + 1] == "+" || src[i + 1] == "-") ? 1 : 0
            if isDigit(i + 1 + sign) {
                isFloat = true
                i += 1 + sign
                while isDigit(i) { i += 1 }
            }
        }
        let text = string(start..<i)
        if !isFloat, let v = Int(text) { return .int(v) }
        return .double(Double(text) ?? .infinity)
    }

    /// Python string escapes; an unknown escape keeps its backslash, as Python does.
    private mutating func readString(quote: Unicode.Scalar) throws -> String {
        let start = i
        i += 1
        var out = String.UnicodeScalarView()
        while i < src.count, src[i] != quote {
            guard src[i] == "\\", i + 1 < src.count else {
                out.append(src[i])
                i += 1
                continue
            }
            let e = src[i + 1]
            i += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "0": out.append("\0")
            case "\\", "'", "\"": out.append(e)
            case "\n": break
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                guard i + width <= src.count, let code = UInt32(string(i..<i + width), radix: 16),
                      let scalar = Unicode.Scalar(code) else { throw error("invalid \\\(e) escape", at: i - 2) }
                out.append(scalar)
                i += width
            default: out.append("\\"); out.append(e)
            }
        }
        guard i < src.count else { throw error("unterminated string", at: start) }
        i += 1
        return String(out)
    }
}
