import ChorusProto
import ChorusWire
import Foundation

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

    public static func data(_ binary: ProtobufCBinaryData) -> Data {
        guard binary.len > 0, let data = binary.data else { return Data() }
        return Data(bytes: data, count: binary.len)
    }

    public static func array<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> [T] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }
}
