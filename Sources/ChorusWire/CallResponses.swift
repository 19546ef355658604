import NIOCore
import Synchronization

/// One message of a call's answer. `isFinal` marks the one that came in the CLOSE frame,
/// so a forwarding gateway can keep unary answers to a single frame.
public struct ResponsePart: Sendable {
    public var payload: ByteBuffer
    public var isFinal: Bool

    public init(payload: ByteBuffer, isFinal: Bool) {
        self.payload = payload
        self.isFinal = isFinal
    }

    /// The payload's bytes as an array (tests, diagnostics).
    public var bytes: [UInt8] { Array(payload.readableBytesView) }
}

/// The answers of one call, in order; finishes on CLOSE with OK, throws `WireStatus` otherwise.
/// Each answer read gives its bytes back to the connection's budget: a caller that reads slowly stops
/// the connection reading, so the server's writes wait instead of piling up in this process.
public struct CallResponses: AsyncSequence, Sendable {
    public typealias Element = ResponsePart
    let base: AsyncThrowingStream<ResponsePart, Error>
    let budget: ResponseBudget?

    /// Answers that were produced in this process or are accounted for elsewhere (a router's relay).
    public init(_ base: AsyncThrowingStream<ResponsePart, Error>) {
        self.base = base
        budget = nil
    }

    init(_ base: AsyncThrowingStream<ResponsePart, Error>, budget: ResponseBudget) {
        self.base = base
        self.budget = budget
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<ResponsePart, Error>.AsyncIterator
        let budget: ResponseBudget?

        public mutating func next() async throws -> ResponsePart? {
            guard let part = try await base.next() else { return nil }
            budget?.consumed(part.payload.readableBytes)
            return part
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), budget: budget)
    }
}

/// The bytes of one call's answers that arrived but were not read yet. What is still unread when the
/// call's responses are dropped is given back then, so an abandoned call cannot stall its connection.
final class ResponseBudget: Sendable {
    private let connection: ClientConnection
    private let unread = Atomic<Int>(0)

    init(connection: ClientConnection) {
        self.connection = connection
    }

    /// On the event loop: an answer of `count` bytes was handed to the reader.
    func arrived(_ count: Int) {
        unread.add(count, ordering: .relaxed)
        connection.arrived(count)
    }

    func consumed(_ count: Int) {
        guard count > 0 else { return }
        unread.subtract(count, ordering: .relaxed)
        connection.consumed(count)
    }

    deinit {
        let left = unread.load(ordering: .relaxed)
        if left > 0 { connection.consumed(left) }
    }
}
