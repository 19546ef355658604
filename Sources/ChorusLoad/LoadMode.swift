/// How requests arrive.
public enum LoadMode: Sendable, Equatable, CustomStringConvertible {
    /// Closed loop: this many callers, each sending its next request when the last one ended.
    case concurrency(Int)
    /// Open loop: this many requests per second, whatever the answers.
    case rate(Double, Arrivals)

    public var description: String {
        switch self {
        case .concurrency(let n): "concurrency \(n)"
        case .rate(let r, let arrivals): String(format: "%g/s ", r) + "\(arrivals)"
        }
    }
}

/// The gaps between open-loop arrivals.
public enum Arrivals: Sendable, Equatable, CustomStringConvertible {
    /// Exactly 1/rate apart.
    case constant
    /// Gamma-distributed gaps with mean 1/rate, as vLLM's benchmark draws them: burstiness 1 is a Poisson
    /// process (exponential gaps); below 1 arrivals come in bursts, above 1 they are more even.
    case gamma(burstiness: Double)

    public static let poisson = Arrivals.gamma(burstiness: 1)

    public var description: String {
        switch self {
        case .constant: "constant"
        case .gamma(let b) where b == 1: "poisson"
        case .gamma(let b): String(format: "gamma %g", b)
        }
    }
}

/// When a level ends: after a number of measured requests or a time (the first reached), or, when
/// neither is given, once its measurement windows are stable (perf_analyzer's way).
public struct LoadLimits: Sendable {
    public var requests: Int?
    public var duration: Duration?
    /// Requests before measuring starts (model warm-up, connections); not in the results.
    public var warmup: Int
    public var windows: MeasurementWindows

    public init(requests: Int? = nil, duration: Duration? = nil, warmup: Int = 0, windows: MeasurementWindows = .init()) {
        self.requests = requests
        self.duration = duration
        self.warmup = warmup
        self.windows = windows
    }

    /// No count and no time: run windows until the last three agree (or the trials run out).
    public var untilStable: Bool { requests == nil && duration == nil }
}

/// perf_analyzer's stability rule: a level is measured in windows of `length`; it is stable when the
/// throughput and the latency (a percentile, or the mean) of each of the last three windows lie within
/// `percent` of their average. Run until stable, a level reports those three windows together.
public struct MeasurementWindows: Sendable {
    public var length: Duration
    public var percent: Double
    /// Windows a level may take to become stable before it is reported as unstable.
    public var maxTrials: Int
    /// The latency percentile the rule compares; nil: the mean.
    public var percentile: Double?

    public init(length: Duration = .seconds(5), percent: Double = 10, maxTrials: Int = 10, percentile: Double? = nil) {
        self.length = length
        self.percent = percent
        self.maxTrials = maxTrials
        self.percentile = percentile
    }

    /// Whether the last three windows agree: nil when there are fewer than three.
    public func stable(_ windows: [WindowSummary]) -> Bool? {
        guard windows.count >= 3 else { return nil }
        let last = windows.suffix(3)
        guard last.allSatisfy({ $0.completed > 0 }) else { return false }
        func within(_ values: [Double]) -> Bool {
            let mean = values.reduce(0, +) / Double(values.count)
            return mean > 0 && values.allSatisfy { abs($0 - mean) / mean <= percent / 100 }
        }
        return within(last.map(\.throughput)) && within(last.map(\.latencyMicroseconds))
    }
}

/// One window of a level, as the stability rule sees it.
public struct WindowSummary: Sendable, Equatable {
    public var seconds: Double
    public var completed: Int
    /// Calls finished per second in the window.
    public var throughput: Double
    /// The compared latency of the window's successful calls (µs).
    public var latencyMicroseconds: Double

    public init(seconds: Double, completed: Int, throughput: Double, latencyMicroseconds: Double) {
        self.seconds = seconds
        self.completed = completed
        self.throughput = throughput
        self.latencyMicroseconds = latencyMicroseconds
    }
}
