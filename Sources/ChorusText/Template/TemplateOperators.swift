import Foundation

/// Python's semantics for Jinja's operators. `nil` stands for Jinja's Undefined throughout.
enum TemplateOperators {
    static func truthy(_ v: TemplateValue?) -> Bool { v?.isTruthy ?? false }

    /// `str()` of a value, with Undefined printing as nothing.
    static func text(_ v: TemplateValue?) -> String { v?.text ?? "" }

    /// Python's bool is an int: `true + 1 == 2` and `1 == true`.
    static func integer(_ v: TemplateValue?) -> Int? {
        switch v {
        case let .int(i): return i
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    static func number(_ v: TemplateValue?) -> Double? {
        if case let .double(d) = v { return d }
        return integer(v).map(Double.init)
    }

    static func equal(_ a: TemplateValue?, _ b: TemplateValue?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        if let x = integer(a), let y = integer(b) { return x == y }
        if let x = number(a), let y = number(b) { return x == y }
        switch (a, b) {
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case let (.object(x), .object(y)): return x.count == y.count && x.allSatisfy { equal($0.value, y[$0.key]) }
        default: return a == b
        }
    }

    static func compare(_ op: String, _ a: TemplateValue?, _ b: TemplateValue?) throws -> Bool {
        switch op {
        case "==": return equal(a, b)
        case "!=": return !equal(a, b)
        case "in": return try contains(b, a)
        case "not in": return try !contains(b, a)
        default: break
        }
        let order: Int
        if let x = number(a), let y = number(b) {
            order = x < y ? -1 : x > y ? 1 : 0
        } else if case let .string(x) = a, case let .string(y) = b {
            // Python orders strings by code point.
            order = x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) ? -1 : x == y ? 0 : 1
        } else {
            throw TemplateError.render("'\(op)' is not supported between \(a?.typeName ?? "undefined") and \(b?.typeName ?? "undefined")")
        }
        switch op {
        case "<": return order < 0
        case ">": return order > 0
        case "<=": return order <= 0
        default: return order >= 0
        }
    }

    static func contains(_ container: TemplateValue?, _ element: TemplateValue?) throws -> Bool {
        switch container {
        case nil: return false
        case let .string(s):
            guard case let .string(part) = element else { throw TemplateError.render("'in <string>' needs a string on the left") }
            return part.isEmpty || s.contains(part)
        case let .array(a): return a.contains { equal($0, element) }
        case let .object(o):
            guard case let .string(key) = element else { return false }
            return o[key] != nil
        case let .some(other): throw TemplateError.render("'in' needs a string, list or dict, not \(other.typeName)")
        }
    }

    static func binary(_ op: String, _ a: TemplateValue?, _ b: TemplateValue?) throws -> TemplateValue {
        if op == "~" { return .string(text(a) + text(b)) }
        switch (op, a, b) {
        case let ("+", .string(x)?, .string(y)?): return .string(x + y)
        case let ("+", .array(x)?, .array(y)?): return .array(x + y)
        case let ("*", .string(s)?, n?), let ("*", n?, .string(s)?):
            if let n = integer(n) { return .string(String(repeating: s, count: max(n, 0))) }
        case let ("*", .array(x)?, n?), let ("*", n?, .array(x)?):
            if let n = integer(n) { return .array(Array(repeatElement(x, count: max(n, 0)).joined())) }
        default: break
        }
        if let x = integer(a), let y = integer(b), op != "/" {
            if y == 0, op == "//" || op == "%" { throw TemplateError.render("integer division or modulo by zero") }
            let result: (Int, Bool)
            switch op {
            case "+": result = x.addingReportingOverflow(y)
            case "-": result = x.subtractingReportingOverflow(y)
            case "*": result = x.multipliedReportingOverflow(by: y)
            case "//": result = ((x - ((x % y) + y) % y) / y, false)
            case "%": result = (((x % y) + y) % y, false)
            default:
                if y < 0 { return .double(pow(Double(x), Double(y))) }
                let p = pow(Double(x), Double(y))
                guard p.magnitude < 9.2e18 else { throw TemplateError.render("integer overflow in '**'") }
                return .int((0..<y).reduce(1) { acc, _ in acc * x })
            }
            guard !result.1 else { throw TemplateError.render("integer overflow in '\(op)'") }
            return .int(result.0)
        }
        if let x = number(a), let y = number(b) {
            if y == 0, op == "/" || op == "//" || op == "%" { throw TemplateError.render("float division by zero") }
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/": return .double(x / y)
            case "//": return .double((x / y).rounded(.down))
            case "%": return .double(x - y * (x / y).rounded(.down))
            default: return .double(pow(x, y))
            }
        }
        throw TemplateError.render("unsupported operand types for '\(op)': \(a?.typeName ?? "undefined") and \(b?.typeName ?? "undefined")")
    }

    static func negate(_ v: TemplateValue?) throws -> TemplateValue {
        if case let .double(d) = v { return .double(-d) }
        guard let i = integer(v) else { throw TemplateError.render("bad operand type for unary '-': \(v?.typeName ?? "undefined")") }
        return .int(-i)
    }

    /// What a `for` loop walks: a dict gives its keys, a string its characters, Undefined nothing.
    static func iterate(_ v: TemplateValue?) throws -> [TemplateValue] {
        switch v {
        case nil: return []
        case let .array(a): return a
        case let .object(o): return o.keys.sorted().map { .string($0) }
        case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
        case let .some(other): throw TemplateError.render("\(other.typeName) is not iterable")
        }
    }

    /// `value.name`: a dict's key; anything else has no data attributes here.
    static func attribute(_ v: TemplateValue?, _ name: String) -> TemplateValue? {
        if case let .object(o) = v { return o[name] }
        return nil
    }

    /// `value[key]`, with Python's negative indices; a miss is Undefined, as in Jinja.
    static func item(_ v: TemplateValue?, _ key: TemplateValue?) -> TemplateValue? {
        switch (v, key) {
        case let (.object(o)?, .string(k)?): return o[k]
        case let (.array(a)?, k?):
            guard let i = integer(k) else { return nil }
            let index = i < 0 ? i + a.count : i
            return a.indices.contains(index) ? a[index] : nil
        case let (.string(s)?, k?):
            guard let i = integer(k) else { return nil }
            let scalars = Array(s.unicodeScalars)
            let index = i < 0 ? i + scalars.count : i
            return scalars.indices.contains(index) ? .string(String(scalars[index])) : nil
        case let (_, .string(name)?): return attribute(v, name)
        default: return nil
        }
    }

    static func slice(_ v: TemplateValue?, _ start: TemplateValue?, _ stop: TemplateValue?, _ step: TemplateValue?) throws -> TemplateValue? {
        func bound(_ b: TemplateValue?) throws -> Int? {
            if b == nil || b == TemplateValue.none { return nil }
            guard let i = integer(b) else { throw TemplateError.render("slice indices must be integers") }
            return i
        }
        let step = try bound(step) ?? 1
        guard step != 0 else { throw TemplateError.render("slice step cannot be zero") }
        func indices(_ n: Int) throws -> [Int] {
            func clamp(_ b: Int?, _ fallback: Int) -> Int {
                guard var b else { return fallback }
                if b < 0 { b += n }
                return step > 0 ? min(max(b, 0), n) : min(max(b, -1), n - 1)
            }
            let from = clamp(try bound(start), step > 0 ? 0 : n - 1), to = clamp(try bound(stop), step > 0 ? n : -1)
            return Array(stride(from: from, to: to, by: step))
        }
        switch v {
        case let .array(a)?: return .array(try indices(a.count).map { a[$0] })
        case let .string(s)?:
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            out.append(contentsOf: try indices(scalars.count).map { scalars[$0] })
            return .string(String(out))
        case nil: return nil
        case let other?: throw TemplateError.render("\(other.typeName) cannot be sliced")
        }
    }
}
