/// A prompt in compel's syntax (`word+` ×1.1, `word--` ×0.81, `(a photo)1.3`, `"a phrase"-`, `.attend(w)`,
/// `("a", "b").blend(0.7, 0.3)`, `("a", "b").and()`), parsed as compel's `PromptParser.parse_conjunction`
/// parses it: the conjunction's parts, each a run of fragments of one weight (adjacent equal weights joined by
/// a space) or a blend of such runs. `.swap()` and `withLora()` parse but are refused: they ask the program
/// around compel for prompt-to-prompt attention control and LoRA loading, which Chorus does not do.
public struct CompelPrompt: Equatable, Sendable {
    public struct Fragment: Equatable, Sendable {
        public var text: String
        public var weight: Double
        public init(_ text: String, _ weight: Double) { (self.text, self.weight) = (text, weight) }
    }

    public enum Part: Equatable, Sendable {
        case fragments([Fragment])
        /// Runs whose embeddings are mixed by `weights` (divided by their sum when `normalize`).
        case blend([[Fragment]], weights: [Double], normalize: Bool)
    }

    /// Encoded one after another along the tokens; a part of weight w is the empty prompt's embedding plus
    /// w times its difference from it.
    public var parts: [Part]
    public var weights: [Double]

    public enum SyntaxError: Error, Equatable, CustomStringConvertible {
        case unparsable(at: Int)
        case weightCount(operator: String, prompts: Int, weights: Int)
        case notANumber(String)
        case weightOverflows(String)
        case notACharacter(String)
        case emptyBlendPrompt
        case nestedTooDeep(limit: Int)
        case unsupported(String)

        public var description: String {
            switch self {
            case .unparsable(let at): "compel syntax: cannot parse the prompt at character \(at)"
            case .weightCount(let op, let prompts, let weights): "compel syntax: \(op)() has \(prompts) prompts and \(weights) weights"
            case .notANumber(let text): "compel syntax: the weight \"\(text)\" is not a number"
            case .weightOverflows(let text): "compel syntax: the weight \(text) is not a finite number"
            case .notACharacter(let escape): "compel syntax: the escape \(escape) is not a character"
            case .emptyBlendPrompt: "compel syntax: a prompt of .blend() is empty"
            case .nestedTooDeep(let limit): "compel syntax: parentheses nest deeper than \(limit)"
            case .unsupported(let what): "compel syntax: \(what) is not supported (it needs \(what == ".swap()" ? "prompt-to-prompt attention control" : "LoRA weights"), which Chorus does not load)"
            }
        }
    }

    public init(parts: [Part], weights: [Double]) { (self.parts, self.weights) = (parts, weights) }

    public init(parsing prompt: String) throws {
        // compel's `re.sub(r',(\S)', r', \1', prompt)`: a space after every comma that has none.
        var text = [Unicode.Scalar](), i = 0
        let raw = Array(prompt.unicodeScalars)
        while i < raw.count {
            text.append(raw[i])
            if raw[i] == ",", i + 1 < raw.count, !PythonText.isSpace(raw[i + 1]) {
                text += [" ", raw[i + 1]]
                i += 1
            }
            i += 1
        }
        guard !PythonText.isBlank(text) else {
            self.init(parts: [.fragments([Fragment("", 1)])], weights: [1])
            return
        }
        var parts: [Part] = [], weights: [Double] = []
        switch try CompelGrammar(text).conjunction() {
        case .conjunction(let items, let itemWeights):
            for (item, weight) in zip(items, itemWeights) {
                let run = try Self.flattened(item)
                if !run.isEmpty { (parts, weights) = (parts + [.fragments(run)], weights + [weight]) }
            }
        case .blend(let items, let blendWeights, let normalize, let loras):
            if loras { throw SyntaxError.unsupported("withLora()") }
            let runs = try items.map { try Self.flattened($0) }
            if runs.contains(where: \.isEmpty) { throw SyntaxError.emptyBlendPrompt }
            (parts, weights) = ([.blend(runs, weights: blendWeights, normalize: normalize)], [1])
        case .prompt(let nodes, let loras):
            if loras { throw SyntaxError.unsupported("withLora()") }
            let run = try Self.flattened(nodes)
            if !run.isEmpty { (parts, weights) = ([.fragments(run)], [1]) }
        }
        for w in weights + parts.flatMap(\.allWeights) where !w.isFinite {
            throw SyntaxError.weightOverflows(String(describing: w))
        }
        self.init(parts: parts, weights: weights)
    }

    /// compel's `flatten`: weights multiply down the tree, outer first; each fragment's text is made again
    /// (one more level of escapes resolved); neighbours of equal weight join with a space (made again too).
    static func flattened(_ nodes: [CompelGrammar.Node]) throws -> [Fragment] {
        var out: [Fragment] = []
        func walk(_ nodes: [CompelGrammar.Node], _ scale: Double) throws {
            for node in nodes {
                switch node {
                case .text(let text):
                    let fragment = Fragment(CompelGrammar.unescaped(text), 1 * scale)
                    if let last = out.last, last.weight == fragment.weight {
                        out[out.count - 1].text = CompelGrammar.unescaped(last.text + " " + fragment.text)
                    } else {
                        out.append(fragment)
                    }
                case .attention(let weight, let children): try walk(children, scale * weight)
                case .swap: throw SyntaxError.unsupported(".swap()")
                case .lora: throw SyntaxError.unsupported("withLora()")
                }
            }
        }
        try walk(nodes, 1)
        return out
    }
}

extension CompelPrompt {
    /// Every fragment, parts and blends in order.
    public var fragments: [Fragment] {
        parts.flatMap { part -> [Fragment] in
            switch part {
            case .fragments(let run): run
            case .blend(let runs, _, _): runs.flatMap { $0 }
            }
        }
    }
}

extension CompelPrompt.Part {
    var allWeights: [Double] {
        switch self {
        case .fragments(let run): run.map(\.weight)
        case .blend(let runs, let weights, _): weights + runs.flatMap { $0.map(\.weight) }
        }
    }
}
