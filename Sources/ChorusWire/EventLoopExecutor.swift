import NIOCore

/// Runs a task's jobs on a NIO event loop. Handlers that only relay bytes (the gateway) run here, so a call
/// never leaves the connection's thread; handlers that compute must not, or they stall the connection.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: EventLoop

    init(_ eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
