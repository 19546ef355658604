import NIOConcurrencyHelpers
import NIOCore

/// Where a call can be opened: one service's `WireClient`, or the gateway's router, which picks a
/// replica per call. The typed calls the generated clients make are built on `open` alone.
public protocol WireChannel: Sendable {
    /// Opens a stream for `method`; `first` travels in the OPEN frame.
    func open(_ method: String, options: CallOptions, first: ByteBuffer?, endOfStream: Bool) async throws -> ClientCall
}

extension WireChannel {

    public func unary<Request: WireMessage, Response: WireMessage>(
        _ method: MethodDescriptor, _ request: Request, as: Response.Type, options: CallOptions = .init()
    ) async throws -> Response {
        let call = try await open(method.path, options: options, first: try request.wireBuffer(), endOfStream: true)
        return try await withTaskCancellationHandler {
            try await singleResponse(call, method, as: Response.self)
        } onCancel: {
            call.cancel()
        }
    }

    public func serverStreaming<Request: WireMessage, Response: WireMessage>(
        _ method: MethodDescriptor, _ request: Request, as: Response.Type, options: CallOptions = .init()
    ) -> ResponseStream<Response> {
        relay(method) { [self] in
            try await open(method.path, options: options, first: try request.wireBuffer(), endOfStream: true)
        }
    }

    public func clientStreaming<Requests: AsyncSequence & Sendable, Response: WireMessage>(
        _ method: MethodDescriptor, _ requests: Requests, as: Response.Type, options: CallOptions = .init()
    ) async throws -> Response where Requests.Element: WireMessage {
        let call = try await open(method.path, options: options, first: nil, endOfStream: false)
        let sender = Task { try await Self.pump(requests, into: call) }
        return try await withTaskCancellationHandler {
            defer { sender.cancel() }
            return try await singleResponse(call, method, as: Response.self)
        } onCancel: {
            call.cancel()
        }
    }

    public func bidirectionalStreaming<Requests: AsyncSequence & Sendable, Response: WireMessage>(
        _ method: MethodDescriptor, _ requests: Requests, as: Response.Type, options: CallOptions = .init()
    ) -> ResponseStream<Response> where Requests.Element: WireMessage {
        relay(method) { [self] in
            let call = try await open(method.path, options: options, first: nil, endOfStream: false)
            Task { try await Self.pump(requests, into: call) }
            return call
        }
    }

    /// The one answer of a unary or client-streaming call.
    private func singleResponse<Response: WireMessage>(_ call: ClientCall, _ method: MethodDescriptor, as: Response.Type) async throws -> Response {
        var response: Response?
        for try await part in call.responses where response == nil {
            response = try decodeResponse(part.payload, method)
        }
        // A cancelled task ends the iteration early; report the cancellation, not a missing answer.
        if Task.isCancelled { throw WireStatus(.cancelled, "the call was cancelled by the caller") }
        guard let response else {
            throw WireStatus(.internal, "\(method) ended with OK but sent no \(Response.protoName)")
        }
        return response
    }

    /// Sends every request, then half-closes. Send errors are left to the response stream to report.
    private static func pump<Requests: AsyncSequence>(_ requests: Requests, into call: ClientCall) async throws
    where Requests.Element: WireMessage {
        for try await request in requests {
            try await call.send(request.wireBuffer())
        }
        try await call.halfClose()
    }

    /// Decoded responses of a call; the caller leaving the loop (or dropping the stream) cancels the call.
    /// The call starts with the first `next()`, and each answer is read from the connection only when the
    /// caller asks for it: a caller that reads slowly holds the server back (the connection's budget,
    /// CallResponses) instead of answers piling up decoded here.
    private func relay<Response: WireMessage>(
        _ method: MethodDescriptor, start: @escaping @Sendable () async throws -> ClientCall
    ) -> ResponseStream<Response> {
        let reader = AnswerPuller(start)
        let stream = AsyncThrowingStream<Response, Error>(unfolding: {
            guard let part = try await reader.next() else { return nil }
            return try decodeResponse(part.payload, method)
        })
        return ResponseStream(stream, cancel: { reader.cancel() })
    }
}

/// Opens a call on first use and reads its answers one `next()` at a time. `next` is called serially
/// (AsyncThrowingStream's unfolding closure); `cancel` may come from anywhere.
private final class AnswerPuller: @unchecked Sendable {
    private let start: @Sendable () async throws -> ClientCall
    private let lock = NIOLock()
    private var call: ClientCall?
    private var cancelled = false
    private var answers: CallResponses.AsyncIterator?

    init(_ start: @escaping @Sendable () async throws -> ClientCall) {
        self.start = start
    }

    func next() async throws -> ResponsePart? {
        if answers == nil {
            let opened = try await start()
            let wasCancelled = lock.withLock { () -> Bool in
                self.call = opened
                return cancelled
            }
            if wasCancelled {
                opened.cancel()
                throw WireStatus(.cancelled, "the call was cancelled by the caller")
            }
            answers = opened.responses.makeAsyncIterator()
        }
        let opened = lock.withLock { self.call }
        return try await withTaskCancellationHandler {
            try await answers?.next()
        } onCancel: {
            opened?.cancel()
        }
    }

    func cancel() {
        let call: ClientCall? = lock.withLock {
            cancelled = true
            return self.call
        }
        call?.cancel()
    }
}

extension WireClient: WireChannel {}

private func decodeResponse<Response: WireMessage>(_ bytes: ByteBuffer, _ method: MethodDescriptor) throws -> Response {
    do {
        return try Response(wireBuffer: bytes)
    } catch {
        throw WireStatus(.internal, "\(method) answered bytes that are not a \(Response.protoName): \(WireStatus.from(error).message)")
    }
}

