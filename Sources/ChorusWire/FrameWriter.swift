import NIOCore

/// How a connection writes frames: each goes out as it is made, and they are flushed once per
/// event-loop tick, so a burst of answers (or of a client's calls) costs one syscall. Server and client
/// connections both write through one of these; it lives on the channel's event loop.
final class FrameWriter {
    private let eventLoop: EventLoop
    private var context: ChannelHandlerContext?
    private var flushPending = false

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func attach(_ context: ChannelHandlerContext) {
        self.context = context
    }

    func detach() {
        context = nil
    }

    /// Encodes and writes a frame the connection made itself (CLOSE, GOAWAY, PONG, CANCEL): those fit
    /// any frame limit by construction.
    func write(_ frame: Frame) {
        guard let context, let encoded = try? frame.encode(allocator: context.channel.allocator, maxFrameSize: .max) else { return }
        write(encoded, promise: nil, whenClosed: WireStatus(.unavailable, "connection closed"))
    }

    /// Writes an encoded frame, its pieces in turn (the flush hands them to the socket in one vectored
    /// write); `promise` completes with the last piece, and fails with `closed` when the connection is gone.
    func write(_ frame: EncodedFrame, promise: EventLoopPromise<Void>?, whenClosed closed: @autoclosure () -> Error) {
        guard let context else {
            promise?.fail(closed())
            return
        }
        switch (frame.payload, frame.tail) {
        case (nil, nil):
            context.write(NIOAny(frame.head), promise: promise)
        case (let payload?, nil):
            context.write(NIOAny(frame.head), promise: nil)
            context.write(NIOAny(payload), promise: promise)
        case (let payload, let tail?):
            context.write(NIOAny(frame.head), promise: nil)
            if let payload { context.write(NIOAny(payload), promise: nil) }
            context.write(NIOAny(tail), promise: promise)
        }
        if !flushPending {
            flushPending = true
            eventLoop.execute { [self] in
                flushPending = false
                self.context?.flush()
            }
        }
    }

    /// Flushes at once: what was written must leave before the connection closes.
    func flush() {
        context?.flush()
    }
}
