import ChorusWire
import NIOCore
import NIOEmbedded
import Testing

@Suite struct FrameCodecTests {
    static let allKinds: [Frame.Kind] = [.open, .message, .halfClose, .close, .cancel, .ping, .pong, .goaway, .unknown(42)]

    @Test(arguments: allKinds)
    func everyKindRoundTrips(kind: Frame.Kind) throws {
        let frame = Frame(streamID: 7, kind: kind, method: "/chorus.speech.v1.Speech/Transcribe", deadlineMs: 1500,
                          metadata: ["request-id": "r-1", "authorization": "Bearer x"], payload: [1, 2, 3, 0, 255],
                          endOfStream: true, status: WireStatus(.resourceExhausted, "too big"))
        var buffer = try frame.encoded(allocator: ByteBufferAllocator(), maxFrameSize: defaultMaxFrameSize)
        let length = buffer.readInteger(as: UInt32.self)
        #expect(Int(length!) == buffer.readableBytes)
        #expect(try Frame.decode(buffer) == frame)
    }

    @Test func emptyPayloadIsNotNoPayload() throws {
        for payload in [nil, [UInt8]()] {
            var buffer = try Frame(streamID: 1, kind: .message, payload: payload).encoded(allocator: ByteBufferAllocator(), maxFrameSize: 1 << 20)
            buffer.moveReaderIndex(forwardBy: 4)
            #expect(try Frame.decode(buffer).payload == payload)
        }
    }

    @Test func encoderRefusesFramesOverTheLimit() throws {
        let frame = Frame(streamID: 1, kind: .message, payload: [UInt8](repeating: 9, count: 2048))
        #expect(throws: WireStatus.self) { try frame.encoded(allocator: ByteBufferAllocator(), maxFrameSize: 1024) }
        do {
            _ = try frame.encoded(allocator: ByteBufferAllocator(), maxFrameSize: 1024)
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted)
        }
    }

    private func decoderChannel(maxFrameSize: Int = 1024) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)))
        return channel
    }

    @Test func decoderWaitsForATruncatedFrame() throws {
        let channel = try decoderChannel()
        let full = try Frame(streamID: 3, kind: .message, payload: [1, 2, 3, 4]).encoded(allocator: channel.allocator, maxFrameSize: 1024)
        try channel.writeInbound(full.getSlice(at: 0, length: full.readableBytes - 2)!)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        try channel.writeInbound(full.getSlice(at: full.readableBytes - 2, length: 2)!)
        #expect(try channel.readInbound(as: Frame.self)?.payload == [1, 2, 3, 4])
        _ = try channel.finish()
    }

    @Test func decoderSplitsFramesThatArriveTogether() throws {
        let channel = try decoderChannel()
        var bytes = channel.allocator.buffer(capacity: 64)
        for id in 1...3 {
            var one = try Frame(streamID: UInt64(id), kind: .ping).encoded(allocator: channel.allocator, maxFrameSize: 1024)
            bytes.writeBuffer(&one)
        }
        try channel.writeInbound(bytes)
        let ids = (0..<3).compactMap { _ in try? channel.readInbound(as: Frame.self)?.streamID }
        #expect(ids == [1, 2, 3])
        _ = try channel.finish()
    }

    @Test func aFourGiBLengthPrefixIsRefusedWithoutAllocating() throws {
        let channel = try decoderChannel()
        var bytes = channel.allocator.buffer(capacity: 4)
        bytes.writeInteger(UInt32.max)
        #expect {
            try channel.writeInbound(bytes)
        } throws: { error in
            (error as? WireStatus)?.code == .resourceExhausted && (error as? WireStatus)?.message.contains("4294967295 bytes") == true
        }
        _ = try? channel.finish()
    }

    @Test func garbageBytesAreAMalformedFrame() throws {
        let channel = try decoderChannel()
        var bytes = channel.allocator.buffer(capacity: 16)
        bytes.writeInteger(UInt32(8))
        bytes.writeBytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect {
            try channel.writeInbound(bytes)
        } throws: { error in
            (error as? WireStatus)?.code == .invalidArgument
        }
        _ = try? channel.finish()
    }

    @Test func aLengthShorterThanTheFrameIsMalformed() throws {
        let channel = try decoderChannel()
        var frame = try Frame(streamID: 9, kind: .open, method: "/a/b").encoded(allocator: channel.allocator, maxFrameSize: 1024)
        frame.setInteger(UInt32(frame.readableBytes - 4 - 3), at: 0)  // the method string now runs past the frame
        #expect {
            try channel.writeInbound(frame)
        } throws: { error in
            (error as? WireStatus)?.code == .invalidArgument
        }
        _ = try? channel.finish()
    }
}
