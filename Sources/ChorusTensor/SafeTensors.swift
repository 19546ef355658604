import ChorusInput
import Foundation

/// Errors of weight files, with the file and the tensor they concern.
public struct WeightFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String

    public init(_ file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }

    /// The file memory-mapped (weights are read lazily, tensor by tensor), or an error naming it.
    static func mapped(_ path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw WeightFileError((path as NSString).lastPathComponent, "cannot read: \(error.localizedDescription)")
        }
    }
}

/// The element types of safetensors files that Hugging Face checkpoints use.
public enum WeightDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64", i32 = "I32", u8 = "U8"

    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .i64: return 8
        case .u8: return 1
        }
    }
}

/// A safetensors file. The header is validated when the file is opened (offsets inside the data, sizes
/// matching shapes, no overlaps), so a corrupt file fails at load with a clear error rather than at the
/// first use of a tensor. Tensors are read on demand with `pread` straight into their Float32 arrays
/// (F16/BF16 widened exactly, integers converted by value).
///
/// Not memory-mapped: a mapping's pages count in the process's resident memory while they stay mapped,
/// so a Stable Diffusion UNet (3.4 GB) was resident twice over during its load (6.7 GB at the peak, for
/// 4.3 GB of weights), and page faults on the mapping fed the copy at about 330 MB/s.
public final class SafeTensorsFile: @unchecked Sendable {
    public struct Entry: Sendable {
        public let dtype: WeightDType
        public let shape: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let file: ReadOnlyFile
    private let dataStart: Int

    public init(path: String) throws {
        _ = FreedBuffers.kept
        self.path = path
        let name = (path as NSString).lastPathComponent
        let file = try ReadOnlyFile(path: path)
        guard file.size >= 8 else { throw WeightFileError(name, "is \(file.size) bytes, too short for a safetensors header") }
        var headerLength: UInt64 = 0
        try withUnsafeMutableBytes(of: &headerLength) { try file.read(at: 0, into: $0) }
        headerLength = UInt64(littleEndian: headerLength)
        guard headerLength <= UInt64(file.size - 8), headerLength <= 100 << 20 else {
            throw WeightFileError(name, "header length \(headerLength) runs past the end of the \(file.size)-byte file")
        }
        var headerData = Data(count: Int(headerLength))
        try headerData.withUnsafeMutableBytes { try file.read(at: 8, into: $0) }
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw WeightFileError(name, "header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = file.size - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let fields = value as? [String: Any], let dtypeName = fields["dtype"] as? String,
                  let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int], offsets.count == 2 else {
                throw WeightFileError(name, "tensor '\(key)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = WeightDType(rawValue: dtypeName) else {
                throw WeightFileError(name, "tensor '\(key)' has dtype \(dtypeName); supported: F32, F16, BF16, I64, I32, U8")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataSize else {
                throw WeightFileError(name, "tensor '\(key)' has offsets \(offsets) outside the \(dataSize)-byte data section")
            }
            // A header can claim any shape: the product is checked, not trusted (2^40 × 2^40 trapped).
            guard let expected = try? Checked.product(shape + [dtype.size], "shape", limit: .max) else {
                throw WeightFileError(name, "tensor '\(key)' \(dtypeName)\(shape) is larger than any file can hold")
            }
            guard offsets[1] - offsets[0] == expected else {
                throw WeightFileError(name, "tensor '\(key)' \(dtypeName)\(shape) needs \(expected) bytes, its offsets span \(offsets[1] - offsets[0])")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        let sorted = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.value.range.overlaps(next.value.range) {
            throw WeightFileError(name, "tensors '\(previous.key)' and '\(next.key)' overlap")
        }
        self.entries = entries
        self.metadata = metadata
        self.file = file
        self.dataStart = dataStart
    }

    public var names: [String] { entries.keys.sorted() }

    /// The tensor as Float32 (integers converted by value).
    public func tensor(_ name: String) throws -> Tensor {
        let entry = try entry(name)
        let dtype = entry.dtype
        let out = try file.floats(at: dataStart + entry.range.lowerBound, count: entry.shape.reduce(1, *), size: dtype.size,
                                  float32: dtype == .f32, tensor: name) { bytes, dst, count in
            switch dtype {
            case .f32: for i in 0..<count { dst[i] = Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            case .f16: for i in 0..<count { dst[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            case .bf16: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
            case .i64: for i in 0..<count { dst[i] = Float(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
            case .i32: for i in 0..<count { dst[i] = Float(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
            case .u8: for i in 0..<count { dst[i] = Float(bytes[i]) }
            }
        }
        return Tensor(shape: entry.shape, storage: out)
    }

    /// Integer tensors (ids, masks) without going through Float.
    public func int64s(_ name: String) throws -> [Int64] {
        guard let entry = entries[name], entry.dtype == .i64 else {
            throw WeightFileError((path as NSString).lastPathComponent, "has no I64 tensor '\(name)'")
        }
        let count = entry.shape.reduce(1, *)
        let values = try [Int64](unsafeUninitializedCapacity: count) { dst, initialized in
            try file.read(at: dataStart + entry.range.lowerBound, into: UnsafeMutableRawBufferPointer(dst), tensor: name)
            initialized = count
        }
        return values.map { Int64(littleEndian: $0) }
    }

    private func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else {
            throw WeightFileError((path as NSString).lastPathComponent, "has no tensor '\(name)'")
        }
        return entry
    }
}

/// A checkpoint split over several safetensors files, as `model.safetensors.index.json` describes it,
/// or a single `model.safetensors`.
public final class SafeTensorsCheckpoint: @unchecked Sendable {
    private let files: [String: SafeTensorsFile]
    private let location: [String: String]

    /// `folder` holds `<stem>.safetensors` or `<stem>.safetensors.index.json` with its shards.
    public init(folder: String, stem: String = "model") throws {
        let index = (folder as NSString).appendingPathComponent("\(stem).safetensors.index.json")
        if let indexData = FileManager.default.contents(atPath: index) {
            guard let json = try? JSONSerialization.jsonObject(with: indexData) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw WeightFileError("\(stem).safetensors.index.json", "has no weight_map")
            }
            var files: [String: SafeTensorsFile] = [:]
            for shard in Set(map.values) {
                files[shard] = try SafeTensorsFile(path: (folder as NSString).appendingPathComponent(shard))
            }
            for (tensor, shard) in map where files[shard]?.entries[tensor] == nil {
                throw WeightFileError(shard, "the index places '\(tensor)' here, but the shard does not hold it")
            }
            self.files = files
            self.location = map
        } else {
            let single = "\(stem).safetensors"
            let file = try SafeTensorsFile(path: (folder as NSString).appendingPathComponent(single))
            self.files = [single: file]
            self.location = Dictionary(uniqueKeysWithValues: file.names.map { ($0, single) })
        }
    }

    public var names: [String] { location.keys.sorted() }

    public func tensor(_ name: String) throws -> Tensor {
        guard let shard = location[name], let file = files[shard] else {
            throw WeightFileError("checkpoint", "has no tensor '\(name)'")
        }
        return try file.tensor(name)
    }
}
