import CWireFrame
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
            #expect(try Frame.decode(buffer).payloadBytes == payload)
        }
    }

    /// A large payload is written as the caller's own buffer and read back as a slice of the buffer the
    /// frame arrived in; a small one is copied into the frame (and out of it, so that it does not keep a
    /// large read buffer alive).
    @Test(arguments: [100, 64 << 10])
    func largePayloadsAreSharedNotCopied(size: Int) throws {
        let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let frame = Frame(streamID: 9, kind: .message, payload: payload, endOfStream: true)
        let encoded = try frame.encode(allocator: ByteBufferAllocator(), maxFrameSize: 1 << 20)
        let large = size > 16 << 10
        #expect((encoded.payload != nil) == large)
        if let written = encoded.payload {
            #expect(address(written) == address(payload), "the frame writes the payload's own bytes")
        }
        var body = encoded.contiguous
        body.moveReaderIndex(forwardBy: 4)
        let decoded = try Frame.decode(body)
        #expect(decoded == frame)
        let offset = body.readableBytes - size - 2  // end_of_stream (2 bytes) follows the payload
        #expect((address(decoded.payload!) == address(body) + offset) == large)
    }

    /// The bytes are those of one protobuf-c pack of the whole frame (fields in number order), though
    /// the payload is written around protobuf-c rather than through it.
    @Test func encodingMatchesProtobufCPackingTheWholeFrame() throws {
        let payload = (0..<(40 << 10)).map { UInt8(truncatingIfNeeded: $0) }
        let frame = Frame(streamID: 300, kind: .close, method: "/m", deadlineMs: 5, payload: payload, endOfStream: true,
                          status: WireStatus(.resourceExhausted, "over"))
        var ours = try frame.encoded(allocator: ByteBufferAllocator(), maxFrameSize: 1 << 20)
        ours.moveReaderIndex(forwardBy: 4)
        var c = Chorus__Wire__Frame()
        chorus__wire__frame__init(&c)
        c.stream_id = 300
        c.kind = CHORUS__WIRE__FRAME_KIND__CLOSE
        c.deadline_ms = 5
        c.has_payload = 1
        c.end_of_stream = 1
        c.status_code = StatusCode.resourceExhausted.rawValue
        let reference: [UInt8] = "/m".withCString { m in
            "over".withCString { s in
                payload.withUnsafeBufferPointer { p in
                    c.method = UnsafeMutablePointer(mutating: m)
                    c.status_message = UnsafeMutablePointer(mutating: s)
                    c.payload = ProtobufCBinaryData(len: p.count, data: UnsafeMutablePointer(mutating: p.baseAddress))
                    var out = [UInt8](repeating: 0, count: chorus__wire__frame__get_packed_size(&c))
                    _ = out.withUnsafeMutableBufferPointer { chorus__wire__frame__pack(&c, $0.baseAddress!) }
                    return out
                }
            }
        }
        #expect(Array(ours.readableBytesView) == reference)
    }

    /// Protobuf lets fields come in any order and a repeated singular field's last value win; the payload
    /// walk must agree with protobuf-c on both.
    @Test func payloadFieldMayComeAnywhereAndTheLastOneWins() throws {
        let big = [UInt8](repeating: 0xAB, count: 20_000)
        var body = ByteBuffer()
        func field7(_ bytes: [UInt8]) {
            body.writeInteger(UInt8(0x3A))
            var n = bytes.count
            while n >= 0x80 { body.writeInteger(UInt8(n & 0x7F | 0x80)); n >>= 7 }
            body.writeInteger(UInt8(n))
            body.writeBytes(bytes)
        }
        field7([1, 2, 3])
        body.writeBytes([0x08, 0x05])  // stream_id 5
        field7(big)
        body.writeBytes([0x10, 0x02, 0x30, 0x01])  // kind MESSAGE, has_payload
        let frame = try Frame.decode(body)
        #expect(frame.streamID == 5 && frame.kind == .message)
        #expect(frame.payloadBytes == big)
        // A field whose length runs past the end is malformed, as protobuf-c also says.
        var cut = ByteBuffer(bytes: [0x08, 0x05, 0x3A, 0x10, 0x01])
        #expect(throws: WireStatus.self) { try Frame.decode(cut) }
        cut.clear()
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
        #expect(try channel.readInbound(as: Frame.self)?.payloadBytes == [1, 2, 3, 4])
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

private func address(_ buffer: ByteBuffer) -> Int {
    buffer.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
}
