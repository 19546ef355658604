import ChorusWire
import Foundation

/// A run's levels as a table for people, JSON for programs and CSV with perf_analyzer's column names
/// where they apply. Latencies are in milliseconds in the table and JSON, microseconds in the CSV (as
/// perf_analyzer writes them).
public struct LoadReport: Sendable {
    public var target: String
    public var method: String
    public var levels: [LevelResult]

    public init(target: String, method: String, levels: [LevelResult]) {
        self.target = target
        self.method = method
        self.levels = levels
    }

    static func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
    static func ms(_ micros: Double) -> Double { micros / 1000 }

    static func summary(_ h: LatencyHistogram) -> [String: Any] {
        guard h.count > 0 else { return ["count": 0] }
        return ["count": h.count, "mean": ms(h.mean), "std": ms(h.standardDeviation), "min": ms(h.min),
                "p50": ms(h.percentile(50)), "p90": ms(h.percentile(90)), "p95": ms(h.percentile(95)),
                "p99": ms(h.percentile(99)), "max": ms(h.max)]
    }

    public var json: [String: Any] {
        ["target": target, "method": method, "levels": levels.map { level -> [String: Any] in
            var row: [String: Any] = [
                "mode": "\(level.mode)", "sent": level.sent, "succeeded": level.succeeded,
                "failures": Dictionary(uniqueKeysWithValues: level.failures.map { ("\($0.key)", $0.value) }),
                "not_sent": level.notSent, "elapsed_s": level.seconds, "requests_per_s": level.throughput,
                "answers": level.answers, "latency_ms": Self.summary(level.latency),
            ]
            switch level.mode {
            case .concurrency(let n): row["concurrency"] = n
            case .rate(let r, let poisson): row["rate"] = r; row["arrivals"] = poisson ? "poisson" : "constant"
            }
            if level.firstAnswer.count > 0 {
                row["first_answer_ms"] = Self.summary(level.firstAnswer)
                // Mean time between the answers after the first (time per output token for a chat):
                // (end-to-end − first answer) ÷ the answers after the first, per call.
                let later = Double(level.answers - level.succeeded) / Double(max(1, level.succeeded))
                row["between_answers_ms"] = later > 0 ? Self.ms((level.latency.mean - level.firstAnswer.mean) / later) : 0
                row["answers_per_s"] = level.seconds > 0 ? Double(level.answers) / level.seconds : 0
            }
            return row
        }]
    }

    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    }

    public var csv: String {
        var lines = ["Concurrency,Request Rate,Inferences/Second,Client Send,Succeeded,Errors,Avg latency,p50 latency,p90 latency,p95 latency,p99 latency,Max latency,First answer p50"]
        for level in levels {
            let (concurrency, rate): (String, String) = {
                switch level.mode {
                case .concurrency(let n): return ("\(n)", "")
                case .rate(let r, _): return ("", String(format: "%g", r))
                }
            }()
            let h = level.latency
            lines.append([concurrency, rate, String(format: "%.3f", level.throughput), "\(level.sent)", "\(level.succeeded)", "\(level.failed)",
                          String(format: "%.0f", h.mean), "\(h.percentile(50))", "\(h.percentile(90))", "\(h.percentile(95))",
                          "\(h.percentile(99))", "\(h.count > 0 ? h.max : 0)",
                          level.firstAnswer.count > 0 ? "\(level.firstAnswer.percentile(50))" : ""].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var table: String {
        var out = "chorus load: \(method) at \(target)\n"
        out += "level              |   sent     ok  errors |     req/s |  p50 ms   p90 ms   p99 ms   max ms | first p50 ms\n"
        for level in levels {
            let h = level.latency
            let errors = level.failures.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let name = "\(level.mode)".padding(toLength: 18, withPad: " ", startingAt: 0)
            out += name + String(format: " | %6d %6d %7d | %9.2f | %7.1f  %7.1f  %7.1f  %7.1f | %@\n",
                          level.sent, level.succeeded, level.failed, level.throughput,
                          Self.ms(h.percentile(50)), Self.ms(h.percentile(90)), Self.ms(h.percentile(99)), Self.ms(h.count > 0 ? h.max : 0),
                          (level.firstAnswer.count > 0 ? String(format: "%.1f", Self.ms(level.firstAnswer.percentile(50))) : "-") as NSString)
            if !errors.isEmpty { out += "  errors: \(errors)\n" }
            if level.notSent > 0 { out += "  not sent: \(level.notSent) arrivals found the generator's outstanding calls full\n" }
        }
        return out
    }
}
