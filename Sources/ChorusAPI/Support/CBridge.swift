import ChorusProto
import ChorusWire
import Foundation
import NIOCore

/// What every generated message is: a Swift value with JSON (the .proto field names as keys) and a wire form.
public protocol ChorusMessage: WireMessage, Codable, Hashable {}

/// Generated enums: Int32 raw values as on the wire; JSON uses the .proto value names.
public protocol ChorusEnum: RawRepresentable, CaseIterable, Codable, Hashable, Sendable where RawValue == Int32 {
    static var protoNames: [Self: String] { get }
}

extension ChorusEnum {
    /// Values this build does not know read as the enum's zero value, as proto3 intends for open enums.
    public init<T: BinaryInteger>(cValue: T) {
        self = Self(rawValue: Int32(truncatingIfNeeded: cValue)) ?? Self(rawValue: 0)!
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int32.self), let value = Self(rawValue: number) {
            self = value
            return
        }
        let name = try container.decode(String.self)
        guard let match = Self.protoNames.first(where: { $0.value.caseInsensitiveCompare(name) == .orderedSame }) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription:
                "'\(name)' is not one of \(Self.allCases.compactMap { Self.protoNames[$0] }.joined(separator: ", "))")
        }
        self = match.key
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Self.protoNames[self] ?? "\(rawValue)")
    }
}

/// The bridge between a generated Swift message and its protobuf-c struct.
public protocol CBridgedMessage {
    associatedtype CStruct
    /// The message protobuf-c unpacked into `c` (cUnpack): its large bytes fields are taken over
    /// (CBridge.take), so `c` is only good for cFree afterwards.
    init(c: UnsafePointer<CStruct>)
    func fill(_ c: UnsafeMutablePointer<CStruct>, _ arena: CArena)
    static func cUnpack(_ count: Int, _ bytes: UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CStruct>?
    static func cFree(_ c: UnsafeMutablePointer<CStruct>)
    static func cPackedSize(_ c: UnsafePointer<CStruct>) -> Int
    static func cPack(_ c: UnsafePointer<CStruct>, _ out: UnsafeMutablePointer<UInt8>) -> Int
}

extension CBridgedMessage {
    /// A C copy of this message whose memory belongs to `arena`.
    public func bridged(_ arena: CArena) -> UnsafeMutablePointer<CStruct> {
        let c = arena.allocate(CStruct.self)
        fill(c, arena)
        return c
    }
}

extension WireMessage where Self: CBridgedMessage {
    public static var protoName: String { String(describing: Self.self) }

    public init(wireBytes: UnsafeRawBufferPointer) throws {
        guard let c = Self.cUnpack(wireBytes.count, wireBytes.baseAddress?.assumingMemoryBound(to: UInt8.self)) else {
            throw WireStatus(.invalidArgument, "malformed \(Self.protoName): protobuf-c could not unpack \(wireBytes.count) bytes")
        }
        defer { Self.cFree(c) }
        self.init(c: c)
    }

    /// Packed straight into a buffer of the exact size: the only copy of a bytes field on the way out
    /// (CArena.bytes lends large fields' own storage to protobuf-c).
    public func wireBuffer() throws -> ByteBuffer {
        let arena = CArena()
        let c = bridged(arena)
        let size = Self.cPackedSize(c)
        var buffer = WireMemory.allocator.buffer(capacity: size)
        let written = size == 0 ? 0 : buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            Self.cPack(c, out.baseAddress!.assumingMemoryBound(to: UInt8.self))  // checked: size > 0, so the buffer has an address
        }
        guard written == size else {
            throw WireStatus(.internal, "protobuf-c packed \(written) of \(size) bytes of \(Self.protoName)")
        }
        return withExtendedLifetime(arena) { buffer }
    }

    public func wireBytes() throws -> [UInt8] {
        let arena = CArena()
        let c = bridged(arena)
        let size = Self.cPackedSize(c)
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return Self.cPack(c, base)
        }
        guard written == size else {
            throw WireStatus(.internal, "protobuf-c packed \(written) of \(size) bytes of \(Self.protoName)")
        }
        return out
    }
}

/// Owns the C memory of one message being packed; freed all at once when packing is done.
public final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    /// Large bytes fields lent to protobuf-c as they are (see `bytes`).
    private var lent: [Data] = []

    public init() {}

    deinit {
        for block in blocks { free(block) }
    }

    public func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    public func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(value)!
        blocks.append(UnsafeMutableRawPointer(copy))
        return copy
    }

    public func bytes(_ data: Data) -> ProtobufCBinaryData {
        guard !data.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        if data.count >= CBridge.sharedBytesThreshold {
            // A Data this large keeps its bytes in heap storage (only up to 14 bytes are stored inline in
            // the value), which this arena retains unchanged until the pack is done: protobuf-c reads
            // them where they are instead of from a copy. It only reads (pack takes const pointers).
            lent.append(data)
            let base = data.withUnsafeBytes { $0.baseAddress }
            return ProtobufCBinaryData(len: data.count, data: UnsafeMutablePointer(mutating: base?.assumingMemoryBound(to: UInt8.self)))
        }
        let copy = allocate(UInt8.self, count: data.count)
        data.copyBytes(to: copy, count: data.count)
        return ProtobufCBinaryData(len: data.count, data: copy)
    }

    /// A repeated field: (count, pointer) as protobuf-c lays it out.
    public func array<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !values.isEmpty else { return (0, nil) }
        let copy = allocate(T.self, count: values.count)
        copy.initialize(from: values, count: values.count)
        return (values.count, copy)
    }
}

/// Reading protobuf-c fields back into Swift values.
public enum CBridge {
    public static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    /// Bytes fields from this size on are shared rather than copied, both ways.
    static let sharedBytesThreshold = 4096

    /// A bytes field of a message protobuf-c unpacked. protobuf-c gave a large field a block of its own
    /// (malloc'd, copied once from the wire): the Data takes that block over and the field is cleared, so
    /// free_unpacked leaves it alone. Small fields are copied.
    public static func take(_ binary: inout ProtobufCBinaryData) -> Data {
        guard binary.len > 0, let bytes = binary.data else { return Data() }
        guard binary.len >= sharedBytesThreshold else { return Data(bytes: bytes, count: binary.len) }
        let data = Data(bytesNoCopy: bytes, count: binary.len, deallocator: .free)
        binary = ProtobufCBinaryData(len: 0, data: nil)
        return data
    }

    /// A repeated bytes field of an unpacked message, each element as `take` does it.
    public static func takeAll(_ pointer: UnsafeMutablePointer<ProtobufCBinaryData>?, _ count: Int) -> [Data] {
        guard let pointer, count > 0 else { return [] }
        return (0..<count).map { take(&pointer[$0]) }
    }

    public static func array<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> [T] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }
}
