import ChorusServiceKit
import ChorusTensor
import ChorusWire

/// Dynamic batching, as Triton's dynamic batcher does it: inputs of concurrent calls wait up to
/// `window` for company, then run as one batch of at most `maxBatch` rows; each call gets its own rows
/// of the result. A call with `maxBatch` inputs or more does not wait. Batches run through the
/// service's limiter (so --max-concurrency bounds them) on compute threads.
actor EmbeddingBatcher<Input: Sendable> {
    typealias Run = @Sendable ([Input]) throws -> Tensor

    private struct Waiting {
        let id: UInt64
        let inputs: [Input]
        let continuation: CheckedContinuation<Tensor, Error>
    }

    private let window: Duration
    private let maxBatch: Int
    /// Inputs allowed to wait; past that, calls are refused with RESOURCE_EXHAUSTED.
    private let maxWaiting: Int
    private let limiter: ConcurrencyLimiter
    private let compute: ComputeQueue
    private let run: Run
    private var waiting: [Waiting] = []
    private var waitingInputs = 0
    private var nextID: UInt64 = 0
    private var flushScheduled = false
    /// Sizes of the batches run so far (for Status and the benchmark).
    private(set) var batchesRun = 0
    private(set) var inputsRun = 0

    init(window: Duration, maxBatch: Int, maxWaiting: Int, limiter: ConcurrencyLimiter, compute: ComputeQueue, run: @escaping Run) {
        self.window = window
        self.maxBatch = max(1, maxBatch)
        self.maxWaiting = maxWaiting
        self.limiter = limiter
        self.compute = compute
        self.run = run
    }

    /// The embeddings of `inputs`, one row each, in order.
    func embed(_ inputs: [Input]) async throws -> Tensor {
        guard !inputs.isEmpty else { throw WireStatus(.invalidArgument, "nothing to embed") }
        if inputs.count >= maxBatch || window == .zero {
            var rows: [Tensor] = []
            for start in stride(from: 0, to: inputs.count, by: maxBatch) {
                rows.append(try await execute(Array(inputs[start..<min(start + maxBatch, inputs.count)])))
            }
            return rows.count == 1 ? rows[0] : Tensor.concatenate(rows, axis: 0)
        }
        guard waitingInputs + inputs.count <= maxWaiting else {
            throw WireStatus(.resourceExhausted, "\(waitingInputs) inputs already wait for a batch (limit \(maxWaiting)); retry later")
        }
        nextID += 1
        let id = nextID
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiting.append(Waiting(id: id, inputs: inputs, continuation: continuation))
                waitingInputs += inputs.count
                if waitingInputs >= maxBatch { startBatch() } else { scheduleFlush() }
            }
        } onCancel: {
            Task { await self.withdraw(id) }
        }
    }

    var stats: (batches: Int, inputs: Int) { (batchesRun, inputsRun) }

    /// The first waiting call opens a window; when it closes, whatever waits runs.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        Task { [window] in
            try? await Task.sleep(for: window)
            self.windowClosed()
        }
    }

    private func windowClosed() {
        flushScheduled = false
        if !waiting.isEmpty { startBatch() }
    }

    /// A cancelled call that has not started leaves the queue at once.
    private func withdraw(_ id: UInt64) {
        guard let at = waiting.firstIndex(where: { $0.id == id }) else { return }
        let gone = waiting.remove(at: at)
        waitingInputs -= gone.inputs.count
        gone.continuation.resume(throwing: CancellationError())
    }

    /// Takes whole calls from the front of the queue up to `maxBatch` inputs and runs them together.
    private func startBatch() {
        var taken: [Waiting] = []
        var count = 0
        while let first = waiting.first, taken.isEmpty || count + first.inputs.count <= maxBatch {
            taken.append(waiting.removeFirst())
            count += first.inputs.count
        }
        waitingInputs -= count
        if !waiting.isEmpty {
            if waitingInputs >= maxBatch { startBatch() } else { scheduleFlush() }
        }
        Task {
            do {
                let result = try await self.execute(taken.flatMap(\.inputs))
                var row = 0
                for call in taken {
                    call.continuation.resume(returning: result.slice(axis: 0, row..<(row + call.inputs.count)))
                    row += call.inputs.count
                }
            } catch {
                for call in taken { call.continuation.resume(throwing: error) }
            }
        }
    }

    private func execute(_ inputs: [Input]) async throws -> Tensor {
        batchesRun += 1
        inputsRun += inputs.count
        let run = self.run
        return try await limiter.run {
            try await compute.run { _ in try run(inputs) }
        }
    }
}
