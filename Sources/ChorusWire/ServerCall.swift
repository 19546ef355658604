import NIOCore

/// One stream on the server side, as its handler sees it.
public final class ServerCall: Sendable {
    public let context: CallContext
    /// Request payloads in arrival order; finishes when the caller half-closes.
    public let requests: AsyncThrowingStream<[UInt8], Error>
    let connection: ServerConnection

    init(context: CallContext, requests: AsyncThrowingStream<[UInt8], Error>, connection: ServerConnection) {
        self.context = context
        self.requests = requests
        self.connection = connection
    }

    /// Sends one MESSAGE frame. Throws CANCELLED once the stream has ended (cancelled or deadline passed).
    public func send(_ payload: [UInt8]) async throws {
        try await connection.sendMessage(streamID: context.streamID, payload: payload)
    }

    /// The one request of a unary or server-streaming call.
    func singleRequest<Request: WireMessage>() async throws -> Request {
        var iterator = requests.makeAsyncIterator()
        guard let bytes = try await iterator.next() else {
            throw WireStatus(.invalidArgument, "\(context.method) expects one \(Request.protoName) request, the stream carried none")
        }
        return try Request(wireBytes: bytes)
    }
}
