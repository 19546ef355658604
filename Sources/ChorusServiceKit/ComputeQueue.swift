import ChorusWire
import Dispatch
import Synchronization

/// Model work runs on its own threads, not on Swift's cooperative pool: a decode that takes seconds
/// must not keep Health and Status (which need a cooperative thread) from answering. How many run at
/// once is the limiter's business; this only supplies the threads.
public final class ComputeQueue: Sendable {
    private let queue = DispatchQueue(label: "chorus.compute", qos: .userInitiated, attributes: .concurrent)

    public init() {}

    /// Runs `body` on a compute thread. Cancelling the calling task raises the flag `body` polls.
    public func run<T: Sendable>(_ body: @escaping @Sendable (CancellationFlag) throws -> T) async throws -> T {
        let flag = CancellationFlag()
        let note = RequestNote.current
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async {
                    // A trap in model code names the request it was computing (the crash report).
                    RequestNote.noteThread(note)
                    defer { RequestNote.noteThread(nil) }
                    continuation.resume(with: Result { try body(flag) })
                }
            }
        } onCancel: {
            flag.cancel()
        }
    }
}

/// Set when the call that started some compute work is cancelled (CANCEL frame, deadline, client gone).
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isCancelled: Bool { flag.load(ordering: .relaxed) }

    public func cancel() {
        flag.store(true, ordering: .relaxed)
    }
}
