import CWireFrame
import Foundation
import NIOCore

/// One frame of the Chorus wire (Proto/wire.proto), as Swift sees it.
public struct Frame: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case open, message, halfClose, close, cancel, ping, pong, goaway
        /// A kind this build does not know; answered with UNIMPLEMENTED on its stream.
        case unknown(UInt32)

        init(wireValue: UInt32) {
            switch wireValue {
            case 1: self = .open
            case 2: self = .message
            case 3: self = .halfClose
            case 4: self = .close
            case 5: self = .cancel
            case 6: self = .ping
            case 7: self = .pong
            case 8: self = .goaway
            default: self = .unknown(wireValue)
            }
        }

        var wireValue: UInt32 {
            switch self {
            case .open: return 1
            case .message: return 2
            case .halfClose: return 3
            case .close: return 4
            case .cancel: return 5
            case .ping: return 6
            case .pong: return 7
            case .goaway: return 8
            case .unknown(let value): return value
            }
        }
    }

    public var streamID: UInt64
    public var kind: Kind
    public var method: String = ""
    public var deadlineMs: UInt32 = 0
    public var metadata: [String: String] = [:]
    /// nil: the frame carries no message (an empty message is an empty buffer). A large payload is a
    /// slice of the buffer the frame was read into, and is written out as it is: it is never copied
    /// on its way through a connection or the gateway.
    public var payload: ByteBuffer? = nil
    public var endOfStream: Bool = false
    public var statusCode: UInt32 = 0
    public var statusMessage: String = ""

    public init(streamID: UInt64, kind: Kind, method: String = "", deadlineMs: UInt32 = 0,
                metadata: [String: String] = [:], payload: ByteBuffer? = nil, endOfStream: Bool = false,
                status: WireStatus? = nil) {
        self.streamID = streamID
        self.kind = kind
        self.method = method
        self.deadlineMs = deadlineMs
        self.metadata = metadata
        self.payload = payload
        self.endOfStream = endOfStream
        if let status {
            self.statusCode = status.code.rawValue
            self.statusMessage = status.message
        }
    }

    /// A frame whose payload is given as bytes (tests, diagnostics).
    public init(streamID: UInt64, kind: Kind, method: String = "", deadlineMs: UInt32 = 0,
                metadata: [String: String] = [:], payload bytes: [UInt8]?, endOfStream: Bool = false,
                status: WireStatus? = nil) {
        self.init(streamID: streamID, kind: kind, method: method, deadlineMs: deadlineMs, metadata: metadata,
                  payload: bytes.map { ByteBuffer(bytes: $0) }, endOfStream: endOfStream, status: status)
    }

    public var status: WireStatus {
        WireStatus(StatusCode(wireValue: statusCode), statusMessage)
    }

    /// The payload's bytes as an array (tests, diagnostics).
    public var payloadBytes: [UInt8]? {
        payload.map { Array($0.readableBytesView) }
    }
}

// MARK: - protobuf-c encoding

/// A frame ready for the socket: the length prefix and the small fields in `head`, then the payload's
/// own buffer and the fields after it. Written as up to three buffers, which the socket takes in one
/// vectored write, so a 16 MiB payload is never copied into a frame.
public struct EncodedFrame: Sendable {
    public var head: ByteBuffer
    public var payload: ByteBuffer?
    public var tail: ByteBuffer?

    /// Bytes on the wire, length prefix included.
    public var count: Int { head.readableBytes + (payload?.readableBytes ?? 0) + (tail?.readableBytes ?? 0) }

    /// The frame as one contiguous buffer (tests, tools that write frames by hand).
    public var contiguous: ByteBuffer {
        var all = head
        if var payload { all.writeBuffer(&payload) }
        if var tail { all.writeBuffer(&tail) }
        return all
    }
}

extension Frame {
    /// Payloads up to this size are copied into the frame's head (one write, one buffer); larger ones
    /// travel as their own buffer.
    static let inlinePayloadLimit = 16 << 10

    /// The frame as bytes for the socket, in the field order protobuf-c itself writes (fields 1–6,
    /// the payload as field 7, then 8–10): the bytes are the same as one protobuf-c pack of the
    /// whole frame would give. Throws RESOURCE_EXHAUSTED when the frame exceeds `maxFrameSize`.
    public func encode(allocator: ByteBufferAllocator, maxFrameSize: Int) throws -> EncodedFrame {
        var front = Chorus__Wire__Frame(), back = Chorus__Wire__Frame()
        chorus__wire__frame__init(&front)
        chorus__wire__frame__init(&back)
        front.stream_id = streamID
        front.kind = Chorus__Wire__FrameKind(rawValue: numericCast(kind.wireValue))
        front.deadline_ms = deadlineMs
        front.has_payload = payload == nil ? 0 : 1
        back.end_of_stream = endOfStream ? 1 : 0
        back.status_code = statusCode

        // Metadata entries need C strings that live until pack() returns: all of them in one allocation.
        let sorted = metadata.sorted(by: { $0.key < $1.key })
        let textBytes = sorted.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 }  // checked: counts of strings in memory
        let text = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, textBytes))
        defer { text.deallocate() }
        var entries = [Chorus__Wire__Metadata](repeating: Chorus__Wire__Metadata(), count: sorted.count)
        var cursor = text
        func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
            let start = cursor
            for byte in string.utf8 {
                cursor.pointee = CChar(bitPattern: byte)
                cursor += 1
            }
            cursor.pointee = 0
            cursor += 1
            return start
        }
        for (i, (key, value)) in sorted.enumerated() {
            chorus__wire__metadata__init(&entries[i])
            entries[i].key = cString(key)
            entries[i].value = cString(value)
        }
        let payloadCount = payload?.readableBytes ?? 0
        // protobuf-c leaves an empty bytes field out; so do we.
        let payloadField = payloadCount == 0 ? 0 : 1 + varintSize(UInt64(payloadCount)) + payloadCount  // checked: a count, not negative
        let inline = payloadCount <= Self.inlinePayloadLimit
        return try entries.withUnsafeMutableBufferPointer { entryBuffer in
            var pointers: [UnsafeMutablePointer<Chorus__Wire__Metadata>?] = (0..<entryBuffer.count).map { entryBuffer.baseAddress! + $0 }
            return try pointers.withUnsafeMutableBufferPointer { metadataPointers in
                front.n_metadata = metadataPointers.count
                front.metadata = metadataPointers.baseAddress
                return try method.withCString { m in
                    try statusMessage.withCString { s in
                        front.method = UnsafeMutablePointer(mutating: m)
                        back.status_message = UnsafeMutablePointer(mutating: s)
                        let frontSize = chorus__wire__frame__get_packed_size(&front)
                        let backSize = chorus__wire__frame__get_packed_size(&back)
                        let size = frontSize + payloadField + backSize
                        guard size <= min(maxFrameSize, Int(UInt32.max)) else {
                            throw WireStatus(.resourceExhausted,
                                             "frame of \(size) bytes exceeds the limit of \(maxFrameSize) bytes")
                        }
                        var head = allocator.buffer(capacity: 4 + frontSize + (inline ? payloadField + backSize : 10))
                        head.writeInteger(UInt32(size))  // checked: size ≤ UInt32.max above
                        try pack(&front, size: frontSize, into: &head)
                        guard var payload, payloadCount > 0 else {
                            try pack(&back, size: backSize, into: &head)
                            return EncodedFrame(head: head)
                        }
                        head.writeInteger(UInt8(7 << 3 | 2))  // field 7, length-delimited
                        writeVarint(UInt64(payloadCount), into: &head)  // checked: a count, not negative
                        if inline {
                            head.writeBuffer(&payload)
                            try pack(&back, size: backSize, into: &head)
                            return EncodedFrame(head: head)
                        }
                        guard backSize > 0 else { return EncodedFrame(head: head, payload: payload) }
                        var tail = allocator.buffer(capacity: backSize)
                        try pack(&back, size: backSize, into: &tail)
                        return EncodedFrame(head: head, payload: payload, tail: tail)
                    }
                }
            }
        }
    }

    /// The frame as one buffer (tests and tools; connections write `encode`'s pieces).
    public func encoded(allocator: ByteBufferAllocator, maxFrameSize: Int) throws -> ByteBuffer {
        try encode(allocator: allocator, maxFrameSize: maxFrameSize).contiguous
    }

    /// Decodes one frame body (without its length prefix). The payload field is found by walking the
    /// frame's top-level fields and is sliced out of `body` (copied only when small, so that a small
    /// message does not keep a large read buffer alive); protobuf-c unpacks the rest.
    public static func decode(_ body: ByteBuffer) throws -> Frame {
        let count = body.readableBytes
        let located = body.withUnsafeReadableBytes { locatePayload($0) }
        var rest: [UInt8] = []
        if let located, !located.cuts.isEmpty {
            rest.reserveCapacity(count - located.cuts.reduce(0) { $0 + $1.count })
            body.withUnsafeReadableBytes { raw in
                var start = 0
                for cut in located.cuts {
                    rest += raw[start..<cut.lowerBound]
                    start = cut.upperBound
                }
                rest += raw[start...]
            }
        }
        let unpack: (UnsafeRawBufferPointer) -> UnsafeMutablePointer<Chorus__Wire__Frame>? = { raw in
            chorus__wire__frame__unpack(nil, raw.count, raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        let unpacked = located.map { !$0.cuts.isEmpty } == true
            ? rest.withUnsafeBytes(unpack) : body.withUnsafeReadableBytes(unpack)
        guard let c = unpacked else {
            throw WireStatus(.invalidArgument, "malformed frame: protobuf-c could not unpack \(count) bytes as chorus.wire.Frame")
        }
        defer { chorus__wire__frame__free_unpacked(c, nil) }
        var frame = Frame(streamID: c.pointee.stream_id, kind: Kind(wireValue: numericCast(c.pointee.kind.rawValue)))
        frame.method = c.pointee.method.map { String(cString: $0) } ?? ""
        frame.deadlineMs = c.pointee.deadline_ms
        for i in 0..<c.pointee.n_metadata {
            guard let entry = c.pointee.metadata[i] else { continue }
            frame.metadata[entry.pointee.key.map { String(cString: $0) } ?? ""] =
                entry.pointee.value.map { String(cString: $0) } ?? ""
        }
        if c.pointee.has_payload != 0 {
            if let range = located?.payload {
                let offset = body.readerIndex + range.lowerBound
                frame.payload = range.count > inlinePayloadLimit
                    ? body.getSlice(at: offset, length: range.count)
                    : ByteBuffer(bytes: body.getBytes(at: offset, length: range.count) ?? [])
            } else {
                // The walk did not find the field (it was empty, or the walk stopped at bytes protobuf-c took).
                let p = c.pointee.payload
                frame.payload = p.len == 0 ? ByteBuffer() : ByteBuffer(bytes: UnsafeRawBufferPointer(start: p.data, count: p.len))
            }
        }
        frame.endOfStream = c.pointee.end_of_stream != 0
        frame.statusCode = c.pointee.status_code
        frame.statusMessage = c.pointee.status_message.map { String(cString: $0) } ?? ""
        return frame
    }

    /// Walks a frame's top-level fields: where field 7 (the payload) lies, the last occurrence winning as
    /// in protobuf, and every occurrence to cut out before protobuf-c unpacks the rest. nil when the bytes
    /// are not a well-formed field sequence (protobuf-c then judges the whole body).
    static func locatePayload(_ raw: UnsafeRawBufferPointer) -> (payload: Range<Int>?, cuts: [Range<Int>])? {
        var i = 0, payload: Range<Int>?, cuts: [Range<Int>] = []
        while i < raw.count {
            let fieldStart = i
            guard let key = readVarint(raw, &i) else { return nil }
            switch key & 7 {
            case 0:
                guard readVarint(raw, &i) != nil else { return nil }
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard raw.count - i >= width else { return nil }
                i += width
            case 2:
                guard let length = readVarint(raw, &i), length <= UInt64(raw.count - i) else { return nil }  // checked: i ≤ raw.count
                let end = i + Int(length)  // checked: length ≤ the bytes left
                if key >> 3 == 7 {
                    payload = i..<end
                    cuts.append(fieldStart..<end)
                }
                i = end
            default:
                return nil
            }
        }
        return (payload, cuts)
    }
}

/// A base-128 varint at `i`, advancing past it; nil when cut off or longer than ten bytes.
private func readVarint(_ raw: UnsafeRawBufferPointer, _ i: inout Int) -> UInt64? {
    var value: UInt64 = 0, shift: UInt64 = 0
    while i < raw.count && shift < 64 {
        let byte = raw[i]
        i += 1
        value |= UInt64(byte & 0x7F) << shift  // checked: a byte widened
        if byte & 0x80 == 0 { return value }
        shift += 7
    }
    return nil
}

private func varintSize(_ value: UInt64) -> Int {
    var size = 1, rest = value >> 7
    while rest != 0 { size += 1; rest >>= 7 }
    return size
}

private func writeVarint(_ value: UInt64, into buffer: inout ByteBuffer) {
    var rest = value
    while rest >= 0x80 {
        buffer.writeInteger(UInt8(truncatingIfNeeded: rest) | 0x80)
        rest >>= 7
    }
    buffer.writeInteger(UInt8(rest))  // checked: rest < 0x80 after the loop
}

/// protobuf-c's pack of `frame` appended to `buffer`.
private func pack(_ frame: inout Chorus__Wire__Frame, size: Int, into buffer: inout ByteBuffer) throws {
    guard size > 0 else { return }
    let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
        chorus__wire__frame__pack(&frame, out.baseAddress!.assumingMemoryBound(to: UInt8.self))  // checked: size > 0
    }
    guard written == size else { throw WireStatus(.internal, "protobuf-c packed \(written) of \(size) bytes of a frame") }
}
