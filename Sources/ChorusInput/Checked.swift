/// Numbers that arrive from outside — an HTTP field, a wire request, a file header — become Swift
/// integers and sizes only through here. Swift's `UInt32(-1.0)`, `Int(Double.nan)` and `a * b` past
/// `Int.max` trap, and in a server a trap is a crash for every user; these answer `InvalidField`,
/// which the gateway turns into HTTP 400 and a service into INVALID_ARGUMENT, naming the field and
/// the range it accepts.
public struct InvalidField: Error, Equatable, CustomStringConvertible, Sendable {
    /// The field as the client spells it (`steps`, `audio.sample_rate`, `size`).
    public let field: String
    public let message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { message }
}

public enum Checked {
    /// A JSON number (always a Double by the time it is parsed) as an integer of `T` within `range`:
    /// NaN, infinities, fractions and values outside the range are refused.
    public static func integer<T: FixedWidthInteger>(_ value: Double, _ field: String, in range: ClosedRange<T>) throws -> T {
        guard value.isFinite else { throw InvalidField(field, "'\(field)' must be a finite number, got \(value)") }
        guard value == value.rounded() else { throw InvalidField(field, "'\(field)' must be a whole number, got \(value)") }
        guard let exact = T(exactly: value), range.contains(exact) else {
            throw InvalidField(field, "'\(field)' is \(formatted(value)); it must be \(describe(range))")
        }
        return exact
    }

    /// An integer of any width (a wire field, a header value) as `T` within `range`.
    public static func integer<T: FixedWidthInteger, S: BinaryInteger>(_ value: S, _ field: String, in range: ClosedRange<T>) throws -> T {
        guard let exact = T(exactly: value), range.contains(exact) else {
            throw InvalidField(field, "'\(field)' is \(value); it must be \(describe(range))")
        }
        return exact
    }

    /// An integer as `T` within `range`, where 0 means "not set" and gives `unset`.
    public static func integer<T: FixedWidthInteger, S: BinaryInteger>(_ value: S, _ field: String, in range: ClosedRange<T>,
                                                                      zeroMeans unset: T) throws -> T {
        value == 0 ? unset : try integer(value, field, in: range)
    }

    /// A finite number within `range`.
    public static func number<F: BinaryFloatingPoint>(_ value: F, _ field: String, in range: ClosedRange<F>) throws -> F {
        guard value.isFinite else { throw InvalidField(field, "'\(field)' must be a finite number, got \(value)") }
        guard range.contains(value) else {
            throw InvalidField(field, "'\(field)' is \(value); it must be \(range.lowerBound) ... \(range.upperBound)")
        }
        return value
    }

    /// A JSON number as a Float within `range` (Float(1e300) is infinity: checked before narrowing).
    public static func float(_ value: Double, _ field: String, in range: ClosedRange<Float>) throws -> Float {
        Float(try number(value, field, in: Double(range.lowerBound)...Double(range.upperBound)))
    }

    /// `factors` multiplied without overflow, refused past `limit`: sizes such as
    /// width × height × channels × batch from a request or a header.
    public static func product(_ factors: [Int], _ field: String, limit: Int) throws -> Int {
        var total = 1
        for factor in factors {
            guard factor >= 0 else { throw InvalidField(field, "'\(field)' has a negative factor \(factor)") }
            let (next, overflow) = total.multipliedReportingOverflow(by: factor)
            guard !overflow, next <= limit else {
                throw InvalidField(field, "'\(field)' is \(factors.map(String.init).joined(separator: " × ")), more than the limit of \(limit)")
            }
            total = next
        }
        return total
    }

    /// `a + b` without overflow, refused past `limit`.
    public static func sum(_ a: Int, _ b: Int, _ field: String, limit: Int = .max) throws -> Int {
        let (total, overflow) = a.addingReportingOverflow(b)
        guard !overflow, total <= limit else { throw InvalidField(field, "'\(field)' is \(a) + \(b), more than the limit of \(limit)") }
        return total
    }

    /// A name a client gives to something the server keeps (a model, an index) and that may become a
    /// file name: 1–64 letters, digits, '.', '_' or '-', not starting with '.', so "../x", "a/b" and
    /// ".." can never name a path.
    public static func name(_ value: String, _ field: String) throws -> String {
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 46 || byte == 95 || byte == 45
        }
        guard (1...64).contains(value.utf8.count), allowed, !value.hasPrefix(".") else {
            throw InvalidField(field, "\(field) '\(value.prefix(80))' must be 1-64 letters, digits, '.', '_' or '-', not starting with '.'")
        }
        return value
    }

    static func describe<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> String {
        if range.upperBound == T.max { return "at least \(range.lowerBound)" }
        return "\(range.lowerBound) ... \(range.upperBound)"
    }

    static func formatted(_ value: Double) -> String {
        abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
