/// Builds the syntax tree from the lexer's pieces, following jinja2's grammar and operator precedence.
struct TemplateParser {
    private let pieces: [TemplatePiece]
    private var p = 0
    private var tokens: [TemplateToken] = []
    private var t = 0

    init(_ source: String) throws {
        var lexer = TemplateLexer(source)
        pieces = try lexer.tokenize()
    }

    mutating func parseTemplate() throws -> [TemplateNode] {
        try parseBody(until: [], opener: nil).nodes
    }

    // MARK: Statements

    /// Parses nodes up to one of the `enders` tags and returns which one ended the body; its own tokens
    /// (`elif cond`) are left for the caller.
    private mutating func parseBody(until enders: Set<String>, opener: (String, SourcePosition)?) throws
        -> (nodes: [TemplateNode], ender: String) {
        var nodes: [TemplateNode] = []
        while p < pieces.count {
            let piece = pieces[p]
            p += 1
            switch piece {
            case let .text(s):
                nodes.append(.text(s))
            case let .output(toks, position):
                (tokens, t) = (toks, 0)
                let expr = try parseExpression()
                try expectEnd()
                nodes.append(.output(expr, position))
            case let .statement(toks, position):
                (tokens, t) = (toks, 0)
                guard case let .name(keyword) = current.kind else { throw error("expected a statement name, found \(describe(current))") }
                t += 1
                if enders.contains(keyword) { return (nodes, keyword) }
                nodes += try parseStatement(keyword, position)
            }
        }
        if let (name, position) = opener {
            let wanted = enders.sorted().map { "'\($0)'" }.joined(separator: " or ")
            throw TemplateError(.syntax, "'\(name)' is never closed: expected \(wanted)", line: position.line, column: position.column)
        }
        return (nodes, "")
    }

    private mutating func parseStatement(_ keyword: String, _ position: SourcePosition) throws -> [TemplateNode] {
        switch keyword {
        case "for":
            var targets = [try expectName()]
            while skip(op: ",") { targets.append(try expectName()) }
            try expect(name: "in")
            // A bare `if` after the iterable filters the loop, so it is not read as `a if b else c`.
            let iterable = try parseOr()
            let filter = skip(name: "if") ? try parseExpression() : nil
            try expectEnd()
            var (body, ender) = try parseBody(until: ["else", "endfor"], opener: ("for", position))
            var otherwise: [TemplateNode] = []
            if ender == "else" {
                try expectEnd()
                (otherwise, ender) = try parseBody(until: ["endfor"], opener: ("for", position))
            }
            try expectEnd()
            return [.forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, position)]
        case "if":
            var branches: [(TemplateExpr, [TemplateNode])] = []
            var condition = try parseExpression()
            while true {
                try expectEnd()
                let (body, ender) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", position))
                branches.append((condition, body))
                if ender == "elif" {
                    condition = try parseExpression()
                    continue
                }
                var otherwise: [TemplateNode] = []
                if ender == "else" {
                    try expectEnd()
                    otherwise = try parseBody(until: ["endif"], opener: ("if", position)).nodes
                }
                try expectEnd()
                return [.ifChain(branches, otherwise: otherwise, position)]
            }
        case "set":
            let name = try expectName()
            let attribute = skip(op: ".") ? try expectName() : nil
            if skip(op: "=") {
                let value = try parseExpression()
                try expectEnd()
                return [.set(name: name, attribute: attribute, value, position)]
            }
            try expectEnd()
            let body = try parseBody(until: ["endset"], opener: ("set", position)).nodes
            try expectEnd()
            return [.setBlock(name: name, body: body)]
        case "generation":
            // transformers' AssistantTracker only records where this output lands; the text is unchanged.
            try expectEnd()
            let body = try parseBody(until: ["endgeneration"], opener: ("generation", position)).nodes
            try expectEnd()
            return body
        case "elif", "else", "endif", "endfor", "endset", "endgeneration":
            throw TemplateError(.syntax, "unexpected '\(keyword)'", line: position.line, column: position.column)
        default:
            throw TemplateError(.syntax, "unknown tag '\(keyword)'", line: position.line, column: position.column)
        }
    }

    // MARK: Expressions, loosest binding first

    private mutating func parseExpression() throws -> TemplateExpr {
        var expr = try parseOr()
        while skip(name: "if") {
            let condition = try parseOr()
            let otherwise = skip(name: "else") ? try parseExpression() : nil
            expr = .conditional(then: expr, condition: condition, otherwise: otherwise)
        }
        return expr
    }

    private mutating func parseOr() throws -> TemplateExpr {
        var expr = try parseAnd()
        while skip(name: "or") { expr = .or(expr, try parseAnd()) }
        return expr
    }

    private mutating func parseAnd() throws -> TemplateExpr {
        var expr = try parseNot()
        while skip(name: "and") { expr = .and(expr, try parseNot()) }
        return expr
    }

    private mutating func parseNot() throws -> TemplateExpr {
        if skip(name: "not") { return .not(try parseNot()) }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> TemplateExpr {
        let first = try parseMath(0)
        var rest: [(String, TemplateExpr)] = []
        while true {
            if case let .op(op) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                t += 1
                rest.append((op, try parseMath(0)))
            } else if skip(name: "in") {
                rest.append(("in", try parseMath(0)))
            } else if case .name("not") = current.kind, t + 1 < tokens.count, tokens[t + 1].kind == .name("in") {
                t += 2
                rest.append(("not in", try parseMath(0)))
            } else {
                break
            }
        }
        return rest.isEmpty ? first : .compare(first, rest)
    }

    /// jinja2's levels between comparison and unary: `+ -`, then `~`, then `* / // %`, then `**`.
    private static let mathLevels: [Set<String>] = [["+", "-"], ["~"], ["*", "/", "//", "%"], ["**"]]

    private mutating func parseMath(_ level: Int) throws -> TemplateExpr {
        guard level < Self.mathLevels.count else { return try parseUnary() }
        var expr = try parseMath(level + 1)
        while case let .op(op) = current.kind, Self.mathLevels[level].contains(op) {
            t += 1
            expr = .binary(op, expr, try parseMath(level + 1))
        }
        return expr
    }

    private mutating func parseUnary(withFilters: Bool = true) throws -> TemplateExpr {
        var expr: TemplateExpr
        if skip(op: "-") {
            expr = .negate(try parseUnary(withFilters: false))
        } else if skip(op: "+") {
            expr = try parseUnary(withFilters: false)
        } else {
            expr = try parsePrimary()
        }
        expr = try parsePostfix(expr)
        return withFilters ? try parseFilters(expr) : expr
    }

    private mutating func parsePrimary() throws -> TemplateExpr {
        let token = current
        t += 1
        switch token.kind {
        case let .name(name):
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(name)
            }
        case var .string(s):
            while case let .string(more) = current.kind { s += more; t += 1 }
            return .literal(.string(s))
        case let .int(i): return .literal(.int(i))
        case let .double(d): return .literal(.double(d))
        case .op("("):
            let items = try parseList(closing: ")") { try $0.parseExpression() }
            // A tuple is shown as a list: TemplateValue has no tuple.
            return items.count == 1 && tokens[t - 2].kind != .op(",") ? items[0] : .list(items)
        case .op("["):
            return .list(try parseList(closing: "]") { try $0.parseExpression() })
        case .op("{"):
            return .dict(try parseList(closing: "}") { parser in
                let key = try parser.parseExpression()
                try parser.expect(op: ":")
                return (key, try parser.parseExpression())
            })
        default:
            t -= 1
            throw error("expected an expression, found \(describe(token))")
        }
    }

    private mutating func parseList<T>(closing: String, _ element: (inout TemplateParser) throws -> T) throws -> [T] {
        var items: [T] = []
        while !skip(op: closing) {
            if !items.isEmpty { try expect(op: ",") }
            if skip(op: closing) { break }
            items.append(try element(&self))
        }
        return items
    }

    private mutating func parsePostfix(_ base: TemplateExpr) throws -> TemplateExpr {
        var expr = base
        while true {
            if skip(op: ".") {
                if case let .int(i) = current.kind {
                    t += 1
                    expr = .item(expr, .literal(.int(i)))
                } else {
                    expr = .attribute(expr, try expectName())
                }
            } else if skip(op: "[") {
                expr = try parseSubscript(expr)
            } else if skip(op: "(") {
                expr = .call(expr, try parseArguments())
            } else {
                return expr
            }
        }
    }

    private mutating func parseSubscript(_ base: TemplateExpr) throws -> TemplateExpr {
        var parts: [TemplateExpr?] = []
        var current: TemplateExpr? = nil
        while !skip(op: "]") {
            if skip(op: ":") {
                parts.append(current)
                current = nil
            } else if current == nil {
                current = try parseExpression()
            } else {
                throw error("expected ':' or ']', found \(describe(self.current))")
            }
        }
        if parts.isEmpty {
            guard let index = current else { throw error("expected a subscript") }
            return .item(base, index)
        }
        parts.append(current)
        guard parts.count <= 3 else { throw error("a slice takes at most three parts") }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, parts[0], parts[1], parts[2])
    }

    /// After the opening parenthesis: positional arguments, then `name=value` ones.
    private mutating func parseArguments() throws -> Arguments {
        var arguments: Arguments = ([], [])
        _ = try parseList(closing: ")") { parser -> Void in
            if case let .name(name) = parser.current.kind, parser.t + 1 < parser.tokens.count, parser.tokens[parser.t + 1].kind == .op("=") {
                parser.t += 2
                arguments.keywords.append((name, try parser.parseExpression()))
            } else {
                arguments.positional.append(try parser.parseExpression())
            }
        }
        return arguments
    }

    private mutating func parseFilters(_ base: TemplateExpr) throws -> TemplateExpr {
        var expr = base
        while true {
            if skip(op: "|") {
                let token = current
                let name = try expectName()
                guard TemplateBuiltins.filterNames.contains(name) else { throw error("unknown filter '\(name)'", at: token) }
                expr = .filter(expr, name, skip(op: "(") ? try parseArguments() : ([], []))
            } else if skip(name: "is") {
                let negated = skip(name: "not")
                let token = current
                let name = try expectName()
                guard TemplateBuiltins.testNames.contains(name) else { throw error("unknown test '\(name)'", at: token) }
                var arguments: [TemplateExpr] = []
                if skip(op: "(") {
                    arguments = try parseArguments().positional
                } else if startsBareTestArgument {
                    arguments = [try parsePostfix(try parsePrimary())]
                }
                expr = .test(expr, name, arguments, negated: negated)
            } else if skip(op: "(") {
                expr = .call(expr, try parseArguments())
            } else {
                return expr
            }
        }
    }

    /// jinja2 lets a test take one argument without parentheses: `x is divisibleby 3`.
    private var startsBareTestArgument: Bool {
        switch current.kind {
        case .name("else"), .name("or"), .name("and"), .name("if"), .name("in"), .name("not"), .name("is"): return false
        case .name, .string, .int, .double, .op("["), .op("{"): return true
        default: return false
        }
    }

    // MARK: Tokens

    private var current: TemplateToken { tokens[min(t, tokens.count - 1)] }

    private mutating func skip(op: String) -> Bool {
        guard current.kind == .op(op) else { return false }
        t += 1
        return true
    }

    private mutating func skip(name: String) -> Bool {
        guard current.kind == .name(name) else { return false }
        t += 1
        return true
    }

    private mutating func expect(op: String) throws {
        guard skip(op: op) else { throw error("expected '\(op)', found \(describe(current))") }
    }

    private mutating func expect(name: String) throws {
        guard skip(name: name) else { throw error("expected '\(name)', found \(describe(current))") }
    }

    private mutating func expectName() throws -> String {
        guard case let .name(name) = current.kind else { throw error("expected a name, found \(describe(current))") }
        t += 1
        return name
    }

    private func expectEnd() throws {
        guard current.kind == .end else { throw error("expected end of tag, found \(describe(current))") }
    }

    private func describe(_ token: TemplateToken) -> String {
        switch token.kind {
        case let .name(n): return "'\(n)'"
        case let .string(s): return "string \(TemplateValue.pythonQuoted(s))"
        case let .int(i): return "'\(i)'"
        case let .double(d): return "'\(d)'"
        case let .op(o): return "'\(o)'"
        case .end: return "end of tag"
        }
    }

    private func error(_ message: String, at token: TemplateToken? = nil) -> TemplateError {
        let position = (token ?? current).position
        return TemplateError(.syntax, message, line: position.line, column: position.column)
    }
}
