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
    /// nil: the frame carries no message (an empty message is an empty array).
    public var payload: [UInt8]? = nil
    public var endOfStream: Bool = false
    public var statusCode: UInt32 = 0
    public var statusMessage: String = ""

    public init(streamID: UInt64, kind: Kind, method: String = "", deadlineMs: UInt32 = 0,
                metadata: [String: String] = [:], payload: [UInt8]? = nil, endOfStream: Bool = false,
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

    public var status: WireStatus {
        WireStatus(StatusCode(wireValue: statusCode), statusMessage)
    }
}

// MARK: - protobuf-c encoding

extension Frame {
    /// Appends the 4-byte big-endian length and the protobuf-c encoding of the frame.
    /// Throws RESOURCE_EXHAUSTED, before writing anything, when the frame exceeds `maxFrameSize`.
    public func encode(into buffer: inout ByteBuffer, maxFrameSize: Int) throws {
        var c = Chorus__Wire__Frame()
        chorus__wire__frame__init(&c)
        c.stream_id = streamID
        c.kind = Chorus__Wire__FrameKind(rawValue: numericCast(kind.wireValue))
        c.deadline_ms = deadlineMs
        c.has_payload = payload == nil ? 0 : 1
        c.end_of_stream = endOfStream ? 1 : 0
        c.status_code = statusCode

        // Metadata entries need C strings that live until pack() returns.
        var cStrings: [UnsafeMutablePointer<CChar>] = []
        defer { cStrings.forEach { free($0) } }
        var entries = [Chorus__Wire__Metadata](repeating: Chorus__Wire__Metadata(), count: metadata.count)
        for (i, (key, value)) in metadata.sorted(by: { $0.key < $1.key }).enumerated() {
            chorus__wire__metadata__init(&entries[i])
            let k = strdup(key)!, v = strdup(value)!
            cStrings += [k, v]
            entries[i].key = k
            entries[i].value = v
        }
        let size: Int = try entries.withUnsafeMutableBufferPointer { entryBuffer in
            var pointers: [UnsafeMutablePointer<Chorus__Wire__Metadata>?] = (0..<entryBuffer.count).map { entryBuffer.baseAddress! + $0 }
            return try pointers.withUnsafeMutableBufferPointer { metadataPointers in
                c.n_metadata = metadataPointers.count
                c.metadata = metadataPointers.baseAddress
                return try method.withCString { m in
                    try statusMessage.withCString { s in
                        try (payload ?? []).withUnsafeBufferPointer { p in
                            c.method = UnsafeMutablePointer(mutating: m)
                            c.status_message = UnsafeMutablePointer(mutating: s)
                            c.payload = ProtobufCBinaryData(len: p.count, data: UnsafeMutablePointer(mutating: p.baseAddress))
                            let size = chorus__wire__frame__get_packed_size(&c)
                            guard size <= maxFrameSize else {
                                throw WireStatus(.resourceExhausted,
                                                 "frame of \(size) bytes exceeds the limit of \(maxFrameSize) bytes")
                            }
                            buffer.reserveCapacity(minimumWritableBytes: 4 + size)
                            buffer.writeInteger(UInt32(size))
                            let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                                chorus__wire__frame__pack(&c, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
                            }
                            return written
                        }
                    }
                }
            }
        }
        guard size >= 0 else { throw WireStatus(.internal, "protobuf-c failed to pack a frame") }
    }

    /// Decodes one frame body (without its length prefix).
    public static func decode(_ body: ByteBuffer) throws -> Frame {
        let count = body.readableBytes
        let unpacked = body.withUnsafeReadableBytes { raw in
            chorus__wire__frame__unpack(nil, raw.count, raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
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
            let p = c.pointee.payload
            frame.payload = p.len == 0 ? [] : Array(UnsafeBufferPointer(start: p.data, count: p.len))
        }
        frame.endOfStream = c.pointee.end_of_stream != 0
        frame.statusCode = c.pointee.status_code
        frame.statusMessage = c.pointee.status_message.map { String(cString: $0) } ?? ""
        return frame
    }
}
