import Foundation

/// Goodput's bar, as vLLM's `--goodput` sets it: a call counts as good when it succeeded and met every
/// objective given. `ttft=200ms,e2e=2s,tpot=50ms,rtf=0.5,step=300ms`.
public struct ServiceLevelObjectives: Sendable, Equatable, CustomStringConvertible {
    /// Time to the first answer (first token, segment, audio chunk, step).
    public var firstAnswer: Duration?
    public var endToEnd: Duration?
    /// Mean time per output token after the first (chat).
    public var timePerOutputToken: Duration?
    /// Processing time ÷ audio duration (speech).
    public var realTimeFactor: Double?
    /// Time per denoising step (diffusion).
    public var perStep: Duration?

    public init() {}

    public var isEmpty: Bool { self == ServiceLevelObjectives() }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses `name=value` pairs separated by commas; times take ms, s or us (ms when bare).
    public init(parsing text: String) throws {
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw ParseError(description: "--slo '\(pair)' is not NAME=VALUE") }
            switch parts[0] {
            case "ttft", "first": firstAnswer = try Self.time(parts[1], pair)
            case "e2e", "e2el": endToEnd = try Self.time(parts[1], pair)
            case "tpot": timePerOutputToken = try Self.time(parts[1], pair)
            case "step": perStep = try Self.time(parts[1], pair)
            case "rtf":
                guard let value = Double(parts[1]), value.isFinite, value > 0 else {
                    throw ParseError(description: "--slo '\(pair)': rtf takes a positive number")
                }
                realTimeFactor = value
            default:
                throw ParseError(description: "--slo '\(pair)': objectives are ttft, e2e, tpot, rtf and step")
            }
        }
        guard !isEmpty else { throw ParseError(description: "--slo '\(text)' names no objective") }
    }

    static func time(_ text: String, _ pair: Substring) throws -> Duration {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("s", 1)]
        let (number, scale) = units.first { text.hasSuffix($0.0) }.map { (String(text.dropLast($0.0.count)), $0.1) } ?? (text, 1e-3)
        guard let value = Double(number), value.isFinite, value > 0, value * scale <= 86_400 else {
            throw ParseError(description: "--slo '\(pair)': '\(text)' is not a time such as 200ms or 2s")
        }
        return .nanoseconds(Int64(value * scale * 1e9))  // checked: 0 < value·scale ≤ 86400 s
    }

    /// Whether a successful call met every objective given (one the call cannot show, such as a TTFT of
    /// a unary call, counts as missed: it was asked for and not seen).
    public func met(by outcome: CallOutcome, timePerOutputToken tpot: Duration?, realTimeFactor rtf: Double?, perStep step: Duration?) -> Bool {
        guard outcome.failure == nil else { return false }
        if let endToEnd, outcome.latency > endToEnd { return false }
        if let firstAnswer { guard let seen = outcome.firstAnswer, seen <= firstAnswer else { return false } }
        if let timePerOutputToken { guard let tpot, tpot <= timePerOutputToken else { return false } }
        if let realTimeFactor { guard let rtf, rtf <= realTimeFactor else { return false } }
        if let perStep { guard let step, step <= perStep else { return false } }
        return true
    }

    public var description: String {
        func ms(_ d: Duration) -> String { String(format: "%gms", d.seconds * 1000) }
        var parts: [String] = []
        if let firstAnswer { parts.append("ttft=\(ms(firstAnswer))") }
        if let endToEnd { parts.append("e2e=\(ms(endToEnd))") }
        if let timePerOutputToken { parts.append("tpot=\(ms(timePerOutputToken))") }
        if let realTimeFactor { parts.append(String(format: "rtf=%g", realTimeFactor)) }
        if let perStep { parts.append("step=\(ms(perStep))") }
        return parts.joined(separator: ",")
    }
}
