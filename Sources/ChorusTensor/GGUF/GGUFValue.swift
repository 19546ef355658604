/// One metadata value of a GGUF file, typed as the file stores it.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// The value as an Int when it is an integer that fits.
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(truncatingIfNeeded: v)
        case .int8(let v): Int(truncatingIfNeeded: v)
        case .uint16(let v): Int(truncatingIfNeeded: v)
        case .int16(let v): Int(truncatingIfNeeded: v)
        case .uint32(let v): Int(truncatingIfNeeded: v)
        case .int32(let v): Int(truncatingIfNeeded: v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(exactly: v)
        default: nil
        }
    }

    /// The value as a Double when it is a number (integers converted).
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var array: [GGUFValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}

/// The value types' numbers in a GGUF file.
enum GGUFValueType: UInt32 {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8
    case array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes a value takes at least (a string its length field), to bound counts by what the file can hold.
    var minimumSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }
}
