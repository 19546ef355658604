import Foundation

/// Evaluated call arguments; a parameter may be given by position or by its Python name.
struct CallArguments {
    var positional: [TemplateValue?] = []
    var keywords: [String: TemplateValue?] = [:]

    subscript(_ index: Int, _ name: String) -> TemplateValue? {
        index < positional.count ? positional[index] : keywords[name] ?? nil
    }
}

/// The filters, tests, methods and global functions chat templates use, with jinja2's and Python's behaviour.
enum TemplateBuiltins {
    typealias Op = TemplateOperators

    /// Checked while parsing, so a misspelt filter fails when the template is loaded rather than when used.
    static let filterNames: Set<String> = [
        "abs", "capitalize", "count", "d", "default", "first", "float", "int", "items", "join", "last", "length", "list",
        "lower", "map", "reject", "rejectattr", "replace", "reverse", "safe", "select", "selectattr", "string", "title",
        "tojson", "trim", "upper",
    ]
    static let testNames = Set([
        "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
        "boolean", "true", "false", "odd", "even", "divisibleby", "in", "lower", "upper",
    ]).union(comparisonTests.keys)
    private static let comparisonTests = [
        "equalto": "==", "eq": "==", "sameas": "==", "==": "==", "ne": "!=", "!=": "!=", "lt": "<", "<": "<",
        "gt": ">", ">": ">", "le": "<=", "<=": "<=", "ge": ">=", ">=": ">=",
    ]

    static func filter(_ name: String, _ v: TemplateValue?, _ args: CallArguments) throws -> TemplateValue? {
        switch name {
        case "default", "d":
            let useOnFalsy = Op.truthy(args[1, "boolean"])
            return v == nil || (useOnFalsy && !Op.truthy(v)) ? args[0, "default_value"] ?? .string("") : v
        case "length", "count":
            switch v {
            case let .string(s)?: return .int(s.unicodeScalars.count)
            case let .object(o)?: return .int(o.count)
            default: return .int(try Op.iterate(v).count)
            }
        case "tojson":
            guard let v else { throw TemplateError.render("tojson cannot serialise an undefined value") }
            return .string(v.json(indent: Op.integer(args[0, "indent"])))
        case "first": return try Op.iterate(v).first
        case "last": return try Op.iterate(v).last
        case "list": return .array(try Op.iterate(v))
        case "reverse":
            if case let .string(s)? = v { return .string(String(s.reversed())) }
            return .array(try Op.iterate(v).reversed())
        case "items":
            guard case let .object(o)? = v else { return v == nil ? .array([]) : nil }
            return .array(o.keys.sorted().map { .array([.string($0), o[$0]!]) })
        case "join":
            var items = try Op.iterate(v)
            if case let .string(path)? = args[1, "attribute"] { items = items.map { attribute(path, of: $0) ?? TemplateValue.none } }
            return .string(items.map(\.text).joined(separator: Op.text(args[0, "d"])))
        case "map":
            if case let .string(path)? = args.keywords["attribute"] ?? nil {
                return .array(try Op.iterate(v).map { attribute(path, of: $0) ?? (args.keywords["default"] ?? nil) ?? TemplateValue.none })
            }
            guard case let .string(filterName)? = args.positional.first, filterNames.contains(filterName) else {
                throw TemplateError.render("map needs attribute='...' or the name of a filter")
            }
            let rest = CallArguments(positional: Array(args.positional.dropFirst()), keywords: args.keywords)
            return .array(try Op.iterate(v).map { try filter(filterName, $0, rest) ?? TemplateValue.none })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            let path = byAttribute ? Op.text(args.positional.first ?? nil) : ""
            let testArgs = Array(args.positional.dropFirst(byAttribute ? 1 : 0))
            let keep = name.hasPrefix("select")
            return .array(try Op.iterate(v).filter { item in
                let subject = byAttribute ? attribute(path, of: item) : item
                guard case let .string(testName)? = testArgs.first else { return Op.truthy(subject) == keep }
                return try test(testName, subject, Array(testArgs.dropFirst())) == keep
            })
        case "int", "float":
            // Like jinja2: a string is parsed, anything unconvertible becomes the default (0).
            var number = Op.number(v)
            if case let .string(s)? = v { number = Double(s.trimmingCharacters(in: .whitespaces)) }
            let result = number.flatMap { $0.isFinite ? $0 : nil } ?? Op.number(args[0, "default"]) ?? 0
            if name == "float" { return .double(result) }
            return .int(Op.integer(v) ?? (result.magnitude < 9.2e18 ? Int(result) : 0))
        case "abs":
            if case let .double(d)? = v { return .double(abs(d)) }
            guard let i = Op.integer(v) else { throw TemplateError.render("abs needs a number, not \(v?.typeName ?? "undefined")") }
            return .int(abs(i))
        case "safe": return v
        case "string": return .string(Op.text(v))
        case "title": return .string(title(Op.text(v)) { $0.isWhitespace || "-({[<".contains($0) })
        default:
            return try stringMethod(name, Op.text(v), args)
        }
    }

    /// `select`, `selectattr` and `is` share these.
    static func test(_ name: String, _ v: TemplateValue?, _ args: [TemplateValue?]) throws -> Bool {
        let other = args.first ?? nil
        if let op = comparisonTests[name] { return try Op.compare(op, v, other) }
        switch name {
        case "defined": return v != nil
        case "undefined": return v == nil
        case "none": return v == TemplateValue.none
        case "string", "mapping", "integer", "float", "boolean":
            let typeName = ["string": "string", "mapping": "dict", "integer": "int", "float": "float", "boolean": "bool"][name]
            return v?.typeName == typeName
        case "iterable": return v == nil || ["list", "dict", "string"].contains(v!.typeName)
        case "sequence": return ["list", "dict", "string"].contains(v?.typeName ?? "")
        case "number": return Op.number(v) != nil
        case "true": return v == .bool(true)
        case "false": return v == .bool(false)
        case "odd", "even", "divisibleby":
            guard let i = Op.integer(v) else { throw TemplateError.render("'\(name)' needs an integer") }
            let divisor = name == "divisibleby" ? Op.integer(other) ?? 0 : 2
            guard divisor != 0 else { throw TemplateError.render("divisibleby needs a non-zero integer") }
            return (i % divisor == 0) == (name != "odd")
        case "in": return try Op.contains(other, v)
        case "lower": return Op.text(v) == Op.text(v).lowercased()
        case "upper": return Op.text(v) == Op.text(v).uppercased()
        default: throw TemplateError.render("unknown test '\(name)'")
        }
    }

    /// `value.name(...)`: Python's str and dict methods.
    static func method(_ name: String, on v: TemplateValue?, _ args: CallArguments) throws -> TemplateValue? {
        switch v {
        case let .string(s)?:
            return try stringMethod(name, s, args)
        case let .object(o)?:
            switch name {
            case "items": return .array(o.keys.sorted().map { .array([.string($0), o[$0]!]) })
            case "keys": return .array(o.keys.sorted().map { .string($0) })
            case "values": return .array(o.keys.sorted().map { o[$0]! })
            case "get": return o[Op.text(args[0, "key"])] ?? args[1, "default"] ?? TemplateValue.none
            default: break
            }
        case nil:
            throw TemplateError.render("cannot call '\(name)' on an undefined value")
        default: break
        }
        throw TemplateError.render("\(v!.typeName) has no method '\(name)'")
    }

    /// String methods, which also serve as the string filters (`|upper`, `|trim`, ...).
    private static func stringMethod(_ name: String, _ s: String, _ args: CallArguments) throws -> TemplateValue {
        switch name {
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "strip", "trim", "lstrip", "rstrip":
            let chars = args[0, "chars"].map(Op.text)
            let strip: (Unicode.Scalar) -> Bool = { chars?.unicodeScalars.contains($0) ?? $0.properties.isWhitespace }
            var scalars = Substring(s).unicodeScalars
            if name != "rstrip" { while let f = scalars.first, strip(f) { scalars.removeFirst() } }
            if name != "lstrip" { while let l = scalars.last, strip(l) { scalars.removeLast() } }
            return .string(String(scalars))
        case "startswith", "endswith":
            let arg = args[0, name == "startswith" ? "prefix" : "suffix"]
            let candidates: [String]
            if case let .string(one)? = arg { candidates = [one] } else { candidates = try Op.iterate(arg).map(\.text) }
            // Compared by code point, as Python does; Swift's hasPrefix would compare characters.
            return .bool(candidates.contains { c in
                name == "startswith" ? s.unicodeScalars.starts(with: c.unicodeScalars)
                    : s.unicodeScalars.reversed().starts(with: c.unicodeScalars.reversed())
            })
        case "split": return .array(try split(s, separator: args[0, "sep"], limit: Op.integer(args[1, "maxsplit"]) ?? -1))
        case "replace":
            let old = Op.text(args[0, "old"]), new = Op.text(args[1, "new"])
            var remaining = Op.integer(args[2, "count"]) ?? -1
            var out = "", rest = Substring(s)
            while remaining != 0, !old.isEmpty, let r = rest.range(of: old) {
                out += rest[..<r.lowerBound] + new
                rest = rest[r.upperBound...]
                remaining -= 1
            }
            return .string(out + rest)
        case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(title(s) { !$0.isLetter })
        case "join": return .string(try Op.iterate(args[0, "iterable"]).map(\.text).joined(separator: s))
        default: throw TemplateError.render("string has no method '\(name)'")
        }
    }

    /// Python's str.title starts a word after any non-letter; jinja2's |title only after whitespace,
    /// '-' or an opening bracket.
    private static func title(_ s: String, startsWordAfter: (Character) -> Bool) -> String {
        var out = "", previous: Character = " "
        for c in s {
            out += startsWordAfter(previous) ? c.uppercased() : c.lowercased()
            previous = c
        }
        return out
    }

    private static func split(_ s: String, separator: TemplateValue?, limit: Int) throws -> [TemplateValue] {
        var parts: [String] = []
        guard let sep = separator, sep != TemplateValue.none else {
            // No separator: runs of whitespace split, and there are no empty parts.
            var rest = Substring(s).drop { $0.isWhitespace }
            while !rest.isEmpty {
                if limit >= 0, parts.count == limit { parts.append(String(rest)); break }
                let word = rest.prefix { !$0.isWhitespace }
                parts.append(String(word))
                rest = rest[word.endIndex...].drop { $0.isWhitespace }
            }
            return parts.map { .string($0) }
        }
        let separatorText = Op.text(sep)
        guard !separatorText.isEmpty else { throw TemplateError.render("empty separator") }
        var rest = Substring(s)
        while limit < 0 || parts.count < limit, let r = rest.range(of: separatorText) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts.map { .string($0) }
    }

    /// `selectattr('a.b')` and `map(attribute=...)` follow dots, and digits index lists.
    static func attribute(_ path: String, of v: TemplateValue?) -> TemplateValue? {
        path.split(separator: ".").reduce(v) { value, part in
            Int(part).map { Op.item(value, .int($0)) } ?? Op.item(value, .string(String(part)))
        }
    }

    static func global(_ name: String, _ args: CallArguments) throws -> TemplateValue? {
        switch name {
        case "raise_exception":
            throw TemplateError(.raised, Op.text(args[0, "message"]))
        case "range":
            let numbers = try args.positional.map { v -> Int in
                guard let i = Op.integer(v) else { throw TemplateError.render("range needs integers") }
                return i
            }
            guard (1...3).contains(numbers.count) else { throw TemplateError.render("range takes 1 to 3 integers") }
            let (start, stop) = numbers.count == 1 ? (0, numbers[0]) : (numbers[0], numbers[1])
            let step = numbers.count == 3 ? numbers[2] : 1
            guard step != 0 else { throw TemplateError.render("range step cannot be zero") }
            return .array(stride(from: start, to: stop, by: step).map { .int($0) })
        case "namespace", "dict":
            // A namespace is a plain dict here; `set ns.key = value` writes it back where it was defined.
            var object: [String: TemplateValue] = [:]
            if case let .object(initial)? = args.positional.first { object = initial }
            for (key, value) in args.keywords { object[key] = value ?? TemplateValue.none }
            return .object(object)
        default:
            throw TemplateError.render("'\(name)' is undefined or not callable")
        }
    }
}
