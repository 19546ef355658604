import Foundation

/// compel's prompt grammar (`compel/prompt_parser.py`, `build_parser_syntax`: a pyparsing grammar) as a
/// backtracking descent over Unicode scalars. Each function is one of the grammar's expressions and keeps
/// pyparsing's rules: most expressions skip " \n\t\r" before they match, the pieces of a `Combine` do not;
/// alternatives are tried in order (`MatchFirst`), repetitions are greedy and never give back. A function
/// returns nil where pyparsing raises ParseException (the caller tries its next alternative) and throws
/// where a parse action raises anything else, which ends the parse as it ends compel's.
struct CompelGrammar {
    indirect enum Node: Equatable {
        /// A `Fragment`, weight 1, its escapes already resolved once.
        case text(String)
        /// `(…)1.3`, `word+`, `.attend(…)`: the weight multiplies everything inside.
        case attention(Double, [Node])
        /// `.swap(…)` and `withLora(…)`: parsed as compel parses them, refused once the parse is done.
        case swap, lora
    }

    enum Option: Equatable {
        case number(Double)
        /// A keyword or `keyword=value`: compel takes `float(keyword)` of it as a weight.
        case keyword(String)
    }

    enum Top {
        /// `(…).and(…)`, `(…).add(…)`: each item's nodes, and their weights.
        case conjunction([[Node]], [Double])
        /// `(…).blend(…)` between optional `withLora(…)` runs: the items, their weights, whether they are
        /// normalised to a sum of 1.
        case blend([[Node]], [Double], normalize: Bool, loras: Bool)
        /// Everything else: the prompt's nodes, with loras around it if any.
        case prompt([Node], loras: Bool)
    }

    let s: [Unicode.Scalar]
    /// Parenthesised and quoted fragments by position: the operators try the same target several times
    /// (`.attend`, then an implicit weight, then `.swap`), which without this is exponential in the nesting.
    private final class Memo {
        var parenthesized: [Int: ([Node], Int)?] = [:]
        var quoted: [Int: ([Node], Int)?] = [:]
    }
    private let memo = Memo()

    /// Parentheses nested deeper than this are refused before parsing: each level is a few frames of recursion.
    static let maxNesting = 64

    init(_ scalars: [Unicode.Scalar]) { s = scalars }

    static let syntactic: Set<Unicode.Scalar> = ["(", ")", "\"", ",", ".", "+", "-", "="]
    /// Python's `string.whitespace`.
    static let asciiSpace: Set<Unicode.Scalar> = [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"]
    /// pyparsing's default whitespace.
    static let skipped: Set<Unicode.Scalar> = [" ", "\n", "\t", "\r"]
    /// What `pp.White()` skips before matching " \t\r\n": the rest of its table of spaces.
    static let whiteSkips: Set<Unicode.Scalar> = ["\u{0C}", "\u{A0}", "\u{1680}", "\u{180E}", "\u{2000}", "\u{2001}", "\u{2002}",
                                                  "\u{2003}", "\u{2004}", "\u{2005}", "\u{2006}", "\u{2007}", "\u{2008}", "\u{2009}",
                                                  "\u{200A}", "\u{200B}", "\u{202F}", "\u{205F}", "\u{3000}"]

    func skip(_ p: Int) -> Int {
        var q = p
        while q < s.count, Self.skipped.contains(s[q]) { q += 1 }
        return q
    }

    func literal(_ text: String, _ p: Int) -> Int? {
        let q = skip(p), word = Array(text.unicodeScalars)
        guard q + word.count <= s.count, Array(s[q..<(q + word.count)]) == word else { return nil }
        return q + word.count
    }

    /// `Word(chars)`: one or more of them.
    func word(_ p: Int, _ accepts: (Unicode.Scalar) -> Bool) -> (String, Int)? {
        let q = skip(p)
        var e = q
        while e < s.count, accepts(s[e]) { e += 1 }
        return e > q ? (string(q..<e), e) : nil
    }

    func string(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(s[range])) }

    /// `pp.White()`: skips its other spaces, then one or more of " \t\r\n".
    func white(_ p: Int) -> Int? {
        var q = p
        while q < s.count, Self.whiteSkips.contains(s[q]) { q += 1 }
        var e = q
        while e < s.count, [" ", "\t", "\r", "\n"].contains(s[e]) { e += 1 }
        return e > q ? e : nil
    }

    // MARK: - Words and numbers

    /// `non_syntax_word`: escaped syntax (`\(`), a `+` or `-` inside a word, digits, any other character that is
    /// neither whitespace nor syntax; the matched text, its escapes resolved.
    func nonSyntaxWord(_ p: Int) -> ([Node], Int)? {
        let start = skip(p)
        var q = start
        while q < s.count {
            let c = s[q]
            if c == "\\", q + 1 < s.count, Self.syntactic.contains(s[q + 1]) {
                q += 2
            } else if c == "+" || c == "-" {
                // one_of(['-', '+']) + NotAny(White() | Char(syntactic_chars) | StringEnd())
                guard q + 1 < s.count, ![" ", "\t", "\r", "\n"].contains(s[q + 1]), !Self.syntactic.contains(s[q + 1]) else { break }
                q += 1
            } else if !Self.asciiSpace.contains(c), !Self.syntactic.contains(c) {
                q += 1
            } else {
                break
            }
        }
        return q > start ? ([.text(Self.unescaped(string(start..<q)))], q) : nil
    }

    /// `free_word`: anything up to whitespace (no skipping before it).
    func freeWord(_ p: Int) -> ([Node], Int)? {
        var e = p
        while e < s.count, !Self.asciiSpace.contains(s[e]) { e += 1 }
        return e > p ? ([.text(Self.unescaped(string(p..<e)))], e) : nil
    }

    /// `number`: pyparsing_common.real (`[+-]?(?:\d+\.\d*|\.\d+)`, any script's digits) or an ASCII integer
    /// with an optional minus.
    func number(_ p: Int) -> (Double, Int)? {
        let q = skip(p)
        var i = q
        if i < s.count, s[i] == "+" || s[i] == "-" { i += 1 }
        var e = i
        while e < s.count, PythonText.isDigit(s[e]) { e += 1 }
        if e > i, e < s.count, s[e] == "." {
            e += 1
            while e < s.count, PythonText.isDigit(s[e]) { e += 1 }
            if let value = PythonText.float(s[q..<e]) { return (value, e) }
        } else if e == i, i < s.count, s[i] == "." {
            e = i + 1
            while e < s.count, PythonText.isDigit(s[e]) { e += 1 }
            if e > i + 1, let value = PythonText.float(s[q..<e]) { return (value, e) }
        }
        var d = q
        if d < s.count, s[d] == "-" { d += 1 }
        var end = d
        while end < s.count, s[end].isASCII, s[end].properties.numericType == .decimal { end += 1 }
        guard end > d, let value = Double(string(q..<end)) else { return nil }
        return (value, end)
    }

    /// `keyword`: `Word(alphanums + '_' + '-')`.
    func keyword(_ p: Int) -> (String, Int)? {
        word(p) { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType == .decimal || $0 == "_" || $0 == "-") }
    }

    // MARK: - Quotes

    /// `QuotedString('"', esc_quote='\\"')`: the text between the quotes with pyparsing's unquoting (`\t`-style,
    /// octal, `\0`, `\xHH` and `\uHHHH` escapes; `\"` to `"`). The closing quote is the first unescaped one on
    /// the line, or else the last escaped one (the regular expression backtracks to it).
    func quotedString(_ p: Int) throws -> (String, Int)? {
        let q = skip(p)
        guard q < s.count, s[q] == "\"" else { return nil }
        var i = q + 1, lastEscapedQuote: Int? = nil
        var close: Int? = nil
        while i < s.count {
            if s[i] == "\\", i + 1 < s.count, s[i + 1] == "\"" {
                lastEscapedQuote = i + 1
                i += 2
            } else if s[i] == "\"" {
                close = i
                break
            } else if s[i] == "\n" || s[i] == "\r" {
                break
            } else {
                i += 1
            }
        }
        guard let end = close ?? lastEscapedQuote else { return nil }
        let inner = try Self.unquoted(Array(s[(q + 1)..<end]))
        return (inner, end + 1)
    }

    static func unquoted(_ t: [Unicode.Scalar]) throws -> String {
        var out = [Unicode.Scalar](), i = 0
        func hex(_ from: Int, _ count: Int) -> UInt32? {
            guard from + count <= t.count, t[from..<(from + count)].allSatisfy({ $0.isASCII && Character($0).isHexDigit }) else { return nil }
            return UInt32(String(String.UnicodeScalarView(t[from..<(from + count)])), radix: 16)  // checked: 2 or 4 hex digits, parsed as optional
        }
        while i < t.count {
            if t[i] == "\\", i + 1 < t.count {
                let n = t[i + 1]
                let whitespace: [Unicode.Scalar: Unicode.Scalar] = ["t": "\t", "n": "\n", "f": "\u{0C}", "r": "\r"]
                if let w = whitespace[n] {
                    out.append(w)
                    i += 2
                    continue
                }
                if i + 3 < t.count, t[(i + 1)...(i + 3)].allSatisfy({ ("0"..."7").contains($0) }) {
                    out.append(Unicode.Scalar(UInt32(String(String.UnicodeScalarView(t[(i + 1)...(i + 3)])), radix: 8) ?? 0) ?? "\0")  // checked: three octal digits, at most 0o777
                    i += 4
                    continue
                }
                if n == "0" {
                    out.append("\0")
                    i += 2
                    continue
                }
                if n == "x" || n == "u", let value = hex(i + 2, n == "x" ? 2 : 4) {
                    guard let scalar = Unicode.Scalar(value) else {
                        throw CompelPrompt.SyntaxError.notACharacter(String(format: "\\u%04x", value))
                    }
                    out.append(scalar)
                    i += n == "x" ? 4 : 6
                    continue
                }
            }
            out.append(t[i])
            i += 1
        }
        return String(String.UnicodeScalarView(out)).replacingScalars("\\\"", with: "\"")
    }

    /// `quoted_fragment` (with `fragment_including_commas_or_periods`) or `quoted_prompt` (with `prompt`):
    /// the quoted text parsed again, whole, its own quotes escaped; blank text is one empty fragment.
    func quoted(_ p: Int, asPrompt: Bool = false) throws -> ([Node], Int)? {
        if !asPrompt, let known = memo.quoted[p] { return known }
        let result = try quotedOnce(p, asPrompt: asPrompt)
        if !asPrompt { memo.quoted[p] = .some(result) }
        return result
    }

    private func quotedOnce(_ p: Int, asPrompt: Bool) throws -> ([Node], Int)? {
        guard let (inner, end) = try quotedString(p) else { return nil }
        guard !PythonText.isBlank(inner.unicodeScalars) else { return ([.text("")], end) }
        let grammar = CompelGrammar(Array(inner.replacingScalars("\"", with: "\\\"").unicodeScalars))
        let (nodes, stop) = asPrompt ? try grammar.prompt(0) : try grammar.fragment(0, commas: true)
        guard grammar.skip(stop) == grammar.s.count else { return nil }
        return (nodes, end)
    }

    // MARK: - Fragments

    /// `fragment_including_commas_or_periods` (`commas`) or `fragment_excluding_commas`.
    func fragment(_ p: Int, commas: Bool) throws -> ([Node], Int) {
        var nodes: [Node] = [], q = p
        while true {
            if let (n, e) = try lora(q) ?? attention(q) ?? swap(q) ?? parenthesized(q) ?? quoted(q) ?? nonSyntaxWord(q) {
                nodes += n
                q = e
            } else if commas, let e = literal(",", q) ?? literal(".", q) {
                nodes.append(.text(string((e - 1)..<e)))
                q = e
            } else {
                return (nodes, q)
            }
        }
    }

    func parenthesized(_ p: Int) throws -> ([Node], Int)? {
        if let known = memo.parenthesized[p] { return known }
        let result = try parenthesizedOnce(p)
        memo.parenthesized[p] = .some(result)
        return result
    }

    private func parenthesizedOnce(_ p: Int) throws -> ([Node], Int)? {
        guard let open = literal("(", p) else { return nil }
        let (nodes, e) = try fragment(open, commas: true)
        guard let close = literal(")", e) else { return nil }
        return (nodes, close)
    }

    func operatorTarget(_ p: Int) throws -> ([Node], Int)? {
        try quoted(p) ?? parenthesized(p) ?? nonSyntaxWord(p)
    }

    // MARK: - Operators

    enum WeightOperator { case plus(Int), minus(Int), value(Double) }

    func weightOperator(_ p: Int, numbers: Bool = true) -> (WeightOperator, Int)? {
        if let (w, e) = word(p, { $0 == "+" }) { return (.plus(w.unicodeScalars.count), e) }
        if let (w, e) = word(p, { $0 == "-" }) { return (.minus(w.unicodeScalars.count), e) }
        if numbers, let (v, e) = number(p) { return (.value(v), e) }
        return nil
    }

    /// `pow(1.1, n)` / `pow(0.9, n)`: Python raises OverflowError where the power is past the largest double.
    static func weight(_ op: WeightOperator) throws -> Double {
        switch op {
        case .value(let v): return v
        case .plus(let n), .minus(let n):
            let w = pow(op.isPlus ? 1.1 : 0.9, Double(n))
            guard w.isFinite else { throw CompelPrompt.SyntaxError.weightOverflows(String(repeating: op.isPlus ? "+" : "-", count: n)) }
            return w
        }
    }

    func attention(_ p: Int) throws -> ([Node], Int)? {
        // attention_explicit: target.attend(op)
        if let (target, e) = try operatorTarget(p), let a = literal(".attend", e), let open = literal("(", a),
           let (op, o) = weightOperator(open), let close = literal(")", o) {
            return ([.attention(try Self.weight(op), target)], close)
        }
        // attention_implicit: "quoted"op or (parenthesized)op, or word+ / word-, nothing between.
        if let (target, e) = try quoted(p) ?? parenthesized(p), white(e) == nil, let (op, o) = weightOperator(e) {
            return ([.attention(try Self.weight(op), target)], o)
        }
        if let (target, e) = nonSyntaxWord(p), white(e) == nil, let (op, o) = weightOperator(e, numbers: false) {
            return ([.attention(try Self.weight(op), target)], o)
        }
        return nil
    }

    func swap(_ p: Int) throws -> ([Node], Int)? {
        guard let (_, e) = try operatorTarget(p), let a = literal(".swap", e), let open = literal("(", a) else { return nil }
        var (_, q) = try fragment(open, commas: false)
        if let comma = literal(",", q) { q = options(comma).1 }
        guard let close = literal(")", q) else { return nil }
        return ([.swap], close)
    }

    func lora(_ p: Int) -> ([Node], Int)? {
        guard let a = literal("useLora", p) ?? literal("withLora", p), let open = literal("(", a),
              var (_, q) = keyword(open) else { return nil }
        if let comma = literal(",", q), let (_, e) = number(comma) { q = e }
        guard let close = literal(")", q) else { return nil }
        return ([.lora], close)
    }

    /// `options`: a comma-separated list of `keyword=value`, numbers and keywords, possibly empty.
    func options(_ p: Int) -> ([Option], Int) {
        var list: [Option] = [], q = p
        while true {
            let start = list.isEmpty ? q : literal(",", q)
            guard let start, let (option, e) = option(start) else { return (list, q) }
            list.append(option)
            q = e
        }
    }

    func option(_ p: Int) -> (Option, Int)? {
        // `keyword=value`: compel reads the keyword as the weight, whatever the value.
        if let (k, e) = keyword(p), let eq = literal("=", e), let end = number(eq)?.1 ?? keyword(eq)?.1 {
            return (.keyword(k), end)
        }
        if let (v, e) = number(p) { return (.number(v), e) }
        if let (k, e) = keyword(p) { return (.keyword(k), e) }
        return nil
    }

    // MARK: - Prompts

    /// `prompt`: the top level's words, where anything that is not syntax up to whitespace is a word.
    func prompt(_ p: Int) throws -> ([Node], Int) {
        var nodes: [Node] = [], q = p
        while true {
            if let (n, e) = try swap(q) ?? lora(q) ?? attention(q) ?? quoted(q) ?? parenthesized(q) ?? freeWord(q) {
                nodes += n
                q = e
            } else if let e = white(q) {
                q = e
            } else {
                return (nodes, q)
            }
        }
    }

    /// `(item, item, …).name(options)` for blends and conjunctions: the items and the options.
    func operation(_ p: Int, names: [String]) throws -> ([[Node]], [Option], Int)? {
        guard let open = literal("(", p) else { return nil }
        var items: [[Node]] = [], q = open
        while true {
            let start = items.isEmpty ? q : literal(",", q)
            guard let start, let (item, e) = try operatorTarget(start) ?? quoted(start, asPrompt: true) else { break }
            items.append(item)
            q = e
        }
        guard !items.isEmpty, let close = literal(")", q), let name = names.lazy.compactMap({ literal($0, close) }).first,
              let optionsOpen = literal("(", name) else { return nil }
        let (options, o) = options(optionsOpen)
        guard let end = literal(")", o) else { return nil }
        return (items, options, end)
    }

    func loras(_ p: Int) -> (Bool, Int) {
        var q = p, found = false
        while let (_, e) = lora(q) { (q, found) = (e, true) }
        return (found, q)
    }

    /// `conjunction`: an explicit `.and()` (whatever follows it is ignored, as in compel), or loras, a blend or
    /// a prompt, loras, and the end of the text. A blend's and a conjunction's weights are checked as soon as
    /// they match (compel's parse actions raise there), and a blend that matched is not tried as a prompt.
    func conjunction() throws -> Top {
        if depth() > Self.maxNesting { throw CompelPrompt.SyntaxError.nestedTooDeep(limit: Self.maxNesting) }
        if let (items, options, _) = try operation(0, names: [".and", ".add"]) {
            let weights = try options.map(Self.float)
            guard weights.isEmpty || weights.count == items.count else {
                throw CompelPrompt.SyntaxError.weightCount(operator: ".and", prompts: items.count, weights: weights.count)
            }
            return .conjunction(items, weights.isEmpty ? Array(repeating: 1, count: items.count) : weights)
        }
        let (leading, q) = loras(0)
        if let (items, options, e) = try operation(q, names: [".blend"]) {
            var raw = options, normalize = true
            if case .keyword("no_normalize")? = raw.last { (normalize, raw) = (false, Array(raw.dropLast())) }
            let weights = try raw.map(Self.float)
            guard weights.isEmpty || weights.count == items.count else {
                throw CompelPrompt.SyntaxError.weightCount(operator: ".blend", prompts: items.count, weights: weights.count)
            }
            let (trailing, end) = loras(e)
            guard skip(end) == s.count else { throw CompelPrompt.SyntaxError.unparsable(at: skip(end)) }
            return .blend(items, weights.isEmpty ? Array(repeating: 1, count: items.count) : weights,
                          normalize: normalize, loras: leading || trailing)
        }
        let (nodes, e) = try prompt(q)
        let (trailing, end) = loras(e)
        guard skip(end) == s.count else { throw CompelPrompt.SyntaxError.unparsable(at: skip(end)) }
        return .prompt(nodes, loras: leading || trailing)
    }

    /// compel's `float(w[0])` of an option: a number, or Python's float() of a keyword (which only
    /// "inf", "infinity" and "nan" survive, and those are refused later as weights).
    static func float(_ option: Option) throws -> Double {
        switch option {
        case .number(let v): return v
        case .keyword(let k):
            let bare = k.hasPrefix("-") ? String(k.dropFirst()) : k
            guard ["inf", "infinity", "nan"].contains(bare.lowercased()) else { throw CompelPrompt.SyntaxError.notANumber(k) }
            return .infinity
        }
    }

    /// The deepest run of unclosed `(` (escaped ones aside), counted before parsing.
    func depth() -> Int {
        var open = 0, deepest = 0, i = 0
        while i < s.count {
            if s[i] == "\\" { i += 2; continue }
            if s[i] == "(" { open += 1; deepest = max(deepest, open) }
            if s[i] == ")" { open = max(0, open - 1) }
            i += 1
        }
        return deepest
    }

    /// compel's `Fragment.__init__`: `\(`, `\)` and `\"` become the bare characters, each time a fragment is
    /// made (so text made again, as flattening and joining do, loses another level).
    static func unescaped(_ text: String) -> String {
        text.replacingScalars("\\(", with: "(").replacingScalars("\\)", with: ")").replacingScalars("\\\"", with: "\"")
    }
}

extension CompelGrammar.WeightOperator {
    var isPlus: Bool { if case .plus = self { true } else { false } }
}

extension String {
    /// Python's `str.replace`: non-overlapping, left to right, over code points (not grapheme clusters).
    func replacingScalars(_ target: String, with replacement: String) -> String {
        let s = Array(unicodeScalars), t = Array(target.unicodeScalars)
        guard !t.isEmpty, s.count >= t.count else { return self }
        var out = String.UnicodeScalarView(), i = 0
        while i < s.count {
            if i + t.count <= s.count, Array(s[i..<(i + t.count)]) == t {
                out.append(contentsOf: replacement.unicodeScalars)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(out)
    }
}
