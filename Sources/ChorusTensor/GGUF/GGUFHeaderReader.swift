import Foundation

/// Reads a GGUF header front to back through a buffered window of the file, checking every length and
/// count against the bytes the file still has before trusting it.
struct GGUFHeaderReader {
    private let file: ReadOnlyFile
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private(set) var position = 0
    /// Arrays inside arrays are allowed by the format; a file nesting them deeper is refused.
    static let maxDepth = 4

    init(file: ReadOnlyFile) {
        self.file = file
    }

    var remaining: Int { file.size - position }

    func error(_ message: String) -> WeightFileError { WeightFileError(file.name, message) }

    /// The next `count` bytes, read from the file in chunks of at least 1 MiB.
    private mutating func take(_ count: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard count <= remaining else {
            throw error("is truncated: \(what) needs \(count) bytes at offset \(position), the file has \(remaining) left")
        }
        let end = position + count
        if position < bufferStart || end > bufferStart + buffer.count {
            let length = min(max(count, 1 << 20), file.size - position)
            var chunk = [UInt8](repeating: 0, count: length)
            try chunk.withUnsafeMutableBytes { try file.read(at: position, into: $0) }
            buffer = chunk
            bufferStart = position
        }
        defer { position = end }
        return buffer[(position - bufferStart)..<(end - bufferStart)]
    }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        let bytes = try take(MemoryLayout<T>.size, what)
        var value = T.zero
        for (i, byte) in bytes.enumerated() { value |= T(truncatingIfNeeded: byte) << (8 * i) }
        return value
    }

    /// A count that the rest of the file must be able to hold, at `minimumSize` bytes an item.
    mutating func count(_ what: String, minimumSize: Int) throws -> Int {
        let raw = try integer(UInt64.self, what)
        guard raw <= UInt64(remaining / max(1, minimumSize)) else {  // checked: remaining ≥ 0
            throw error("\(what) is \(raw), more than the \(remaining) bytes left could hold")
        }
        return Int(truncatingIfNeeded: raw)
    }

    mutating func string(_ what: String) throws -> String {
        let length = try count("the length of \(what)", minimumSize: 1)
        return String(decoding: try take(length, what), as: UTF8.self)
    }

    mutating func value(_ typeNumber: UInt32, _ what: String, depth: Int = 0) throws -> GGUFValue {
        guard let type = GGUFValueType(rawValue: typeNumber) else {
            throw error("\(what) has value type \(typeNumber), which GGUF does not define (0 ... 12)")
        }
        switch type {
        case .uint8: return .uint8(try integer(UInt8.self, what))
        case .int8: return .int8(try integer(Int8.self, what))
        case .uint16: return .uint16(try integer(UInt16.self, what))
        case .int16: return .int16(try integer(Int16.self, what))
        case .uint32: return .uint32(try integer(UInt32.self, what))
        case .int32: return .int32(try integer(Int32.self, what))
        case .uint64: return .uint64(try integer(UInt64.self, what))
        case .int64: return .int64(try integer(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try integer(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try integer(UInt64.self, what)))
        case .bool:
            let byte = try integer(UInt8.self, what)
            guard byte <= 1 else { throw error("\(what) is a bool stored as \(byte)") }
            return .bool(byte == 1)
        case .string: return .string(try string(what))
        case .array:
            guard depth < Self.maxDepth else { throw error("\(what) nests arrays more than \(Self.maxDepth) deep") }
            let elementType = try integer(UInt32.self, "the element type of \(what)")
            guard let element = GGUFValueType(rawValue: elementType) else {
                throw error("\(what) is an array of value type \(elementType), which GGUF does not define (0 ... 12)")
            }
            let count = try count("the length of \(what)", minimumSize: element.minimumSize)
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for i in 0..<count { values.append(try value(elementType, "\(what)[\(i)]", depth: depth + 1)) }
            return .array(values)
        }
    }
}
