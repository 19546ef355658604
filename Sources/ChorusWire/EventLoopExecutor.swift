import NIOCore

/// Runs a task's jobs on one event loop. Handlers that only relay (the gateway's forward: they wait on
/// sockets and never compute) run their task here, on their connection's own loop: the frame that starts
/// the call, the handler, and the answer's write then share one thread, instead of passing the call to
/// Swift's thread pool and back (two thread wake-ups a call, most of a forwarded call's cost on loopback).
/// Never for handlers that compute: they would stall every connection on the loop.
final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
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

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

extension EventLoop {
    /// Runs `body` now when on this loop (a relay task already is), else on the loop.
    func executeSoon(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}
