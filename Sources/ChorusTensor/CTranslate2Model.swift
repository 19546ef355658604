import ChorusInput
import Foundation

/// A CTranslate2 `model.bin` (binary version 6, as CTranslate2 4.x writes it), read with `pread` (see ReadOnlyFile):
///
///     u32 version | string spec | u32 revision | u32 count | count × variable | u32 count | count × alias
///     variable = string name | u8 rank | rank × u32 dim | u8 dtype | u32 bytes | bytes
///     string   = u16 length (with the NUL) | bytes
///
/// dtypes follow CTranslate2's DataType: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.
/// Every size is checked when the file is opened; aliases (e.g. Whisper's projection tied to the
/// embeddings) resolve to the variable they name.
public final class CTranslate2Model: @unchecked Sendable {
    public enum DType: UInt8, Sendable {
        case float32 = 0, int8 = 1, int16 = 2, int32 = 3, float16 = 4, bfloat16 = 5

        var size: Int {
            switch self {
            case .int8: return 1
            case .int16, .float16, .bfloat16: return 2
            case .float32, .int32: return 4
            }
        }
    }

    public struct Variable: Sendable {
        public let dtype: DType
        public let shape: [Int]
        let range: Range<Int>
    }

    public let path: String
    public let binaryVersion: UInt32
    /// "WhisperSpec", "TransformerSpec" ...
    public let spec: String
    public let revision: UInt32
    public let variables: [String: Variable]
    public let aliases: [String: String]
    private let file: ReadOnlyFile

    public init(path: String) throws {
        _ = FreedBuffers.kept
        self.path = path
        let name = (path as NSString).lastPathComponent
        let file = try ReadOnlyFile(path: path)
        var reader = Reader(file: file)
        binaryVersion = try reader.u32()
        guard (5...6).contains(binaryVersion) else {
            throw WeightFileError(name, "is CTranslate2 binary version \(binaryVersion); this reader knows versions 5 and 6")
        }
        spec = try reader.string()
        revision = try reader.u32()
        let count = try reader.u32()
        var variables: [String: Variable] = [:]
        for _ in 0..<count {
            let variable = try reader.string()
            let rank = Int(try reader.u8())
            let shape = try (0..<rank).map { _ in Int(try reader.u32()) }
            let code = try reader.u8()
            guard let dtype = DType(rawValue: code) else {
                throw WeightFileError(name, "variable '\(variable)' has unknown dtype code \(code)")
            }
            let bytes = Int(try reader.u32())
            guard let expected = try? Checked.product(shape + [dtype.size], "shape", limit: Int(UInt32.max)) else {
                throw WeightFileError(name, "variable '\(variable)' \(dtype)\(shape) is larger than any variable a file can hold")
            }
            guard bytes == expected else {
                throw WeightFileError(name, "variable '\(variable)' \(dtype)\(shape) needs \(expected) bytes, the file gives \(bytes)")
            }
            let range = try reader.skip(bytes)
            variables[variable] = Variable(dtype: dtype, shape: shape, range: range)
        }
        var aliases: [String: String] = [:]
        if reader.remaining > 0 {
            for _ in 0..<(try reader.u32()) {
                let alias = try reader.string()
                let target = try reader.string()
                guard variables[target] != nil else {
                    throw WeightFileError(name, "alias '\(alias)' names '\(target)', which the file does not hold")
                }
                aliases[alias] = target
            }
        }
        guard reader.remaining == 0 else {
            throw WeightFileError(name, "has \(reader.remaining) bytes after its last entry; the file is not what its header says")
        }
        self.variables = variables
        self.aliases = aliases
        self.file = file
    }

    public var names: [String] { (Array(variables.keys) + Array(aliases.keys)).sorted() }

    public func variable(_ name: String) throws -> Variable {
        guard let variable = variables[aliases[name] ?? name] else {
            throw WeightFileError((path as NSString).lastPathComponent, "has no variable '\(name)'")
        }
        return variable
    }

    /// The variable as Float32 (float16/bfloat16 widened exactly, integers by value). A quantized weight (int8
    /// with a `<name>_scale` of one scale per output row, as `--quantization int8` and `int8_float16` write it)
    /// comes back as CTranslate2 widens it: each row's codes divided by the row's scale.
    public func tensor(_ name: String) throws -> Tensor {
        let variable = try variable(name)
        let scaleName = (aliases[name] ?? name) + "_scale"
        if variable.dtype == .int8, variable.shape.count >= 2, variables[scaleName] != nil {
            return try dequantized(codes: try rawTensor(name), scales: try rawTensor(scaleName), name: name)
        }
        return try rawTensor(name)
    }

    /// Codes [rows, …] over per-row scales [rows]: code / scale, as CTranslate2 dequantizes.
    private func dequantized(codes: Tensor, scales: Tensor, name: String) throws -> Tensor {
        let rows = codes.shape[0], perRow = codes.count / max(rows, 1)
        guard scales.count == rows, scales.storage.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw WeightFileError((path as NSString).lastPathComponent,
                                  "int8 variable '\(name)' \(codes.shape) needs \(rows) positive finite scales, '\(name)_scale' has \(scales.shape)")
        }
        var values = codes.storage
        for r in 0..<rows {
            let inverse = 1 / scales.storage[r]
            for i in (r * perRow)..<((r + 1) * perRow) { values[i] *= inverse }
        }
        return Tensor(shape: codes.shape, storage: values)
    }

    private func rawTensor(_ name: String) throws -> Tensor {
        let variable = try variable(name)
        let dtype = variable.dtype
        let out = try file.floats(at: variable.range.lowerBound, count: variable.shape.reduce(1, *), size: dtype.size,
                                  float32: dtype == .float32, tensor: name) { bytes, dst, count in
            switch dtype {
            case .float32: for i in 0..<count { dst[i] = Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            case .float16: for i in 0..<count { dst[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            case .bfloat16: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
            case .int8: for i in 0..<count { dst[i] = Float(Int8(bitPattern: bytes[i])) }
            case .int16: for i in 0..<count { dst[i] = Float(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
            case .int32: for i in 0..<count { dst[i] = Float(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
            }
        }
        return Tensor(shape: variable.shape, storage: out)
    }

    /// A scalar setting stored as a variable (`encoder/num_heads`).
    public func scalar(_ name: String) throws -> Int {
        let value = try tensor(name)
        guard value.count == 1 else {
            throw WeightFileError((path as NSString).lastPathComponent, "'\(name)' has shape \(value.shape), not a scalar")
        }
        return Int(value.storage[0])
    }
}

/// Bounds-checked little-endian reading of the file's header fields, front to back.
private struct Reader {
    let file: ReadOnlyFile
    var offset = 0

    var remaining: Int { file.size - offset }

    mutating func skip(_ count: Int) throws -> Range<Int> {
        guard count >= 0, count <= remaining else {
            throw WeightFileError(file.name, "is truncated: needs \(count) bytes at offset \(offset), has \(remaining)")
        }
        defer { offset += count }
        return offset..<(offset + count)
    }

    private mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let range = try skip(MemoryLayout<T>.size)
        var value = T.zero
        try withUnsafeMutableBytes(of: &value) { try file.read(at: range.lowerBound, into: $0) }
        return T(littleEndian: value)
    }

    mutating func u8() throws -> UInt8 { try integer(UInt8.self) }
    mutating func u16() throws -> UInt16 { try integer(UInt16.self) }
    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }

    /// A u16-length string whose last byte is NUL.
    mutating func string() throws -> String {
        let range = try skip(Int(try u16()))
        var bytes = [UInt8](repeating: 0, count: range.count)
        try bytes.withUnsafeMutableBytes { try file.read(at: range.lowerBound, into: $0) }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
