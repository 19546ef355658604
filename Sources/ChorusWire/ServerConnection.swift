import Logging
import NIOCore
import Synchronization

/// Frames to calls for one accepted connection. All stream state lives on the channel's event loop;
/// handlers run as Swift tasks and reach back through `sendMessage` and `finish`.
final class ServerConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private struct Stream {
        var task: Task<Void, Never>?
        /// nil for a call relayed on the loop (LoopRelay): its one request was handed over at once.
        var requests: AsyncThrowingStream<ByteBuffer, Error>.Continuation?
        /// A loop relay's way to stop its work when the call ends unanswered.
        var onCancel: ((WireStatus) -> Void)?
        var deadlineTimer: Scheduled<Void>?
        let takesOneRequest: Bool
        var delivered = 0
        /// Request bytes delivered but not yet read by the handler.
        var bufferedBytes = 0
    }

    private let server: WireServer
    private var limits: WireServer.Limits { server.configuration.limits }
    /// Set when the server is over its connection limit: the connection is told so and closed.
    var refusal: WireStatus?
    private var bufferedBytes = 0
    /// Reading pauses while the peer does not read our answers or its requests wait unread.
    private var reading = true
    private let channel: Channel
    private var context: ChannelHandlerContext?
    private let writer: FrameWriter
    private var streams: [UInt64: Stream] = [:]
    private var draining = false
    private let remoteAddress: String
    /// Where relaying handlers run (ServerRoute.relaysOnly); made on first use.
    private var relayExecutor: EventLoopExecutor?

    /// Streams open on a connection (this one included) up to which relays run on its event loop.
    static let relaysOnLoopUpTo = 2

    init(server: WireServer, channel: Channel) {
        self.server = server
        self.channel = channel
        writer = FrameWriter(eventLoop: channel.eventLoop)
        self.remoteAddress = channel.remoteAddress.map { "\($0)" } ?? "unknown"
    }

    var eventLoop: EventLoop { channel.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writer.attach(context)
    }

    func channelActive(context: ChannelHandlerContext) {
        if let refusal {
            server.logger.warning("refusing connection from \(remoteAddress): \(refusal.message)")
            write(Frame(streamID: 0, kind: .goaway, status: refusal))
            context.flush()
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    /// A client that does not read its answers (PONGs, streamed responses) stops being read from, so
    /// what it sends cannot pile up in our outbound buffer: TCP's own backpressure reaches it.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        updateReading()
        context.fireChannelWritabilityChanged()
    }

    /// Reads while the socket takes our writes and the handlers keep up with the requests.
    private func updateReading() {
        let wanted = channel.isWritable && bufferedBytes <= limits.maxBufferedBytesPerConnection
        guard wanted != reading else { return }
        reading = wanted
        channel.setOption(ChannelOptions.autoRead, value: wanted).whenFailure { _ in }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, streams.isEmpty {
            let seconds = (limits.idleTimeout?.nanoseconds ?? 0) / 1_000_000_000
            server.logger.debug("closing connection from \(remoteAddress): idle for \(seconds) s")
            write(Frame(streamID: 0, kind: .goaway, status: WireStatus(.unavailable, "connection idle for \(seconds) s without a PING; reconnect")))
            context.flush()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        writer.detach()
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refusal == nil else { return }
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .open: open(frame)
        case .message:
            deliver(frame.streamID, frame.payload ?? ByteBuffer())
            if frame.endOfStream { halfClose(frame.streamID) }
        case .halfClose: halfClose(frame.streamID)
        case .cancel: cancel(frame.streamID, with: CancellationError())
        case .ping: write(Frame(streamID: 0, kind: .pong, payload: frame.payload))
        case .pong, .goaway, .close: break  // nothing for a server to do; CLOSE from a client is ignored
        case .unknown(let kind):
            let status = WireStatus(.unimplemented, "unknown frame kind \(kind) on stream \(frame.streamID)")
            if streams[frame.streamID] != nil {
                fail(frame.streamID, status)
            } else {
                write(Frame(streamID: frame.streamID, kind: .close, status: status))
            }
        }
    }

    private func open(_ frame: Frame) {
        let id = frame.streamID
        if draining {
            write(Frame(streamID: id, kind: .close, status: WireStatus(.unavailable, "server is shutting down; retry on another connection")))
            return
        }
        guard streams[id] == nil else {
            fail(id, WireStatus(.invalidArgument, "stream \(id) is already open on this connection"))
            return
        }
        guard streams.count < limits.maxStreamsPerConnection else {
            server.stats.recordRefused()
            write(Frame(streamID: id, kind: .close, status: WireStatus(.resourceExhausted, "\(streams.count) streams are open on this connection, the limit; finish some first")))
            return
        }
        guard let route = server.route(for: frame.method) else {
            server.stats.recordRefused()
            write(Frame(streamID: id, kind: .close, status: WireStatus(.unimplemented, "unknown method \(frame.method)")))
            return
        }
        let deadline: NIODeadline? = frame.deadlineMs > 0 ? .now() + .milliseconds(Int64(frame.deadlineMs)) : nil
        var stream = Stream(task: nil, requests: nil, takesOneRequest: route.takesOneRequest)
        if let deadline {
            let ms = frame.deadlineMs
            stream.deadlineTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
                fail(id, WireStatus(.deadlineExceeded, "deadline of \(ms) ms exceeded for \(frame.method)"))
            }
        }
        streams[id] = stream
        server.stats.recordStarted()
        let requestID = frame.metadata["request-id"].map { String($0.prefix(64)) } ?? RequestNote.newID()

        if let relay = route.loopRelay, frame.endOfStream, let payload = frame.payload {
            var metadata = frame.metadata
            metadata["request-id"] = requestID
            let call = LoopCall(connection: self, streamID: id, method: frame.method, deadline: deadline,
                                metadata: metadata, request: payload)
            if relay(call) { return }
        }

        let (requests, continuation) = AsyncThrowingStream<ByteBuffer, Error>.makeStream()
        streams[id]?.requests = continuation
        let callContext = CallContext(method: frame.method, streamID: id, deadline: deadline, metadata: frame.metadata,
                                      remoteAddress: remoteAddress, logger: server.logger)
        let loop = eventLoop
        let payloads = RequestPayloads(base: requests) { [self] count in
            loop.executeSoon { self.consumed(id, count) }
        }
        let call = ServerCall(context: callContext, requests: payloads, connection: self)

        let handler = route.handler
        if let payload = frame.payload { deliver(id, payload) }
        if frame.endOfStream { streams[id]?.requests?.finish() }
        guard streams[id] != nil else { return }  // the first payload alone was over the process's budget
        let note = "request \(requestID) \(frame.method.prefix(100))"
        // A relay runs on this loop while the connection is nearly idle (the latency of one call is thread
        // hand-offs); with more calls in flight, Swift's pool spreads them over every core instead.
        let onLoop = route.relaysOnly && streams.count <= Self.relaysOnLoopUpTo
        let executor: EventLoopExecutor? = onLoop ? relayExecutor ?? EventLoopExecutor(eventLoop) : nil
        relayExecutor = relayExecutor ?? executor
        streams[id]!.task = Task(executorPreference: executor) {
            do {
                let payload = try await RequestNote.$requestID.withValue(requestID) {
                    try await RequestNote.$current.withValue(note) {
                        // Health probes come every half second: noting them would hide the request that crashed.
                        if !frame.method.hasSuffix("/Health") { RequestNote.noteThread(note) }
                        return try await handler(call)
                    }
                }
                self.finish(id, status: WireStatus(.ok, ""), payload: payload)
            } catch {
                self.finish(id, status: WireStatus.from(error), payload: nil)
            }
        }
    }

    /// Hands a request message to the stream's handler. A client that sends faster than its handler
    /// reads stops being read from (updateReading); a second message to a unary method, or one past
    /// the process's budget, fails the stream.
    private func deliver(_ id: UInt64, _ payload: ByteBuffer) {
        guard var stream = streams[id] else { return }  // late message for a stream that already ended
        guard stream.requests != nil else { return }  // a relayed call's caller said its one request was all
        let count = payload.readableBytes
        if stream.takesOneRequest && stream.delivered >= 1 {
            fail(id, WireStatus(.invalidArgument, "this method takes one request message; a second arrived"))
            return
        }
        let total = server.bufferedBytes.add(count, ordering: .relaxed).newValue
        if total > limits.maxBufferedBytes {
            server.bufferedBytes.subtract(count, ordering: .relaxed)
            fail(id, WireStatus(.resourceExhausted, "the server has \(total - count) request bytes waiting for handlers; this message would pass its limit of \(limits.maxBufferedBytes)"))
            return
        }
        bufferedBytes += count
        stream.delivered += 1
        stream.bufferedBytes += count
        streams[id] = stream
        stream.requests?.yield(payload)
        updateReading()
    }

    /// The handler has read a message: its bytes leave the budgets.
    private func consumed(_ id: UInt64, _ count: Int) {
        guard streams[id] != nil else { return }  // released with the stream already
        streams[id]!.bufferedBytes -= count
        bufferedBytes -= count
        server.bufferedBytes.subtract(count, ordering: .relaxed)
        updateReading()
    }

    /// A stream has ended: what its handler never read leaves the budgets.
    private func release(_ stream: Stream) {
        bufferedBytes -= stream.bufferedBytes
        server.bufferedBytes.subtract(stream.bufferedBytes, ordering: .relaxed)
        updateReading()
    }

    private func halfClose(_ id: UInt64) {
        streams[id]?.requests?.finish()
    }

    /// Ends a stream the handler has not finished: cancels the handler's task and tells the caller why.
    private func fail(_ id: UInt64, _ status: WireStatus) {
        guard streams[id] != nil else { return }
        cancel(id, with: status)
        write(Frame(streamID: id, kind: .close, status: status))
    }

    private func cancel(_ id: UInt64, with error: Error) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        release(stream)
        stream.deadlineTimer?.cancel()
        stream.requests?.finish(throwing: error)
        stream.task?.cancel()
        stream.onCancel?(WireStatus.from(error))
        server.stats.recordFinished(failed: true)
        closeIfDrained()
    }

    // MARK: from handler tasks

    func sendMessage(streamID id: UInt64, payload: ByteBuffer) async throws {
        let buffer = try Frame(streamID: id, kind: .message, payload: payload)
            .encode(allocator: channel.allocator, maxFrameSize: server.configuration.maxFrameSize)
        // While the socket keeps up, hand the frame over without waiting (one hop instead of two);
        // once it is not writable, wait for the write so a slow reader slows the handler down.
        if channel.isWritable {
            // executeSoon, as finish does: a relay on the loop writes its last message before its CLOSE.
            eventLoop.executeSoon { [self] in
                if streams[id] != nil { writeEncoded(buffer, promise: nil) }
            }
            if Task.isCancelled { throw WireStatus(.cancelled, "stream \(id) has ended") }
            return
        }
        try await eventLoop.flatSubmit { [self] () -> EventLoopFuture<Void> in
            guard streams[id] != nil else {
                return eventLoop.makeFailedFuture(WireStatus(.cancelled, "stream \(id) has ended"))
            }
            let promise = eventLoop.makePromise(of: Void.self)
            writeEncoded(buffer, promise: promise)
            return promise.futureResult
        }.get()
    }

    /// On the loop: what a loop relay runs when its call ends unanswered.
    func setOnCancel(_ id: UInt64, _ body: @escaping (WireStatus) -> Void) {
        streams[id]?.onCancel = body
    }

    /// On the loop: a loop relay's MESSAGE to its caller. One over the frame limit ends the call instead.
    func sendOnLoop(streamID id: UInt64, payload: ByteBuffer) {
        guard streams[id] != nil else { return }
        do {
            let buffer = try Frame(streamID: id, kind: .message, payload: payload)
                .encode(allocator: channel.allocator, maxFrameSize: server.configuration.maxFrameSize)
            writeEncoded(buffer, promise: nil)
        } catch {
            fail(id, WireStatus.from(error))
        }
    }

    func finish(_ id: UInt64, status: WireStatus, payload: ByteBuffer?) {
        var frame = Frame(streamID: id, kind: .close, payload: payload, status: status)
        var encoded: EncodedFrame
        do {
            encoded = try frame.encode(allocator: channel.allocator, maxFrameSize: server.configuration.maxFrameSize)
        } catch {
            // The answer itself is too large for the wire: the caller learns that instead.
            frame = Frame(streamID: id, kind: .close, status: WireStatus.from(error))
            encoded = try! frame.encode(allocator: channel.allocator, maxFrameSize: .max)
        }
        let failed = frame.statusCode != 0
        if failed && frame.statusCode != StatusCode.cancelled.rawValue {
            server.logger.debug("call failed", metadata: ["stream": "\(id)", "status": "\(frame.status)"])
        }
        let answer = encoded
        eventLoop.executeSoon { [self] in
            guard let stream = streams.removeValue(forKey: id) else { return }
            release(stream)
            stream.deadlineTimer?.cancel()
            stream.requests?.finish()
            server.stats.recordFinished(failed: failed)
            writeEncoded(answer, promise: nil)
            closeIfDrained()
        }
    }

    // MARK: writing

    private func write(_ frame: Frame) {
        writer.write(frame)
    }

    private func writeEncoded(_ buffer: EncodedFrame, promise: EventLoopPromise<Void>?) {
        writer.write(buffer, promise: promise, whenClosed: WireStatus(.unavailable, "connection closed"))
    }

    // MARK: lifecycle

    /// Sends GOAWAY: no new streams here; the connection closes once the open ones finish.
    func startDraining() {
        guard !draining else { return }
        draining = true
        write(Frame(streamID: 0, kind: .goaway))
        closeIfDrained()
    }

    private func closeIfDrained() {
        if draining && streams.isEmpty, let context {
            context.flush()
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Decoder errors (oversized or malformed frames) end the connection: framing is lost after them.
        if let status = error as? WireStatus {
            server.logger.warning("closing connection from \(remoteAddress): \(status)")
            write(Frame(streamID: 0, kind: .goaway, status: status))
            context.flush()
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        for id in Array(streams.keys) {
            cancel(id, with: WireStatus(.unavailable, "connection closed"))
        }
        server.connectionClosed(self)
        context.fireChannelInactive()
    }
}

extension ServerConnection {
    func closeNow() {
        context?.close(promise: nil)
    }
}
