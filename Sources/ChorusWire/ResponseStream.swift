/// The answers of a streaming call. Leaving the `for try await` loop early cancels the call on the server,
/// which a plain AsyncThrowingStream would only do once the stream itself is released.
public struct ResponseStream<Element: Sendable>: AsyncSequence, Sendable {
    let base: AsyncThrowingStream<Element, Error>
    let cancel: @Sendable () -> Void

    /// Answers produced in this process (the gateway's own streams); `cancel` stops their producer.
    public init(_ base: AsyncThrowingStream<Element, Error>, cancel: @escaping @Sendable () -> Void) {
        self.base = base
        self.cancel = cancel
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<Element, Error>.AsyncIterator
        let token: CancelOnRelease

        public mutating func next() async throws -> Element? {
            try await base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), token: CancelOnRelease(cancel))
    }
}

/// Cancels when the last iterator holding it goes away; cancelling a finished call does nothing.
final class CancelOnRelease: Sendable {
    let action: @Sendable () -> Void

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = action
    }

    deinit {
        action()
    }
}
