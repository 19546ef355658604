/// Walks the syntax tree against a context. `nil` values stand for Jinja's Undefined.
struct TemplateRenderer {
    typealias Op = TemplateOperators

    /// Innermost last. Each `for` iteration gets its own frame, so a `set` inside a loop body does not
    /// outlive the iteration, as in jinja2.
    private var frames: [[String: TemplateValue]]
    private(set) var output = ""

    init(context: [String: TemplateValue]) {
        frames = [context]
    }

    mutating func render(_ nodes: [TemplateNode]) throws {
        for node in nodes { try render(node) }
    }

    /// Errors from expressions carry no position; the tag they come from supplies it.
    private static func located<T>(_ position: SourcePosition, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as TemplateError where error.line == 0 {
            (error.line, error.column) = (position.line, position.column)
            throw error
        }
    }

    private mutating func render(_ node: TemplateNode) throws {
        switch node {
        case let .text(text):
            output += text
        case let .output(expr, position):
            output += try Self.located(position) { Op.text(try evaluate(expr)) }
        case let .ifChain(branches, otherwise, position):
            for (condition, body) in branches where try Self.located(position, { Op.truthy(try evaluate(condition)) }) {
                return try render(body)
            }
            try render(otherwise)
        case let .set(name, attribute, expr, position):
            try Self.located(position) {
                let value = try evaluate(expr) ?? TemplateValue.none
                guard let attribute else { return frames[frames.count - 1][name] = value }
                guard let f = frames.lastIndex(where: { $0[name] != nil }), case var .object(object) = frames[f][name]! else {
                    throw TemplateError.render("cannot set '\(attribute)' on '\(name)': it is not a namespace")
                }
                object[attribute] = value
                frames[f][name] = .object(object)
            }
        case let .setBlock(name, body):
            let saved = output
            output = ""
            defer { output = saved }
            try render(body)
            frames[frames.count - 1][name] = .string(output)
        case let .forLoop(targets, iterable, filter, body, otherwise, position):
            try renderLoop(targets, iterable, filter, body, otherwise, position)
        }
    }

    private mutating func renderLoop(_ targets: [String], _ iterable: TemplateExpr, _ filter: TemplateExpr?,
                                     _ body: [TemplateNode], _ otherwise: [TemplateNode], _ position: SourcePosition) throws {
        func bind(_ item: TemplateValue) throws -> [String: TemplateValue] {
            guard targets.count > 1 else { return [targets[0]: item] }
            guard case let .array(parts) = item, parts.count == targets.count else {
                throw TemplateError.render("cannot unpack \(item.repr) into \(targets.count) loop variables")
            }
            return Dictionary(uniqueKeysWithValues: zip(targets, parts))
        }
        var items = try Self.located(position) { try Op.iterate(try evaluate(iterable)) }
        if let filter {
            items = try Self.located(position) {
                try items.filter { item in
                    frames.append(try bind(item))
                    defer { frames.removeLast() }
                    return Op.truthy(try evaluate(filter))
                }
            }
        }
        if items.isEmpty { return try render(otherwise) }
        let n = items.count
        for (k, item) in items.enumerated() {
            var frame = try Self.located(position) { try bind(item) }
            var loop: [String: TemplateValue] = [
                "index": .int(k + 1), "index0": .int(k), "revindex": .int(n - k), "revindex0": .int(n - k - 1),
                "first": .bool(k == 0), "last": .bool(k == n - 1), "length": .int(n), "depth": 1, "depth0": 0,
            ]
            if k > 0 { loop["previtem"] = items[k - 1] }
            if k < n - 1 { loop["nextitem"] = items[k + 1] }
            frame["loop"] = .object(loop)
            frames.append(frame)
            defer { frames.removeLast() }
            try render(body)
        }
    }

    private func lookup(_ name: String) -> TemplateValue? {
        frames.last { $0[name] != nil }?[name]
    }

    func evaluate(_ expr: TemplateExpr) throws -> TemplateValue? {
        switch expr {
        case let .literal(value): return value
        case let .name(name): return lookup(name)
        case let .list(items): return .array(try items.map { try evaluate($0) ?? TemplateValue.none })
        case let .dict(pairs):
            var object: [String: TemplateValue] = [:]
            for (key, value) in pairs { object[Op.text(try evaluate(key))] = try evaluate(value) ?? TemplateValue.none }
            return .object(object)
        case let .attribute(base, name): return Op.attribute(try evaluate(base), name)
        case let .item(base, key): return Op.item(try evaluate(base), try evaluate(key))
        case let .slice(base, start, stop, step):
            return try Op.slice(try evaluate(base), try start.flatMap(evaluate), try stop.flatMap(evaluate), try step.flatMap(evaluate))
        case let .call(callee, arguments):
            let args = try evaluate(arguments)
            switch callee {
            case let .attribute(base, name): return try TemplateBuiltins.method(name, on: try evaluate(base), args)
            case let .name(name) where lookup(name) == nil: return try TemplateBuiltins.global(name, args)
            default: throw TemplateError.render("only methods and the global functions can be called")
            }
        case let .filter(base, name, arguments):
            return try TemplateBuiltins.filter(name, try evaluate(base), try evaluate(arguments))
        case let .test(base, name, arguments, negated):
            return .bool(try TemplateBuiltins.test(name, try evaluate(base), try arguments.map(evaluate)) != negated)
        case let .not(operand): return .bool(!Op.truthy(try evaluate(operand)))
        case let .negate(operand): return try Op.negate(try evaluate(operand))
        case let .and(left, right):
            let l = try evaluate(left)
            return Op.truthy(l) ? try evaluate(right) : l
        case let .or(left, right):
            let l = try evaluate(left)
            return Op.truthy(l) ? l : try evaluate(right)
        case let .binary(op, left, right): return try Op.binary(op, try evaluate(left), try evaluate(right))
        case let .compare(first, rest):
            var left = try evaluate(first)
            for (op, expr) in rest {
                let right = try evaluate(expr)
                guard try Op.compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .conditional(then, condition, otherwise):
            return Op.truthy(try evaluate(condition)) ? try evaluate(then) : try otherwise.flatMap(evaluate)
        }
    }

    private func evaluate(_ arguments: Arguments) throws -> CallArguments {
        var args = CallArguments(positional: try arguments.positional.map(evaluate))
        for (name, expr) in arguments.keywords { args.keywords[name] = try evaluate(expr) }
        return args
    }
}
