import Foundation

/// Where a model's weights come from. Models ask for tensors by their canonical (Hugging Face) names;
/// each format's loader answers, converting half and bfloat16 to Float32 today. A loader that keeps
/// weights compressed later only has to answer this protocol differently.
public protocol WeightSource: Sendable {
    var names: [String] { get }
    func tensor(_ name: String) throws -> Tensor
    /// A linear layer's weight [out, in] as the layer will keep it: float32, or quantized blocks where the
    /// format stores them and a product kernel exists (GGUF). Defaults to `tensor`.
    func linearWeight(_ name: String) throws -> LinearWeight
}

extension WeightSource {
    public func linearWeight(_ name: String) throws -> LinearWeight { .floats(try tensor(name)) }
}

/// A linear layer's weight: float32, GGML blocks kept quantized, or int8 with a scale per row.
public enum LinearWeight: Sendable {
    case floats(Tensor)
    case quantized(QuantizedMatrix)
    case int8(Int8Matrix)

    /// [out, in].
    public var shape: [Int] {
        switch self {
        case .floats(let t): t.shape
        case .quantized(let q): [q.rows, q.columns]
        case .int8(let w): [w.rows, w.columns]
        }
    }
}

extension SafeTensorsFile: WeightSource {}
extension SafeTensorsCheckpoint: WeightSource {}
extension CTranslate2Model: WeightSource {}

extension ONNXModel: WeightSource {
    public var names: [String] { initializers.keys.sorted() }
    public func tensor(_ name: String) throws -> Tensor { try initializer(name) }
}

/// Renames a foreign format's tensors into the canonical naming (a CTranslate2 Whisper into the HF
/// layout, say), so the model code binds every weight by one name only.
public struct RenamedWeights: WeightSource {
    public let base: WeightSource
    /// canonical name → name in `base`
    public let mapping: [String: String]

    public init(_ base: WeightSource, mapping: [String: String]) {
        self.base = base
        self.mapping = mapping
    }

    public var names: [String] { mapping.keys.sorted() }

    public func tensor(_ name: String) throws -> Tensor {
        guard let source = mapping[name] else {
            throw WeightFileError("weights", "no mapping for '\(name)'")
        }
        return try base.tensor(source)
    }

    public func linearWeight(_ name: String) throws -> LinearWeight {
        guard let source = mapping[name] else {
            throw WeightFileError("weights", "no mapping for '\(name)'")
        }
        return try base.linearWeight(source)
    }
}

/// `config.json` and friends, decoded into Codable structs whose CodingKeys are the file's own names.
public enum JSONConfig {
    public static func load<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let file = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WeightFileError(file, "cannot read \(path)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw WeightFileError(file, "lacks \"\(key.stringValue)\"")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw WeightFileError(file, "has the wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch {
            throw WeightFileError(file, "is not valid JSON: \(error.localizedDescription)")
        }
    }

    /// The `model_type` of a Hugging Face folder's config.json ("whisper", "clip", "vits"), or nil.
    public static func modelType(folder: String) -> String? {
        guard let data = FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent("config.json")),
              let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return config["model_type"] as? String
    }
}

/// Tensors already in memory under their canonical names (weights that needed reshaping on the way in).
public struct TensorDictionary: WeightSource {
    public let tensors: [String: Tensor]
    public let origin: String

    public init(_ tensors: [String: Tensor], origin: String) {
        self.tensors = tensors
        self.origin = origin
    }

    public var names: [String] { tensors.keys.sorted() }

    public func tensor(_ name: String) throws -> Tensor {
        guard let tensor = tensors[name] else { throw WeightFileError(origin, "has no tensor for '\(name)'") }
        return tensor
    }
}

extension KeyedDecodingContainer {
    /// Overwrites `value` when the key is present: config fields a checkpoint omits keep the reference
    /// library's defaults.
    public func read<T: Decodable>(_ key: Key, into value: inout T) throws {
        if let decoded = try decodeIfPresent(T.self, forKey: key) { value = decoded }
    }
}

/// A GGUF file by llama.cpp's tensor names, dequantized to float32.
extension GGUFFile: WeightSource {
    public var names: [String] { tensors.map(\.name) }
}
