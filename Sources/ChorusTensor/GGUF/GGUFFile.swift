import ChorusInput
import Foundation

/// A GGUF file (versions 2 and 3), as llama.cpp writes them: metadata key/values, tensor infos, and the
/// aligned data section. The whole header is validated when the file is opened (every count against the
/// bytes left, shapes against their block size, data inside the file, no overlaps), so a corrupt file fails
/// at load with a clear error. Tensor data is read on demand with `pread`, kept quantized or turned into
/// float32 exactly as ggml's (and the `gguf` package's) dequantization does.
public final class GGUFFile: @unchecked Sendable {
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let type: GGMLType
        /// ggml's order: the innermost (contiguous) dimension first.
        public let dimensions: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>

        /// Row-major shape, outermost first (what Tensor and numpy use).
        public var shape: [Int] { dimensions.reversed() }
        public var count: Int { dimensions.reduce(1, *) }
    }

    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// In file order.
    public let tensors: [TensorInfo]
    public let alignment: Int
    /// Where the data section starts in the file.
    public let dataOffset: Int
    private let byName: [String: Int]
    private let file: ReadOnlyFile

    /// ggml's limit on dimensions.
    static let maxDimensions = 4

    public init(path: String) throws {
        _ = FreedBuffers.kept
        self.path = path
        let file = try ReadOnlyFile(path: path)
        var reader = GGUFHeaderReader(file: file)
        let magic = try reader.integer(UInt32.self, "the magic number")
        guard magic == 0x4655_4747 else {  // "GGUF" little-endian
            throw reader.error("is not a GGUF file (it starts with \(String(format: "0x%08x", magic.byteSwapped)), not \"GGUF\")")
        }
        let version = try reader.integer(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            let hint = version & 0xFFFF == 0 ? " (a big-endian file; Chorus reads little-endian GGUF)" : ""
            throw reader.error("has GGUF version \(version)\(hint); versions 2 and 3 are read")
        }
        // A tensor info takes at least 8 (name length) + 4 (dimensions) + 8 (one dimension) + 4 + 8 bytes.
        let tensorCount = try reader.count("the tensor count", minimumSize: 32)
        let metadataCount = try reader.count("the metadata count", minimumSize: 8 + 4 + 1)
        var metadata: [String: GGUFValue] = [:]
        for index in 0..<metadataCount {
            let key = try reader.string("metadata key \(index)")
            let type = try reader.integer(UInt32.self, "the type of '\(key)'")
            guard metadata[key] == nil else { throw reader.error("metadata key '\(key)' appears twice") }
            metadata[key] = try reader.value(type, "'\(key)'")
        }
        var alignment = 32
        if let given = metadata["general.alignment"] {
            guard case .uint32(let value) = given, value > 0, value.nonzeroBitCount == 1, value <= 1 << 20 else {
                throw reader.error("general.alignment is \(given); it must be a power of two (UINT32)")
            }
            alignment = Int(truncatingIfNeeded: value)
        }
        var infos: [(name: String, type: GGMLType, dimensions: [Int], offset: UInt64)] = []
        infos.reserveCapacity(tensorCount)
        for index in 0..<tensorCount {
            let name = try reader.string("the name of tensor \(index)")
            let rank = try reader.integer(UInt32.self, "the dimensions of '\(name)'")
            guard (1...UInt32(Self.maxDimensions)).contains(rank) else {
                throw reader.error("tensor '\(name)' has \(rank) dimensions; ggml allows 1 ... \(Self.maxDimensions)")
            }
            var dimensions: [Int] = []
            for axis in 0..<Int(truncatingIfNeeded: rank) {
                let size = try reader.integer(UInt64.self, "dimension \(axis) of '\(name)'")
                guard size >= 1, size <= UInt64(Int32.max) else {  // checked: a constant
                    throw reader.error("tensor '\(name)' has dimension \(axis) of \(size); 1 ... \(Int32.max) is allowed")
                }
                dimensions.append(Int(truncatingIfNeeded: size))
            }
            let typeNumber = try reader.integer(UInt32.self, "the type of '\(name)'")
            guard let type = GGMLType(rawValue: typeNumber) else {
                throw reader.error("tensor '\(name)' has ggml type \(typeNumber), which Chorus does not know")
            }
            let offset = try reader.integer(UInt64.self, "the offset of '\(name)'")
            infos.append((name, type, dimensions, offset))
        }
        let headerEnd = reader.position
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        guard dataOffset <= file.size else { throw reader.error("is truncated: its data section would start at \(dataOffset), past its end") }
        let dataSize = file.size - dataOffset

        var tensors: [TensorInfo] = []
        var byName: [String: Int] = [:]
        for info in infos {
            guard byName[info.name] == nil else { throw reader.error("tensor '\(info.name)' appears twice") }
            guard info.dimensions[0] % info.type.blockSize == 0 else {
                throw reader.error("tensor '\(info.name)' (\(info.type)) has \(info.dimensions[0]) values a row, not a multiple of its block of \(info.type.blockSize)")
            }
            guard let count = try? Checked.product(info.dimensions, "shape", limit: .max),
                  let bytes = try? Checked.product([count / info.type.blockSize, info.type.typeSize], "size", limit: .max) else {
                throw reader.error("tensor '\(info.name)' \(info.type)\(info.dimensions) is larger than any file can hold")
            }
            guard info.offset % UInt64(alignment) == 0 else {  // checked: alignment ≥ 1
                throw reader.error("tensor '\(info.name)' starts at \(info.offset), not a multiple of the alignment \(alignment)")
            }
            guard info.offset <= UInt64(dataSize), UInt64(bytes) <= UInt64(dataSize) - info.offset else {  // checked: both non-negative
                throw reader.error("tensor '\(info.name)' (\(bytes) bytes at \(info.offset)) runs past the \(dataSize)-byte data section")
            }
            let start = Int(truncatingIfNeeded: info.offset)
            byName[info.name] = tensors.count
            tensors.append(TensorInfo(name: info.name, type: info.type, dimensions: info.dimensions, range: start..<(start + bytes)))
        }
        let sorted = tensors.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.range.overlaps(next.range) {
            throw reader.error("tensors '\(previous.name)' and '\(next.name)' overlap")
        }
        self.version = version
        self.metadata = metadata
        self.tensors = tensors
        self.alignment = alignment
        self.dataOffset = dataOffset
        self.byName = byName
        self.file = file
    }

    public var name: String { file.name }

    public func info(_ name: String) throws -> TensorInfo {
        guard let index = byName[name] else { throw WeightFileError(file.name, "has no tensor '\(name)'") }
        return tensors[index]
    }

    /// A tensor's bytes as stored (quantized blocks stay quantized).
    public func bytes(_ name: String) throws -> [UInt8] {
        let info = try info(name)
        return try [UInt8](unsafeUninitializedCapacity: info.range.count) { buffer, initialized in
            try file.read(at: dataOffset + info.range.lowerBound, into: UnsafeMutableRawBufferPointer(buffer), tensor: name)
            initialized = info.range.count
        }
    }

    /// A tensor as float32 in its row-major shape, dequantized as ggml does.
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        guard info.type.canDequantize else {
            throw WeightFileError(file.name, "tensor '\(name)' is \(info.type); Chorus reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K")
        }
        let raw = try bytes(name)
        let values = [Float](unsafeUninitializedCapacity: info.count) { out, initialized in
            raw.withUnsafeBytes { GGMLBlocks.dequantize(info.type, $0, into: out.baseAddress!, count: info.count) }  // checked: count ≥ 1
            initialized = info.count
        }
        return Tensor(shape: info.shape, storage: values)
    }

    /// A 2-D tensor of a type with a product kernel stays in its blocks (`QuantizedMatrix`); others are
    /// dequantized to float32.
    public func linearWeight(_ name: String) throws -> LinearWeight {
        let info = try info(name)
        guard info.shape.count == 2, QuantizedMatrix.multiplies(info.type),
              let matrix = QuantizedMatrix(type: info.type, rows: info.shape[0], columns: info.shape[1], blocks: try bytes(name)) else {
            return .floats(try tensor(name))
        }
        return .quantized(matrix)
    }

    /// A metadata value, or an error naming the key (for the keys a model cannot do without).
    public func required(_ key: String) throws -> GGUFValue {
        guard let value = metadata[key] else { throw WeightFileError(file.name, "has no metadata '\(key)'") }
        return value
    }
}
