import NIOCore

/// One stream on the server side, as its handler sees it.
public final class ServerCall: Sendable {
    public let context: CallContext
    /// Request payloads in arrival order; finishes when the caller half-closes.
    public let requests: RequestPayloads
    let connection: ServerConnection

    init(context: CallContext, requests: RequestPayloads, connection: ServerConnection) {
        self.context = context
        self.requests = requests
        self.connection = connection
    }

    /// Sends one MESSAGE frame. Throws CANCELLED once the stream has ended (cancelled or deadline passed).
    public func send(_ payload: ByteBuffer) async throws {
        try await connection.sendMessage(streamID: context.streamID, payload: payload)
    }

    /// The one request of a unary or server-streaming call.
    func singleRequest<Request: WireMessage>() async throws -> Request {
        var iterator = requests.makeAsyncIterator()
        guard let bytes = try await iterator.next() else {
            throw WireStatus(.invalidArgument, "\(context.method) expects one \(Request.protoName) request, the stream carried none")
        }
        return try Request(wireBuffer: bytes)
    }
}

/// The request payloads of one stream. Each payload read gives its bytes back to the connection's
/// budget, so a client can have only so much waiting for handlers that do not read (a unary
/// handler reads one message; more would otherwise pile up until memory ran out).
public struct RequestPayloads: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let base: AsyncThrowingStream<ByteBuffer, Error>
    let consumed: @Sendable (Int) -> Void

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<ByteBuffer, Error>.AsyncIterator
        let consumed: @Sendable (Int) -> Void

        public mutating func next() async throws -> ByteBuffer? {
            guard let payload = try await base.next() else { return nil }
            consumed(payload.readableBytes)
            return payload
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), consumed: consumed)
    }
}
