import NIOCore

/// A message that travels as a frame payload. The generated types of ChorusAPI conform through protobuf-c.
public protocol WireMessage: Sendable {
    /// Decodes the message; throws `WireStatus(.invalidArgument, ...)` when the bytes are not this message.
    init(wireBytes: UnsafeRawBufferPointer) throws
    func wireBytes() throws -> [UInt8]
    /// The encoding in a buffer of its own, as a connection sends it (packed straight into it, not
    /// through an array).
    func wireBuffer() throws -> ByteBuffer
    static var protoName: String { get }
}

extension WireMessage {
    public init(wireBytes bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try Self(wireBytes: $0) }
    }

    /// Decodes the message where it lies in the buffer (a frame's payload), without copying it out first.
    public init(wireBuffer buffer: ByteBuffer) throws {
        self = try buffer.withUnsafeReadableBytes { try Self(wireBytes: $0) }
    }

    public func wireBuffer() throws -> ByteBuffer {
        ByteBuffer(bytes: try wireBytes())
    }
}

/// Full method names look like "/chorus.speech.v1.Speech/Transcribe".
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case unary, serverStreaming, clientStreaming, bidirectionalStreaming
    }

    public let service: String
    public let method: String
    public let kind: Kind

    public init(service: String, method: String, kind: Kind) {
        self.service = service
        self.method = method
        self.kind = kind
    }

    public var path: String { "/\(service)/\(method)" }
    public var description: String { path }
}
