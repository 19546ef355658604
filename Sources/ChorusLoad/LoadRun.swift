import ChorusWire
import Foundation

/// What one call did, as the load generator saw it.
public struct CallOutcome: Sendable {
    /// nil when the call ended OK.
    public var failure: StatusCode?
    /// From sending to the last answer.
    public var latency: Duration
    /// From sending to the first answer of a streaming call (time to first token, segment, chunk, step).
    public var firstAnswer: Duration?
    /// Answers the call received (1 for unary calls; tokens, segments, chunks or events for streams).
    public var answers: Int

    public init(failure: StatusCode?, latency: Duration, firstAnswer: Duration?, answers: Int) {
        self.failure = failure
        self.latency = latency
        self.firstAnswer = firstAnswer
        self.answers = answers
    }
}

/// Makes one call of the load (the i-th: inputs are cycled by it).
public protocol LoadCaller: Sendable {
    func call(_ index: Int) async -> CallOutcome
}

/// How requests arrive.
public enum LoadMode: Sendable, Equatable, CustomStringConvertible {
    /// Closed loop: this many callers, each sending its next request when the last one ended.
    case concurrency(Int)
    /// Open loop: this many requests per second, at constant gaps or as a Poisson process (exponential gaps).
    case rate(Double, poisson: Bool)

    public var description: String {
        switch self {
        case .concurrency(let n): "concurrency \(n)"
        case .rate(let r, let poisson): String(format: "%g/s %@", r, poisson ? "poisson" : "constant")
        }
    }
}

/// When a level ends: after a number of measured requests, or after a time (the first reached).
public struct LoadLimits: Sendable {
    public var requests: Int?
    public var duration: Duration?
    /// Requests before measuring starts (model warm-up, connections); not in the results.
    public var warmup: Int

    public init(requests: Int? = nil, duration: Duration? = nil, warmup: Int = 0) {
        self.requests = requests
        self.duration = duration
        self.warmup = warmup
    }
}

/// The measured results of one load level.
public struct LevelResult: Sendable {
    public var mode: LoadMode
    public var sent = 0
    public var succeeded = 0
    public var failures: [StatusCode: Int] = [:]
    public var latency = LatencyHistogram()
    public var firstAnswer = LatencyHistogram()
    public var answers = 0
    public var elapsed: Duration = .zero
    /// Open loop only: arrivals that found this many calls still outstanding and were not sent (the
    /// generator's cap), so they are counted, never silently skipped.
    public var notSent = 0

    public init(mode: LoadMode) {
        self.mode = mode
    }

    var seconds: Double {
        let (s, a) = elapsed.components
        return Double(s) + Double(a) * 1e-18
    }

    /// Calls finished per second (failures included).
    public var throughput: Double { seconds > 0 ? Double(sent) / seconds : 0 }
    public var failed: Int { failures.values.reduce(0, +) }

    mutating func add(_ outcome: CallOutcome) {
        sent += 1
        answers += outcome.answers
        if let failure = outcome.failure {
            failures[failure, default: 0] += 1
        } else {
            succeeded += 1
            latency.record(outcome.latency)
            if let first = outcome.firstAnswer { firstAnswer.record(first) }
        }
    }
}

/// Runs load levels against a caller and measures them. Time comes from the monotonic clock.
public struct LoadRunner: Sendable {
    public let caller: any LoadCaller
    public let limits: LoadLimits
    /// Seeds the Poisson arrivals, so a run is repeatable.
    public let seed: UInt64
    /// Open loop: calls outstanding at once before arrivals are counted as not sent.
    public let maxOutstanding: Int

    public init(caller: any LoadCaller, limits: LoadLimits, seed: UInt64 = 1, maxOutstanding: Int = 4096) {
        self.caller = caller
        self.limits = limits
        self.seed = seed
        self.maxOutstanding = maxOutstanding
    }

    /// Warms up, then measures one level; `progress` hears each finished measured call.
    public func run(_ mode: LoadMode, progress: @escaping @Sendable (LevelResult) -> Void = { _ in }) async -> LevelResult {
        for i in 0..<limits.warmup { _ = await caller.call(i) }
        switch mode {
        case .concurrency(let callers): return await closedLoop(callers: max(1, callers), progress: progress)
        case .rate(let rate, let poisson): return await openLoop(rate: rate, poisson: poisson, progress: progress)
        }
    }

    private func closedLoop(callers: Int, progress: @escaping @Sendable (LevelResult) -> Void) async -> LevelResult {
        let clock = ContinuousClock(), started = clock.now
        let deadline = limits.duration.map { started + $0 }
        let tickets = Tickets(limit: limits.requests)
        let collector = Collector(mode: .concurrency(callers), progress: progress)
        await withDiscardingTaskGroup { group in
            for _ in 0..<callers {
                group.addTask {
                    while let index = tickets.next(), deadline.map({ clock.now < $0 }) ?? true {
                        await collector.add(await caller.call(limits.warmup + index))
                    }
                }
            }
        }
        return await collector.finish(elapsed: clock.now - started)
    }

    private func openLoop(rate: Double, poisson: Bool, progress: @escaping @Sendable (LevelResult) -> Void) async -> LevelResult {
        let clock = ContinuousClock(), started = clock.now
        let deadline = limits.duration.map { started + $0 }
        let collector = Collector(mode: .rate(rate, poisson: poisson), progress: progress)
        var random = SplitMix(seed: seed)
        var next = started
        var index = 0
        let outstanding = Outstanding()
        // A discarding group keeps nothing of finished calls: memory stays flat however long the run.
        await withDiscardingTaskGroup { group in
            while limits.requests.map({ index < $0 }) ?? true, deadline.map({ next < $0 }) ?? true {
                try? await clock.sleep(until: next)
                if outstanding.count >= maxOutstanding {
                    await collector.notSent()
                } else {
                    outstanding.take()
                    let i = limits.warmup + index
                    group.addTask {
                        await collector.add(await caller.call(i))
                        outstanding.giveBack()
                    }
                }
                index += 1
                let gap = poisson ? -log(1 - random.unit()) / rate : 1 / rate
                next = next + .nanoseconds(Int64(gap * 1e9))
            }
        }
        return await collector.finish(elapsed: clock.now - started)
    }
}

/// Hands out request numbers to closed-loop callers until the count is reached.
final class Tickets: @unchecked Sendable {
    private let lock = NSLock()
    private var issued = 0
    private let limit: Int?

    init(limit: Int?) {
        self.limit = limit
    }

    func next() -> Int? {
        lock.withLock {
            if let limit, issued >= limit { return nil }
            defer { issued += 1 }
            return issued
        }
    }


}

/// Open-loop calls sent and not yet answered.
final class Outstanding: @unchecked Sendable {
    private let lock = NSLock()
    private var calls = 0

    var count: Int { lock.withLock { calls } }
    func take() { lock.withLock { calls += 1 } }
    func giveBack() { lock.withLock { calls -= 1 } }
}

/// Collects outcomes from concurrent callers.
actor Collector {
    private var result: LevelResult
    private let progress: @Sendable (LevelResult) -> Void

    init(mode: LoadMode, progress: @escaping @Sendable (LevelResult) -> Void) {
        result = LevelResult(mode: mode)
        self.progress = progress
    }

    func add(_ outcome: CallOutcome) {
        result.add(outcome)
        progress(result)
    }

    func notSent() {
        result.notSent += 1
    }

    func finish(elapsed: Duration) -> LevelResult {
        result.elapsed = elapsed
        return result
    }
}

/// SplitMix64: a small seeded generator for the arrival gaps.
struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}
