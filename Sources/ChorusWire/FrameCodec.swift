import NIOCore

/// The default frame-size limit of DESIGN.md.
public let defaultMaxFrameSize = 64 << 20

/// Bytes to frames. The length prefix is checked against the limit before the body is buffered,
/// so a 4 GiB prefix costs four bytes of memory and a clear RESOURCE_EXHAUSTED, not an allocation.
/// Once a frame's length is known and allowed, the buffer is grown to hold all of it at once, so a
/// 16 MiB frame is read into one buffer instead of one that doubles (and copies) its way there; the
/// frame's payload is a slice of that buffer (Frame.decode).
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Frame
    public let maxFrameSize: Int

    public init(maxFrameSize: Int = defaultMaxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameSize else {
            throw WireStatus(.resourceExhausted, "frame of \(length) bytes exceeds the limit of \(maxFrameSize) bytes")
        }
        let frameBytes = 4 + Int(length)  // checked: length ≤ maxFrameSize
        guard buffer.readableBytes >= frameBytes else {
            if frameBytes > 64 << 10 { buffer.reserveCapacity(minimumWritableBytes: frameBytes - buffer.readableBytes) }
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(try Frame.decode(body)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut off by the peer closing is dropped: its stream fails with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
