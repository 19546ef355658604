import CKernels
import Foundation
import Synchronization

/// Helper threads that keep polling for the next job for a moment after each one, instead of going to
/// sleep. A decoder step is some fifty products of a few hundred microseconds or less, each split over
/// the cores; through `DispatchQueue.concurrentPerform` every one of them woke a sleeping worker (a futex
/// wake, then the scheduler), and the calling thread often finished alone before the worker arrived.
///
/// One job runs at a time: a call made while a job is running (another request's thread, or a nested
/// call from inside a job) is refused, and `Parallel.perform` gives it to Dispatch instead.
/// `CHORUS_POOL=dispatch` turns the pool off, for comparison.
final class SpinningPool: @unchecked Sendable {
    static let shared: SpinningPool? = {
        guard Parallel.cores > 1, ProcessInfo.processInfo.environment["CHORUS_POOL"] != "dispatch" else { return nil }
        return SpinningPool(helpers: Parallel.cores - 1)
    }()

    /// How long an idle helper polls before it sleeps: longer than the serial stretches between a decoder
    /// step's products, short enough that an idle service gives its cores back at once.
    static let pollNanoseconds: UInt64 = 300_000

    private let helpers: Int
    private let busy = Atomic<Bool>(false)
    /// Bumped once per job; helpers compare it with the last one they ran.
    private let generation = Atomic<Int>(0)
    /// The next iteration to hand out (helpers and the caller take them in turn).
    private let next = Atomic<Int>(0)
    /// Helpers that have not yet finished the current job.
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let wake = NSCondition()
    // Written by the caller before `generation` is bumped, read by helpers after they see the bump.
    private var body: ((Int) -> Void)?
    private var iterations = 0

    private init(helpers: Int) {
        self.helpers = helpers
        for index in 0..<helpers {
            let thread = Thread { [unowned self] in self.helperLoop() }
            thread.name = "chorus-pool-\(index + 1)"
            thread.start()
        }
    }

    /// Runs body(0..<iterations) on the caller and the helpers; false (nothing run) when a job is already running.
    func perform(iterations count: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(body) { body in
            self.body = body
            iterations = count
            next.store(0, ordering: .relaxed)
            pending.store(helpers, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            runIterations()
            // Helpers read `body` until they report back, so it must outlive them.
            while pending.load(ordering: .acquiring) > 0 { chorus_cpu_relax() }
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    private func runIterations() {
        while true {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            guard i < iterations else { return }
            body!(i)
        }
    }

    private func helperLoop() {
        var seen = 0
        while true {
            var polls = 0
            var since: UInt64 = 0
            while generation.load(ordering: .acquiring) == seen {
                chorus_cpu_relax()
                polls += 1
                guard polls & 255 == 0 else { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if since == 0 { since = now; continue }
                guard now - since > Self.pollNanoseconds else { continue }
                wake.lock()
                sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                wake.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            runIterations()
            pending.wrappingSubtract(1, ordering: .releasing)
        }
    }
}
