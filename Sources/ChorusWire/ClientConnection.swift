import NIOCore
import Synchronization

/// Streams of one client connection. All state lives on the channel's event loop.
final class ClientConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private struct Stream {
        /// Where the answers go: a task's response stream, or a relay's handler on this loop.
        enum Sink {
            case stream(AsyncThrowingStream<ResponsePart, Error>.Continuation, ResponseBudget)
            case loop((LoopAnswer) -> Void)
        }

        let sink: Sink
        var deadlineTimer: Scheduled<Void>?

        func message(_ payload: ByteBuffer) {
            switch sink {
            case .stream(let responses, let budget):
                budget.arrived(payload.readableBytes)
                responses.yield(ResponsePart(payload: payload, isFinal: false))
            case .loop(let answer):
                answer(.message(payload))
            }
        }

        /// Ends the answers: normally when `status` is nil, with the CLOSE frame's payload if it had one.
        func finish(_ status: WireStatus?, payload: ByteBuffer? = nil) {
            switch sink {
            case .stream(let responses, let budget):
                if let payload {
                    budget.arrived(payload.readableBytes)
                    responses.yield(ResponsePart(payload: payload, isFinal: true))
                }
                if let status { responses.finish(throwing: status) } else { responses.finish() }
            case .loop(let answer):
                answer(.end(payload: status == nil ? payload : nil, status: status ?? WireStatus(.ok, "")))
            }
        }
    }

    let channel: Channel
    let address: String
    let maxFrameSize: Int
    /// Past this many answer bytes arrived and unread, the connection stops reading (at least one frame
    /// is always taken, whatever its size).
    let maxBufferedBytes: Int
    /// Answer bytes arrived and not yet read; read and written from any thread.
    private let bufferedBytes = Atomic<Int>(0)
    /// Set (on the event loop) while reading is paused; a reader that sees it hops there to resume.
    private let paused = Atomic<Bool>(false)
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

    init(channel: Channel, address: String, maxFrameSize: Int, maxBufferedBytes: Int,
         onClose: @escaping @Sendable (ClientConnection) -> Void) {
        self.channel = channel
        writer = FrameWriter(eventLoop: channel.eventLoop)
        self.address = address
        self.maxFrameSize = maxFrameSize
        self.maxBufferedBytes = maxBufferedBytes
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
    func open(method: String, options: CallOptions, first: ByteBuffer?, endOfStream: Bool) throws -> ClientCall {
        let id = streamIDs.add(2, ordering: .relaxed).oldValue
        let deadlineMs = options.deadlineMilliseconds
        var metadata = options.metadata
        if metadata["request-id"] == nil, let requestID = RequestNote.requestID { metadata["request-id"] = requestID }
        let frame = Frame(streamID: id, kind: .open, method: method, deadlineMs: deadlineMs, metadata: metadata,
                          payload: first, endOfStream: endOfStream)
        let encoded = try frame.encode(allocator: channel.allocator, maxFrameSize: maxFrameSize)
        let (responses, continuation) = AsyncThrowingStream<ResponsePart, Error>.makeStream()
        let budget = ResponseBudget(connection: self)
        eventLoop.executeSoon { [self] in
            guard !isClosed, context != nil else {
                continuation.finish(throwing: WireStatus(.unavailable, "connection to \(address) closed before \(method) was sent"))
                return
            }
            register(id, .stream(continuation, budget), method: method, deadline: options.deadline, deadlineMs: deadlineMs)
            writeEncoded(encoded, promise: nil)
        }
        return ClientCall(streamID: id, connection: self, responses: CallResponses(responses, budget: budget))
    }

    /// Opens a stream from this connection's event loop, its answers told to `answer` there as they arrive:
    /// a relay on the loop pays no task and no stream. Throws when the frame cannot be sent (over the frame
    /// limit, the connection closed); otherwise `answer` hears the end exactly once.
    func openOnLoop(method: String, options: CallOptions, first: ByteBuffer?, endOfStream: Bool,
                    answer: @escaping (LoopAnswer) -> Void) throws -> UInt64 {
        eventLoop.preconditionInEventLoop()
        let id = streamIDs.add(2, ordering: .relaxed).oldValue
        let deadlineMs = options.deadlineMilliseconds
        let frame = Frame(streamID: id, kind: .open, method: method, deadlineMs: deadlineMs, metadata: options.metadata,
                          payload: first, endOfStream: endOfStream)
        let encoded = try frame.encode(allocator: channel.allocator, maxFrameSize: maxFrameSize)
        guard !isClosed, context != nil else {
            throw WireStatus(.unavailable, "connection to \(address) closed before \(method) was sent")
        }
        register(id, .loop(answer), method: method, deadline: options.deadline, deadlineMs: deadlineMs)
        writeEncoded(encoded, promise: nil)
        return id
    }

    /// On the event loop: the stream's entry, with the timer that ends it at its deadline.
    private func register(_ id: UInt64, _ sink: Stream.Sink, method: String, deadline: NIODeadline?, deadlineMs: UInt32) {
        var stream = Stream(sink: sink)
        if let deadline {
            stream.deadlineTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
                guard streams[id] != nil else { return }
                write(Frame(streamID: id, kind: .cancel))
                end(id, WireStatus(.deadlineExceeded, "deadline of \(deadlineMs) ms exceeded calling \(method) on \(address)"))
            }
        }
        streams[id] = stream
    }

    func send(streamID id: UInt64, payload: ByteBuffer, endOfStream: Bool) async throws {
        try await writeFromTask(Frame(streamID: id, kind: .message, payload: payload, endOfStream: endOfStream), streamID: id)
    }

    func halfClose(streamID id: UInt64) async throws {
        try await writeFromTask(Frame(streamID: id, kind: .halfClose), streamID: id)
    }

    /// Tells the server to stop the work; the call's response stream fails with CANCELLED.
    func cancel(streamID id: UInt64) {
        eventLoop.execute { [self] in cancelOnLoop(id) }
    }

    /// `cancel` from the event loop itself.
    func cancelOnLoop(_ id: UInt64) {
        guard streams[id] != nil else { return }
        write(Frame(streamID: id, kind: .cancel))
        end(id, WireStatus(.cancelled, "the call was cancelled by the caller"))
    }

    /// Round trip of a PING frame.
    func ping(timeout: TimeAmount) async throws -> TimeAmount {
        let start = NIODeadline.now()
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { [self] in
            let id = nextPing
            nextPing += 1
            pings[id] = promise
            var payload = channel.allocator.buffer(capacity: 8)
            payload.writeInteger(id)
            write(Frame(streamID: 0, kind: .ping, payload: payload))
            eventLoop.scheduleTask(in: timeout) { [self] in
                pings.removeValue(forKey: id)?.fail(WireStatus(.unavailable, "no PONG from \(address) within \(timeout.nanoseconds / 1_000_000) ms"))
            }
        }
        try await promise.futureResult.get()
        return .now() - start
    }

    private func writeFromTask(_ frame: Frame, streamID id: UInt64) async throws {
        let buffer = try frame.encode(allocator: channel.allocator, maxFrameSize: maxFrameSize)
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
            // Copied out first: a relay's handler may open or end streams while it hears the message.
            guard let stream = streams[frame.streamID] else { return }
            stream.message(frame.payload ?? ByteBuffer())
        case .close:
            end(frame.streamID, frame.statusCode == 0 ? nil : frame.status, payload: frame.payload)
        case .ping:
            write(Frame(streamID: 0, kind: .pong, payload: frame.payload))
        case .pong:
            guard let payload = frame.payload, payload.readableBytes == 8,
                  let id = payload.getInteger(at: payload.readerIndex, as: UInt64.self) else { return }
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

    /// On the event loop: answer bytes arrived (positive) or were read or dropped (negative). Reading stops
    /// while more than `maxBufferedBytes` wait, so a slow reader slows the server (TCP's window fills and
    /// its writes wait) instead of growing this process.
    func arrived(_ count: Int) {
        let total = bufferedBytes.add(count, ordering: .relaxed).newValue
        if total > maxBufferedBytes && !paused.load(ordering: .relaxed) && !isClosed {
            paused.store(true, ordering: .sequentiallyConsistent)
            channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            // A reader may have read everything between the add and the store: look again.
            if bufferedBytes.load(ordering: .sequentiallyConsistent) <= maxBufferedBytes { resume() }
        }
    }

    /// From any thread: answer bytes were read (or dropped unread). Only when reading is paused does this
    /// cost a hop to the event loop, so a caller reading as answers come pays nothing per answer.
    func consumed(_ count: Int) {
        let total = bufferedBytes.subtract(count, ordering: .sequentiallyConsistent).newValue
        guard total <= maxBufferedBytes, paused.load(ordering: .sequentiallyConsistent) else { return }
        eventLoop.executeSoon { [self] in
            if bufferedBytes.load(ordering: .relaxed) <= maxBufferedBytes { resume() }
        }
    }

    /// On the event loop: reads again.
    private func resume() {
        guard paused.load(ordering: .relaxed), !isClosed else { return }
        paused.store(false, ordering: .sequentiallyConsistent)
        channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        channel.read()
    }

    /// Finishes a stream's response sequence: normally when `status` is nil.
    private func end(_ id: UInt64, _ status: WireStatus?, payload: ByteBuffer? = nil) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        stream.deadlineTimer?.cancel()
        stream.finish(status, payload: payload)
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

    private func writeEncoded(_ buffer: EncodedFrame, promise: EventLoopPromise<Void>?) {
        writer.write(buffer, promise: promise, whenClosed: WireStatus(.unavailable, "connection to \(address) is closed"))
    }

    func close() {
        eventLoop.execute { self.context?.close(promise: nil) }
    }
}

/// A call in progress on the client side, at the level of payload bytes.
public final class ClientCall: Sendable {
    /// Answers in order; finishes on CLOSE with OK, throws `WireStatus` otherwise.
    public let responses: CallResponses
    private let sendMessage: @Sendable (ByteBuffer, Bool) async throws -> Void
    private let closeSending: @Sendable () async throws -> Void
    private let cancelCall: @Sendable () -> Void

    /// A call on one connection's stream.
    init(streamID: UInt64, connection: ClientConnection, responses: CallResponses) {
        self.responses = responses
        sendMessage = { try await connection.send(streamID: streamID, payload: $0, endOfStream: $1) }
        closeSending = { try await connection.halfClose(streamID: streamID) }
        cancelCall = { connection.cancel(streamID: streamID) }
    }

    /// A call that stands for another, as a router hands one out: its answers are `responses`, and
    /// sending, half-closing and cancelling go to the functions given.
    public init(responses: CallResponses,
                send: @escaping @Sendable (ByteBuffer, Bool) async throws -> Void,
                halfClose: @escaping @Sendable () async throws -> Void,
                cancel: @escaping @Sendable () -> Void) {
        self.responses = responses
        sendMessage = send
        closeSending = halfClose
        cancelCall = cancel
    }

    public func send(_ payload: ByteBuffer, endOfStream: Bool = false) async throws {
        try await sendMessage(payload, endOfStream)
    }

    public func send(_ bytes: [UInt8], endOfStream: Bool = false) async throws {
        try await sendMessage(ByteBuffer(bytes: bytes), endOfStream)
    }

    public func halfClose() async throws {
        try await closeSending()
    }

    public func cancel() {
        cancelCall()
    }
}
