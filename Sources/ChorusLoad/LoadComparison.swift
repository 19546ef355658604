import Foundation

/// `chorus load --compare a.json b.json`: the ratios of two runs' figures, level by level (matched by
/// their mode), B over A: a throughput ratio above 1 and latency ratios below 1 mean B is better.
public struct LoadComparison {
    public let a: [String: Any]
    public let b: [String: Any]

    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(a: [String: Any], b: [String: Any]) {
        self.a = a
        self.b = b
    }

    public static func read(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ReadError(description: "cannot read '\(path)'") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any], json["levels"] is [[String: Any]] else {
            throw ReadError(description: "'\(path)' is not a chorus load --json report")
        }
        return json
    }

    /// The figures compared: a name, where it sits in a level's JSON, and whether higher is better.
    static let figures: [(name: String, path: [String], higherIsBetter: Bool)] = [
        ("req/s", ["requests_per_s"], true),
        ("p50 ms", ["latency_ms", "p50"], false),
        ("p99 ms", ["latency_ms", "p99"], false),
        ("first p50 ms", ["first_answer_ms", "p50"], false),
        ("tokens/s", ["output_tokens_per_s"], true),
        ("TPOT p50 ms", ["tpot_ms", "p50"], false),
        ("RTF", ["real_time_factor", "overall"], false),
        ("goodput/s", ["goodput_per_s"], true),
    ]

    static func value(_ row: [String: Any], _ path: [String]) -> Double? {
        var node: Any? = row
        for key in path { node = (node as? [String: Any])?[key] }
        return (node as? NSNumber)?.doubleValue
    }

    /// One line per level and figure both runs have: A, B and B ÷ A.
    public var table: String {
        let rowsA = a["levels"] as? [[String: Any]] ?? [], rowsB = b["levels"] as? [[String: Any]] ?? []
        var out = "compare: A = \(a["method"] ?? "?") at \(a["target"] ?? "?"), B = \(b["method"] ?? "?") at \(b["target"] ?? "?")\n"
        out += "level              | figure        |          A |          B |    B ÷ A\n"
        var matched = 0
        for rowA in rowsA {
            guard let mode = rowA["mode"] as? String, let rowB = rowsB.first(where: { $0["mode"] as? String == mode }) else { continue }
            matched += 1
            for figure in Self.figures {
                guard let x = Self.value(rowA, figure.path), let y = Self.value(rowB, figure.path) else { continue }
                let ratio = x != 0 ? String(format: "%8.3f", y / x) : "       -"
                let better = x == y || x == 0 ? "" : ((y > x) == figure.higherIsBetter ? "  B better" : "  A better")
                out += mode.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + " | " + figure.name.padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(format: " | %10.3f | %10.3f | ", x, y) + ratio + better + "\n"
            }
        }
        if matched == 0 { out += "(no level of A has a level of the same mode in B)\n" }
        return out
    }
}
