import Logging
import NIOCore

/// Frames to calls for one accepted connection. All stream state lives on the channel's event loop;
/// handlers run as Swift tasks and reach back through `sendMessage` and `finish`.
final class ServerConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private struct Stream {
        var task: Task<Void, Never>?
        let requests: AsyncThrowingStream<[UInt8], Error>.Continuation
        var deadlineTimer: Scheduled<Void>?
        var bufferedRequests = 0
    }

    /// A client that streams faster than its handler reads is stopped here rather than filling memory.
    static let maxBufferedRequests = 1024

    private let server: WireServer
    private let channel: Channel
    private var context: ChannelHandlerContext?
    private var streams: [UInt64: Stream] = [:]
    private var draining = false
    private var flushPending = false
    private let remoteAddress: String

    init(server: WireServer, channel: Channel) {
        self.server = server
        self.channel = channel
        self.remoteAddress = channel.remoteAddress.map { "\($0)" } ?? "unknown"
    }

    var eventLoop: EventLoop { channel.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .open: open(frame)
        case .message:
            deliver(frame.streamID, frame.payload ?? [])
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
        guard let handler = server.handler(for: frame.method) else {
            server.stats.recordRefused()
            write(Frame(streamID: id, kind: .close, status: WireStatus(.unimplemented, "unknown method \(frame.method)")))
            return
        }
        let (requests, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        if let payload = frame.payload { continuation.yield(payload) }
        if frame.endOfStream { continuation.finish() }

        let deadline: NIODeadline? = frame.deadlineMs > 0 ? .now() + .milliseconds(Int64(frame.deadlineMs)) : nil
        var logger = server.logger
        logger[metadataKey: "method"] = "\(frame.method)"
        if let requestID = frame.metadata["request-id"] { logger[metadataKey: "request-id"] = "\(requestID)" }
        let callContext = CallContext(method: frame.method, streamID: id, deadline: deadline, metadata: frame.metadata,
                                      remoteAddress: remoteAddress, logger: logger)
        let call = ServerCall(context: callContext, requests: requests, connection: self)

        var stream = Stream(task: nil, requests: continuation)
        if let deadline {
            let ms = frame.deadlineMs
            stream.deadlineTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
                fail(id, WireStatus(.deadlineExceeded, "deadline of \(ms) ms exceeded for \(frame.method)"))
            }
        }
        streams[id] = stream
        server.stats.recordStarted()
        streams[id]!.task = Task {
            do {
                let payload = try await handler(call)
                self.finish(id, status: WireStatus(.ok, ""), payload: payload)
            } catch {
                self.finish(id, status: WireStatus.from(error), payload: nil)
            }
        }
    }

    private func deliver(_ id: UInt64, _ payload: [UInt8]) {
        guard streams[id] != nil else { return }  // late message for a stream that already ended
        streams[id]!.bufferedRequests += 1
        if streams[id]!.bufferedRequests > Self.maxBufferedRequests {
            fail(id, WireStatus(.resourceExhausted, "more than \(Self.maxBufferedRequests) request messages waiting for the handler"))
            return
        }
        streams[id]!.requests.yield(payload)
    }

    private func halfClose(_ id: UInt64) {
        streams[id]?.requests.finish()
    }

    /// Ends a stream the handler has not finished: cancels the handler's task and tells the caller why.
    private func fail(_ id: UInt64, _ status: WireStatus) {
        guard streams[id] != nil else { return }
        cancel(id, with: status)
        write(Frame(streamID: id, kind: .close, status: status))
    }

    private func cancel(_ id: UInt64, with error: Error) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        stream.deadlineTimer?.cancel()
        stream.requests.finish(throwing: error)
        stream.task?.cancel()
        server.stats.recordFinished(failed: true)
        closeIfDrained()
    }

    // MARK: from handler tasks

    func sendMessage(streamID id: UInt64, payload: [UInt8]) async throws {
        let buffer = try Frame(streamID: id, kind: .message, payload: payload)
            .encoded(allocator: channel.allocator, maxFrameSize: server.configuration.maxFrameSize)
        // While the socket keeps up, hand the frame over without waiting (one hop instead of two);
        // once it is not writable, wait for the write so a slow reader slows the handler down.
        if channel.isWritable {
            eventLoop.execute { [self] in
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

    func finish(_ id: UInt64, status: WireStatus, payload: [UInt8]?) {
        var frame = Frame(streamID: id, kind: .close, payload: payload, status: status)
        var encoded: ByteBuffer
        do {
            encoded = try frame.encoded(allocator: channel.allocator, maxFrameSize: server.configuration.maxFrameSize)
        } catch {
            // The answer itself is too large for the wire: the caller learns that instead.
            frame = Frame(streamID: id, kind: .close, status: WireStatus.from(error))
            encoded = try! frame.encoded(allocator: channel.allocator, maxFrameSize: .max)
        }
        let failed = frame.statusCode != 0
        if failed && frame.statusCode != StatusCode.cancelled.rawValue {
            server.logger.debug("call failed", metadata: ["stream": "\(id)", "status": "\(frame.status)"])
        }
        eventLoop.execute { [self] in
            guard let stream = streams.removeValue(forKey: id) else { return }
            stream.deadlineTimer?.cancel()
            stream.requests.finish()
            server.stats.recordFinished(failed: failed)
            writeEncoded(encoded, promise: nil)
            closeIfDrained()
        }
    }

    // MARK: writing

    private func write(_ frame: Frame) {
        guard let encoded = try? frame.encoded(allocator: channel.allocator, maxFrameSize: .max) else { return }
        writeEncoded(encoded, promise: nil)
    }

    /// Writes are flushed once per event-loop tick, so a burst of answers costs one syscall.
    private func writeEncoded(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(WireStatus(.unavailable, "connection closed"))
            return
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
        if !flushPending {
            flushPending = true
            eventLoop.execute { [self] in
                flushPending = false
                self.context?.flush()
            }
        }
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
