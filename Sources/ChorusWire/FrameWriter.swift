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
        guard let context, let encoded = try? frame.encoded(allocator: context.channel.allocator, maxFrameSize: .max) else { return }
        write(encoded, promise: nil, whenClosed: WireStatus(.unavailable, "connection closed"))
    }

    /// Writes an encoded frame; `promise` fails with `closed` when the connection is already gone.
    func write(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?, whenClosed closed: @autoclosure () -> Error) {
        guard let context else {
            promise?.fail(closed())
            return
        }
        context.write(NIOAny(buffer), promise: promise)
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
