import NIOCore
import Synchronization

/// One message of a call's answer. `isFinal` marks the one that came in the CLOSE frame,
/// so a forwarding gateway can keep unary answers to a single frame.
public struct ResponsePart: Sendable {
    public var payload: [UInt8]
    public var isFinal: Bool
}

/// Streams of one client connection. All state lives on the channel's event loop.
final class ClientConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private struct Stream {
        let responses: AsyncThrowingStream<ResponsePart, Error>.Continuation
        var deadlineTimer: Scheduled<Void>?
    }

    let channel: Channel
    let address: String
    let maxFrameSize: Int
    private var context: ChannelHandlerContext?
    private let writer: FrameWriter
    private var streams: [UInt64: Stream] = [:]
    /// Odd ids, taken off the event loop so a call can encode its OPEN frame before hopping there.
    private let streamIDs = Atomic<UInt64>(1)
    private var pings: [UInt64: EventLoopPromise<Void>] = [:]
    private var nextPing: UInt64 = 1
    /// Set by GOAWAY: new calls go to a new connection, open ones finish here.
    private(set) var isDraining = false
    private(set) var isClosed = false
    private let onClose: @Sendable (ClientConnection) -> Void

    init(channel: Channel, address: String, maxFrameSize: Int, onClose: @escaping @Sendable (ClientConnection) -> Void) {
        self.channel = channel
        writer = FrameWriter(eventLoop: channel.eventLoop)
        self.address = address
        self.maxFrameSize = maxFrameSize
        self.onClose = onClose
    }

    var eventLoop: EventLoop { channel.eventLoop }

    /// Whether new calls may use this connection (read from any thread; a stale answer only costs a retry).
    var acceptsNewStreams: Bool { !isDraining && !isClosed && channel.isActive }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writer.attach(context)
    }

    // MARK: calls

    /// Opens a stream; `first` (already encoded) travels in the OPEN frame.
    /// The frame is encoded on the caller's thread and handed to the event loop in one hop, without waiting
    /// for the write: a unary call costs one hop there and one back, which is most of its latency on loopback.
    func open(method: String, options: CallOptions, first: [UInt8]?, endOfStream: Bool) throws -> ClientCall {
        let id = streamIDs.add(2, ordering: .relaxed).oldValue
        let deadlineMs = options.deadlineMilliseconds
        var metadata = options.metadata
        if metadata["request-id"] == nil, let requestID = RequestNote.requestID { metadata["request-id"] = requestID }
        let frame = Frame(streamID: id, kind: .open, method: method, deadlineMs: deadlineMs, metadata: metadata,
                          payload: first, endOfStream: endOfStream)
        let encoded = try frame.encoded(allocator: channel.allocator, maxFrameSize: maxFrameSize)
        let (responses, continuation) = AsyncThrowingStream<ResponsePart, Error>.makeStream()
        eventLoop.execute { [self] in
            guard !isClosed, context != nil else {
                continuation.finish(throwing: WireStatus(.unavailable, "connection to \(address) closed before \(method) was sent"))
                return
            }
            var stream = Stream(responses: continuation)
            if let deadline = options.deadline {
                stream.deadlineTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
                    guard streams[id] != nil else { return }
                    write(Frame(streamID: id, kind: .cancel))
                    end(id, WireStatus(.deadlineExceeded, "deadline of \(deadlineMs) ms exceeded calling \(method) on \(address)"))
                }
            }
            streams[id] = stream
            writeEncoded(encoded, promise: nil)
        }
        return ClientCall(streamID: id, connection: self, responses: responses)
    }

    func send(streamID id: UInt64, payload: [UInt8], endOfStream: Bool) async throws {
        try await writeFromTask(Frame(streamID: id, kind: .message, payload: payload, endOfStream: endOfStream), streamID: id)
    }

    func halfClose(streamID id: UInt64) async throws {
        try await writeFromTask(Frame(streamID: id, kind: .halfClose), streamID: id)
    }

    /// Tells the server to stop the work; the call's response stream fails with CANCELLED.
    func cancel(streamID id: UInt64) {
        eventLoop.execute { [self] in
            guard streams[id] != nil else { return }
            write(Frame(streamID: id, kind: .cancel))
            end(id, WireStatus(.cancelled, "the call was cancelled by the caller"))
        }
    }

    /// Round trip of a PING frame.
    func ping(timeout: TimeAmount) async throws -> TimeAmount {
        let start = NIODeadline.now()
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { [self] in
            let id = nextPing
            nextPing += 1
            pings[id] = promise
            var payload = [UInt8](repeating: 0, count: 8)
            withUnsafeBytes(of: id.bigEndian) { payload = Array($0) }
            write(Frame(streamID: 0, kind: .ping, payload: payload))
            eventLoop.scheduleTask(in: timeout) { [self] in
                pings.removeValue(forKey: id)?.fail(WireStatus(.unavailable, "no PONG from \(address) within \(timeout.nanoseconds / 1_000_000) ms"))
            }
        }
        try await promise.futureResult.get()
        return .now() - start
    }

    private func writeFromTask(_ frame: Frame, streamID id: UInt64) async throws {
        let buffer = try frame.encoded(allocator: channel.allocator, maxFrameSize: maxFrameSize)
        try await eventLoop.flatSubmit { [self] () -> EventLoopFuture<Void> in
            guard streams[id] != nil else {
                let status = isClosed ? WireStatus(.unavailable, "connection to \(address) closed")
                                      : WireStatus(.cancelled, "the call has ended")
                return eventLoop.makeFailedFuture(status)
            }
            let promise = eventLoop.makePromise(of: Void.self)
            writeEncoded(buffer, promise: promise)
            return promise.futureResult
        }.get()
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .message:
            streams[frame.streamID]?.responses.yield(ResponsePart(payload: frame.payload ?? [], isFinal: false))
        case .close:
            guard let stream = streams[frame.streamID] else { return }
            if let payload = frame.payload { stream.responses.yield(ResponsePart(payload: payload, isFinal: true)) }
            end(frame.streamID, frame.statusCode == 0 ? nil : frame.status)
        case .ping:
            write(Frame(streamID: 0, kind: .pong, payload: frame.payload))
        case .pong:
            guard let payload = frame.payload, payload.count == 8 else { return }
            let id = payload.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
            pings.removeValue(forKey: id)?.succeed(())
        case .goaway:
            isDraining = true
            if frame.statusCode != 0 {
                failAll(frame.status)
                context.close(promise: nil)
            }
        case .open, .halfClose, .cancel, .unknown:
            break  // servers do not open streams towards clients
        }
    }

    /// Finishes a stream's response sequence: normally when `status` is nil.
    private func end(_ id: UInt64, _ status: WireStatus?) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        stream.deadlineTimer?.cancel()
        if let status {
            stream.responses.finish(throwing: status)
        } else {
            stream.responses.finish()
        }
    }

    private func failAll(_ status: WireStatus) {
        for id in Array(streams.keys) { end(id, status) }
        for (_, promise) in pings { promise.fail(status) }
        pings = [:]
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(WireStatus(.unavailable, "connection to \(address) failed: \(WireStatus.from(error).message)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        failAll(WireStatus(.unavailable, "connection to \(address) closed"))
        onClose(self)
        context.fireChannelInactive()
    }

    // MARK: writing

    private func write(_ frame: Frame) {
        writer.write(frame)
    }

    private func writeEncoded(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        writer.write(buffer, promise: promise, whenClosed: WireStatus(.unavailable, "connection to \(address) is closed"))
    }

    func close() {
        eventLoop.execute { self.context?.close(promise: nil) }
    }
}

/// A call in progress on the client side, at the level of payload bytes.
public final class ClientCall: Sendable {
    /// Answers in order; finishes on CLOSE with OK, throws `WireStatus` otherwise.
    public let responses: AsyncThrowingStream<ResponsePart, Error>
    private let sendMessage: @Sendable ([UInt8], Bool) async throws -> Void
    private let closeSending: @Sendable () async throws -> Void
    private let cancelCall: @Sendable () -> Void

    /// A call on one connection's stream.
    init(streamID: UInt64, connection: ClientConnection, responses: AsyncThrowingStream<ResponsePart, Error>) {
        self.responses = responses
        sendMessage = { try await connection.send(streamID: streamID, payload: $0, endOfStream: $1) }
        closeSending = { try await connection.halfClose(streamID: streamID) }
        cancelCall = { connection.cancel(streamID: streamID) }
    }

    /// A call that stands for another, as a router hands one out: its answers are `responses`, and
    /// sending, half-closing and cancelling go to the functions given.
    public init(responses: AsyncThrowingStream<ResponsePart, Error>,
                send: @escaping @Sendable ([UInt8], Bool) async throws -> Void,
                halfClose: @escaping @Sendable () async throws -> Void,
                cancel: @escaping @Sendable () -> Void) {
        self.responses = responses
        sendMessage = send
        closeSending = halfClose
        cancelCall = cancel
    }

    public func send(_ payload: [UInt8], endOfStream: Bool = false) async throws {
        try await sendMessage(payload, endOfStream)
    }

    public func halfClose() async throws {
        try await closeSending()
    }

    public func cancel() {
        cancelCall()
    }
}
