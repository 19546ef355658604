/// A message that travels as a frame payload. The generated types of ChorusAPI conform through protobuf-c.
public protocol WireMessage: Sendable {
    /// Decodes the message; throws `WireStatus(.invalidArgument, ...)` when the bytes are not this message.
    init(wireBytes: UnsafeRawBufferPointer) throws
    func wireBytes() throws -> [UInt8]
    static var protoName: String { get }
}

extension WireMessage {
    public init(wireBytes bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try Self(wireBytes: $0) }
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
