import Foundation

/// A value a chat template reads or computes: the shapes JSON and Python share.
///
/// Objects are Swift dictionaries, so they have no insertion order; wherever Python would walk a dict in
/// insertion order (iteration, `items()`, `tojson`) the keys are walked sorted instead, which is at least stable.
public indirect enum TemplateValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case object([String: TemplateValue])
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// Lets callers and tests take messages straight from JSON.
extension TemplateValue: Decodable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .none }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([TemplateValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: TemplateValue].self)) }
    }
}

extension TemplateValue {
    /// Python's truthiness, which Jinja uses for `if`, `and`, `or` and `not`.
    var isTruthy: Bool {
        switch self {
        case .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .array(a): return !a.isEmpty
        case let .object(o): return !o.isEmpty
        }
    }

    /// Python's `str()`, which is what `{{ }}` prints.
    var text: String {
        switch self {
        case let .string(s): return s
        default: return repr
        }
    }

    /// Python's `repr()`, used inside printed lists and dicts.
    var repr: String {
        switch self {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return Self.pythonFloat(d)
        case let .string(s): return Self.pythonQuoted(s)
        case let .array(a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case let .object(o):
            return "{" + o.keys.sorted().map { Self.pythonQuoted($0) + ": " + o[$0]!.repr }.joined(separator: ", ") + "}"
        }
    }

    var typeName: String {
        switch self {
        case .none: "none"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "string"
        case .array: "list"
        case .object: "dict"
        }
    }

    /// Swift's shortest round-trip form agrees with Python's float repr except for the spelling of the specials.
    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        return d.description
    }

    static func pythonQuoted(_ s: String) -> String {
        quoted(s, quote: s.contains("'") && !s.contains("\"") ? "\"" : "'", json: false)
    }

    /// Python's repr escapes and json.dumps's escapes differ only for control characters and the quote.
    static func quoted(_ s: String, quote: Unicode.Scalar = "\"", json: Bool = true) -> String {
        var out = String(quote)
        for u in s.unicodeScalars {
            switch u {
            case "\\", quote: out += "\\" + String(u)
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}" where json: out += "\\b"
            case "\u{0C}" where json: out += "\\f"
            case _ where u.value < 0x20 || (!json && u.value == 0x7f):
                out += json ? String(format: "\\u%04x", u.value) : String(format: "\\x%02x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + String(quote)
    }

    /// `json.dumps(value, ensure_ascii=False, indent=indent)`, the `tojson` filter transformers installs.
    func json(indent: Int? = nil, level: Int = 0) -> String {
        func block(_ open: String, _ close: String, _ items: [String]) -> String {
            if items.isEmpty { return open + close }
            guard let indent else { return open + items.joined(separator: ", ") + close }
            let inner = "\n" + String(repeating: " ", count: indent * (level + 1))
            return open + inner + items.joined(separator: "," + inner)
                + "\n" + String(repeating: " ", count: indent * level) + close
        }
        switch self {
        case .none: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .double(d): return d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : d.description
        case let .string(s): return Self.quoted(s)
        case let .array(a): return block("[", "]", a.map { $0.json(indent: indent, level: level + 1) })
        case let .object(o):
            return block("{", "}", o.keys.sorted().map { Self.quoted($0) + ": " + o[$0]!.json(indent: indent, level: level + 1) })
        }
    }
}
