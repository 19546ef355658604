import ChorusWire

/// Bounds the model work a service does at once (`--max-concurrency`) and how many calls may wait
/// (`--max-queue`); past that a call is refused with RESOURCE_EXHAUSTED instead of queueing without end.
public actor ConcurrencyLimiter {
    public nonisolated let maxConcurrency: Int
    public nonisolated let maxQueue: Int
    private var running = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    private var nextWaiter: UInt64 = 0

    public init(maxConcurrency: Int, maxQueue: Int) {
        self.maxConcurrency = max(1, maxConcurrency)
        self.maxQueue = max(0, maxQueue)
    }

    public var inFlight: Int { running }
    public var queueDepth: Int { waiters.count }

    /// How long calls held a slot, as a Prometheus histogram's buckets, and the calls refused for a full queue.
    public struct ComputeSeconds: Sendable {
        public static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
        /// Calls per bucket (not cumulative): counts[i] took at most bounds[i] and more than bounds[i - 1].
        public var counts = [Int](repeating: 0, count: bounds.count)
        public var count = 0
        public var sum = 0.0
        public var refused = 0

        mutating func record(_ seconds: Double) {
            if let bucket = Self.bounds.firstIndex(where: { seconds <= $0 }) { counts[bucket] += 1 }
            count += 1
            sum += seconds
        }
    }

    public private(set) var computeSeconds = ComputeSeconds()

    /// Runs `body` when a slot is free. A cancelled waiter leaves the queue at once.
    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        let clock = ContinuousClock(), started = clock.now
        defer {
            let held = clock.now - started
            computeSeconds.record(Double(held.components.seconds) + Double(held.components.attoseconds) / 1e18)
            release()
        }
        return try await body()
    }

    private func acquire() async throws {
        if running < maxConcurrency {
            running += 1
            return
        }
        guard waiters.count < maxQueue else {
            computeSeconds.refused += 1
            throw WireStatus(.resourceExhausted,
                             "service is busy: \(running) calls running and \(waiters.count) waiting (--max-concurrency \(maxConcurrency), --max-queue \(maxQueue)); retry later")
        }
        nextWaiter += 1
        let id = nextWaiter
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                waiters.append((id, continuation))
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    private func release() {
        if waiters.isEmpty {
            running -= 1
        } else {
            // The slot passes straight to the oldest waiter; `running` stays the same.
            waiters.removeFirst().continuation.resume()
        }
    }
}
