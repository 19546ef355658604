import Foundation

/// Runs load levels against a caller and measures them. Time comes from the monotonic clock.
public struct LoadRunner: Sendable {
    public let caller: any LoadCaller
    public let limits: LoadLimits
    /// Seeds the arrival gaps, so a run is repeatable.
    public let seed: UInt64
    /// Open loop: calls outstanding at once before arrivals are counted as not sent.
    public let maxOutstanding: Int
    public let objectives: ServiceLevelObjectives?

    public init(caller: any LoadCaller, limits: LoadLimits, seed: UInt64 = 1, maxOutstanding: Int = 4096,
                objectives: ServiceLevelObjectives? = nil) {
        self.caller = caller
        self.limits = limits
        self.seed = seed
        self.maxOutstanding = maxOutstanding
        self.objectives = objectives
    }

    /// Warms up, then measures one level; `progress` hears each finished measured call (the current
    /// window's results so far).
    public func run(_ mode: LoadMode, progress: @escaping @Sendable (LevelResult) -> Void = { _ in }) async -> LevelResult {
        for i in 0..<limits.warmup { _ = await caller.call(i) }
        let cpuBefore = Self.processorSeconds()
        let clock = ContinuousClock(), started = clock.now
        let collector = Collector(mode: mode, objectives: objectives, windows: limits.windows, started: started, progress: progress)
        let stop = StopFlag()
        // Closes a window every `length`; run until stable, it also ends the level.
        let ticker = Task {
            while !Task.isCancelled {
                guard (try? await clock.sleep(for: limits.windows.length)) != nil else { return }
                let (stable, count) = await collector.closeWindow(at: clock.now)
                if limits.untilStable && (stable == true || count >= limits.windows.maxTrials) {
                    stop.set()
                    return
                }
            }
        }
        switch mode {
        case .concurrency(let callers): await closedLoop(callers: max(1, callers), collector: collector, stop: stop, started: started)
        case .rate(let rate, let arrivals): await openLoop(rate: rate, arrivals: arrivals, collector: collector, stop: stop, started: started)
        }
        ticker.cancel()
        let ended = clock.now
        var result = await collector.finish(at: ended, untilStable: limits.untilStable)
        result.clientCPUSeconds = Self.processorSeconds() - cpuBefore
        result.clientCores = result.clientCPUSeconds / max((ended - started).seconds, 1e-9)
        return result
    }

    private func closedLoop(callers: Int, collector: Collector, stop: StopFlag, started: ContinuousClock.Instant) async {
        let clock = ContinuousClock()
        let deadline = limits.duration.map { started + $0 }
        let tickets = Tickets(limit: limits.requests)
        await withDiscardingTaskGroup { group in
            for _ in 0..<callers {
                group.addTask {
                    while !stop.isSet, deadline.map({ clock.now < $0 }) ?? true, let index = tickets.next() {
                        await collector.add(await caller.call(limits.warmup + index))
                    }
                }
            }
        }
    }

    private func openLoop(rate: Double, arrivals: Arrivals, collector: Collector, stop: StopFlag, started: ContinuousClock.Instant) async {
        let clock = ContinuousClock()
        let deadline = limits.duration.map { started + $0 }
        var gaps = ArrivalGaps(rate: rate, arrivals: arrivals, seed: seed)
        var next = started
        var index = 0
        let outstanding = Outstanding()
        // A discarding group keeps nothing of finished calls: memory stays flat however long the run.
        await withDiscardingTaskGroup { group in
            while !stop.isSet, limits.requests.map({ index < $0 }) ?? true, deadline.map({ next < $0 }) ?? true {
                try? await clock.sleep(until: next)
                guard !stop.isSet else { break }
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
                next = next + .nanoseconds(Int64(min(gaps.next(), 86_400) * 1e9))  // checked: a gap is ≥ 0 and capped at a day
            }
        }
    }

    /// This process's user + system processor time so far.
    static func processorSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
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

/// Set once when a level has measured enough.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    var isSet: Bool { lock.withLock { stopped } }
    func set() { lock.withLock { stopped = true } }
}

/// Collects outcomes from concurrent callers: the level's total and the current window.
actor Collector {
    private var total: LevelResult
    private var window: LevelResult
    private let started: ContinuousClock.Instant
    private var windowStarted: ContinuousClock.Instant
    /// Only the last three windows are kept whole (they are what a stable level reports).
    private var lastWindows: [LevelResult] = []
    private var summaries: [WindowSummary] = []
    private let objectives: ServiceLevelObjectives?
    private let rule: MeasurementWindows
    private let progress: @Sendable (LevelResult) -> Void

    init(mode: LoadMode, objectives: ServiceLevelObjectives?, windows: MeasurementWindows, started: ContinuousClock.Instant,
         progress: @escaping @Sendable (LevelResult) -> Void) {
        total = LevelResult(mode: mode)
        window = total
        self.started = started
        windowStarted = started
        self.objectives = objectives
        rule = windows
        self.progress = progress
    }

    func add(_ outcome: CallOutcome) {
        total.add(outcome, objectives: objectives)
        window.add(outcome, objectives: objectives)
        progress(window)
    }

    func notSent() {
        total.notSent += 1
        window.notSent += 1
    }

    /// Ends the current window; answers whether the last three agree, and how many windows there were.
    func closeWindow(at now: ContinuousClock.Instant) -> (stable: Bool?, count: Int) {
        window.elapsed = now - windowStarted
        summaries.append(window.summary(rule))
        lastWindows = Array((lastWindows + [window]).suffix(3))
        window = LevelResult(mode: window.mode)
        windowStarted = now
        return (rule.stable(summaries), summaries.count)
    }

    func finish(at now: ContinuousClock.Instant, untilStable: Bool) -> LevelResult {
        var result = total
        result.elapsed = now - started
        if untilStable && !lastWindows.isEmpty {
            result = LevelResult(mode: total.mode)
            for window in lastWindows { result.merge(window) }
        }
        result.windows = summaries
        result.stable = rule.stable(summaries)
        return result
    }
}
