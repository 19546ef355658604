import NIOCore

/// A method the server answers. The raw handler sees payload bytes; the typed constructors below
/// decode requests and encode responses so service code never sees bytes.
public struct ServerRoute: Sendable {
    /// Returns the payload of the CLOSE frame (a unary or client-streaming answer), or nil.
    public typealias RawHandler = @Sendable (ServerCall) async throws -> ByteBuffer?

    public let path: String
    public let handler: RawHandler
    /// Unary and server-streaming methods read one request message: the server refuses a second
    /// rather than keep it for a handler that never reads it.
    public let takesOneRequest: Bool
    /// The handler only relays (it waits on sockets and never computes): its task runs on the connection's
    /// event loop (EventLoopExecutor). The gateway's forward is such a handler.
    public let relaysOnly: Bool
    /// Offered each call whose one request came in its OPEN frame before `handler` runs; it may take the call
    /// on the event loop (LoopRelay).
    public let loopRelay: LoopRelay?

    public init(path: String, takesOneRequest: Bool = false, relaysOnly: Bool = false, loopRelay: LoopRelay? = nil,
                handler: @escaping RawHandler) {
        self.path = path
        self.takesOneRequest = takesOneRequest
        self.relaysOnly = relaysOnly
        self.loopRelay = loopRelay
        self.handler = handler
    }

    public static func unary<Request: WireMessage, Response: WireMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, CallContext) async throws -> Response
    ) -> ServerRoute {
        ServerRoute(path: method.path, takesOneRequest: true) { call in
            let request: Request = try await call.singleRequest()
            return try await body(request, call.context).wireBuffer()
        }
    }

    public static func serverStreaming<Request: WireMessage, Response: WireMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, CallContext, ResponseWriter<Response>) async throws -> Void
    ) -> ServerRoute {
        ServerRoute(path: method.path, takesOneRequest: true) { call in
            let request: Request = try await call.singleRequest()
            try await body(request, call.context, ResponseWriter(call: call))
            return nil
        }
    }

    public static func clientStreaming<Request: WireMessage, Response: WireMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RequestStream<Request>, CallContext) async throws -> Response
    ) -> ServerRoute {
        ServerRoute(path: method.path) { call in
            try await body(RequestStream(call.requests), call.context).wireBuffer()
        }
    }

    public static func bidirectionalStreaming<Request: WireMessage, Response: WireMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RequestStream<Request>, CallContext, ResponseWriter<Response>) async throws -> Void
    ) -> ServerRoute {
        ServerRoute(path: method.path) { call in
            try await body(RequestStream(call.requests), call.context, ResponseWriter(call: call))
            return nil
        }
    }
}

/// Sends a streaming call's messages. Each write waits until the frame is handed to the socket,
/// so a slow reader slows the handler down instead of filling memory.
public struct ResponseWriter<Response: WireMessage>: Sendable {
    let call: ServerCall

    public init(call: ServerCall) {
        self.call = call
    }

    public func write(_ response: Response) async throws {
        try await call.send(response.wireBuffer())
    }
}

/// The requests of a client-streaming call, decoded as they arrive.
public struct RequestStream<Request: WireMessage>: AsyncSequence, Sendable {
    public typealias Element = Request
    let base: RequestPayloads

    public init(_ base: RequestPayloads) {
        self.base = base
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestPayloads.AsyncIterator

        public mutating func next() async throws -> Request? {
            guard let bytes = try await base.next() else { return nil }
            return try Request(wireBuffer: bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }
}
