import Foundation

/// Minimal reader for the safetensors format: an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor data.
struct SafeTensors {
    struct Tensor {
        let dtype: String
        let shape: [Int]
        let data: Data

        func floats() throws -> [Float] { try values(dtype: "F32") }
        func int64s() throws -> [Int64] { try values(dtype: "I64") }
        func bytes() throws -> [UInt8] { try values(dtype: "U8") }

        private func values<T>(dtype expected: String) throws -> [T] {
            guard dtype == expected else { throw SafeTensorsError.wrongType(dtype, expected) }
            return data.withUnsafeBytes { raw in
                (0..<(data.count / MemoryLayout<T>.stride)).map {
                    raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.stride, as: T.self)
                }
            }
        }
    }

    enum SafeTensorsError: Error {
        case malformed(String)
        case wrongType(String, String)
        case missing(String)
    }

    private let tensors: [String: Tensor]

    var names: [String] { tensors.keys.sorted() }

    init(contentsOf url: URL) throws {
        let file = try Data(contentsOf: url)
        guard file.count >= 8 else { throw SafeTensorsError.malformed("\(url.lastPathComponent) is \(file.count) bytes") }
        let headerLength = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let dataStart = 8 + headerLength
        guard dataStart <= file.count,
              let header = try JSONSerialization.jsonObject(with: file.subdata(in: 8..<dataStart)) as? [String: Any]
        else { throw SafeTensorsError.malformed("bad header in \(url.lastPathComponent)") }
        var tensors: [String: Tensor] = [:]
        for (name, entry) in header where name != "__metadata__" {
            guard let entry = entry as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  dataStart + offsets[1] <= file.count
            else { throw SafeTensorsError.malformed("bad entry \(name)") }
            tensors[name] = Tensor(dtype: dtype, shape: shape, data: file.subdata(in: (dataStart + offsets[0])..<(dataStart + offsets[1])))
        }
        self.tensors = tensors
    }

    func tensor(_ name: String) throws -> Tensor {
        guard let tensor = tensors[name] else { throw SafeTensorsError.missing(name) }
        return tensor
    }
}
