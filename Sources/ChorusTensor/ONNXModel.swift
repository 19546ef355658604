import ChorusInput
import CONNX
import Foundation

/// The weights and the node list of an ONNX file (Piper voices, the terrain UNet), decoded with protobuf-c.
/// Models map their layers to initializers through the nodes: an exporter may leave a weight unnamed
/// (`onnx::Conv_123`), but the node that consumes it says which layer it belongs to.
public final class ONNXModel: @unchecked Sendable {
    public enum Attribute: Sendable, Equatable {
        case float(Float), int(Int64), string(String), floats([Float]), ints([Int64]), strings([String]), tensor(Tensor)
    }

    public struct Node: Sendable {
        public let name: String
        public let opType: String
        public let domain: String
        public let inputs: [String]
        public let outputs: [String]
        public let attributes: [String: Attribute]
    }

    public let path: String
    public let irVersion: Int64
    public let producer: String
    public let opsetVersion: Int64
    /// Float initializers (float16/double/integers converted to Float32).
    public let initializers: [String: Tensor]
    /// INT64 initializers by value (shapes, indices), which do not belong in Float.
    public let integerInitializers: [String: [Int64]]
    public let nodes: [Node]
    public let inputs: [String]
    public let outputs: [String]

    public init(path: String) throws {
        _ = FreedBuffers.kept
        self.path = path
        let name = (path as NSString).lastPathComponent
        let data = try WeightFileError.mapped(path)
        let unpacked = data.withUnsafeBytes { raw in
            onnx__model_proto__unpack(nil, raw.count, raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        guard let model = unpacked else {
            throw WeightFileError(name, "is not an ONNX model: protobuf-c could not decode its \(data.count) bytes as onnx.ModelProto")
        }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        guard let graph = model.pointee.graph else { throw WeightFileError(name, "has no graph") }

        irVersion = model.pointee.has_ir_version != 0 ? model.pointee.ir_version : 0
        producer = string(model.pointee.producer_name)
        opsetVersion = pointers(model.pointee.opset_import, model.pointee.n_opset_import)
            .first { string($0.pointee.domain).isEmpty }.map { $0.pointee.version } ?? 0

        var initializers: [String: Tensor] = [:]
        var integers: [String: [Int64]] = [:]
        for tensor in pointers(graph.pointee.initializer, graph.pointee.n_initializer) {
            let tensorName = string(tensor.pointee.name)
            if tensor.pointee.data_type == DataType.int64 {
                integers[tensorName] = try int64Values(tensor, file: name)
            } else {
                initializers[tensorName] = try floatTensor(tensor, file: name)
            }
        }
        self.initializers = initializers
        self.integerInitializers = integers
        nodes = try pointers(graph.pointee.node, graph.pointee.n_node).map { try readNode($0, file: name) }
        inputs = pointers(graph.pointee.input, graph.pointee.n_input).map { string($0.pointee.name) }
        outputs = pointers(graph.pointee.output, graph.pointee.n_output).map { string($0.pointee.name) }
    }

    /// The initializer, or an error naming it.
    public func initializer(_ name: String) throws -> Tensor {
        guard let tensor = initializers[name] else {
            throw WeightFileError((path as NSString).lastPathComponent, "has no initializer '\(name)'")
        }
        return tensor
    }

    /// Nodes that take `value` as an input, with the input's position (0 = data, 1 = weight, 2 = bias for Conv).
    public func consumers(of value: String) -> [(node: Node, inputIndex: Int)] {
        nodes.flatMap { node in
            node.inputs.enumerated().filter { $0.element == value }.map { (node, $0.offset) }
        }
    }
}

/// TensorProto.DataType numbers of the ONNX specification.
enum DataType {
    static let float: Int32 = 1, uint8: Int32 = 2, int8: Int32 = 3, int16: Int32 = 5, int32: Int32 = 6, int64: Int32 = 7
    static let bool: Int32 = 9, float16: Int32 = 10, double: Int32 = 11, bfloat16: Int32 = 16
}

private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}

private func pointers<T>(_ base: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafeMutablePointer<T>] {
    guard let base else { return [] }
    return (0..<count).compactMap { base[$0] }
}

private func shape(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>) -> [Int] {
    (0..<tensor.pointee.n_dims).map { Int(tensor.pointee.dims[$0]) }
}

/// The element count of a tensor's dims, which come from the file: negative dims and products past
/// what any tensor in memory could hold (2^36 elements) are refused before anything is allocated.
/// The values themselves are then checked against this count.
private func elementCount(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>, file: String) throws -> Int {
    let dims = shape(tensor)
    guard let count = try? Checked.product(dims, "dims", limit: 1 << 36) else {
        throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' has dims \(dims), negative or too large")
    }
    return count
}

private func checkLocation(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>, file: String) throws {
    if tensor.pointee.has_data_location != 0 && tensor.pointee.data_location == 1 || tensor.pointee.n_external_data > 0 {
        throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' keeps its data in an external file, which Chorus does not load")
    }
}

/// Raw little-endian bytes of the right size, or nil when the typed field is used instead.
private func rawBytes(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>, elementSize: Int, count: Int, file: String) throws -> UnsafeRawBufferPointer? {
    guard tensor.pointee.has_raw_data != 0 else { return nil }
    let raw = tensor.pointee.raw_data
    guard raw.len == count * elementSize else {
        throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' has \(raw.len) bytes of raw_data; shape \(shape(tensor)) needs \(count * elementSize)")
    }
    return UnsafeRawBufferPointer(start: raw.data, count: raw.len)
}

private func floatTensor(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>, file: String) throws -> Tensor {
    try checkLocation(tensor, file: file)
    let dims = shape(tensor)
    let count = try elementCount(tensor, file: file)
    let type = tensor.pointee.data_type
    // Allocated once the values are known to be there: raw bytes of the right size, or as many typed values.
    let available = tensor.pointee.has_raw_data != 0 ? tensor.pointee.raw_data.len
        : max(tensor.pointee.n_float_data, tensor.pointee.n_int32_data, tensor.pointee.n_int64_data, tensor.pointee.n_double_data)
    guard count <= available else {
        throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' has shape \(dims) but only \(available) values or bytes")
    }
    var out = [Float](repeating: 0, count: count)
    func typed<T>(_ base: UnsafeMutablePointer<T>?, _ n: Int, _ convert: (T) -> Float) throws {
        guard n == count, let base else {
            throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' has \(n) values; shape \(dims) needs \(count)")
        }
        for i in 0..<count { out[i] = convert(base[i]) }
    }
    switch type {
    case DataType.float:
        if let raw = try rawBytes(tensor, elementSize: 4, count: count, file: file) {
            for i in 0..<count { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
        } else {
            try typed(tensor.pointee.float_data, tensor.pointee.n_float_data) { $0 }
        }
    case DataType.float16, DataType.bfloat16:
        let widen: (UInt16) -> Float = type == DataType.float16
            ? { Float(Float16(bitPattern: $0)) } : { Float(bitPattern: UInt32($0) << 16) }
        if let raw = try rawBytes(tensor, elementSize: 2, count: count, file: file) {
            for i in 0..<count { out[i] = widen(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
        } else {
            try typed(tensor.pointee.int32_data, tensor.pointee.n_int32_data) { widen(UInt16(truncatingIfNeeded: $0)) }
        }
    case DataType.double:
        if let raw = try rawBytes(tensor, elementSize: 8, count: count, file: file) {
            for i in 0..<count { out[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
        } else {
            try typed(tensor.pointee.double_data, tensor.pointee.n_double_data) { Float($0) }
        }
    case DataType.int32:
        if let raw = try rawBytes(tensor, elementSize: 4, count: count, file: file) {
            for i in 0..<count { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        } else {
            try typed(tensor.pointee.int32_data, tensor.pointee.n_int32_data) { Float($0) }
        }
    case DataType.uint8, DataType.int8, DataType.bool:
        if let raw = try rawBytes(tensor, elementSize: 1, count: count, file: file) {
            for i in 0..<count { out[i] = type == DataType.int8 ? Float(Int8(bitPattern: raw[i])) : Float(raw[i]) }
        } else {
            try typed(tensor.pointee.int32_data, tensor.pointee.n_int32_data) { Float($0) }
        }
    default:
        throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' has ONNX data type \(type), which Chorus does not load")
    }
    return Tensor(shape: dims, storage: out)
}

private func int64Values(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>, file: String) throws -> [Int64] {
    try checkLocation(tensor, file: file)
    let count = try elementCount(tensor, file: file)
    if let raw = try rawBytes(tensor, elementSize: 8, count: count, file: file) {
        return (0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
    }
    guard tensor.pointee.n_int64_data == count else {
        throw WeightFileError(file, "initializer '\(string(tensor.pointee.name))' has \(tensor.pointee.n_int64_data) values; shape \(shape(tensor)) needs \(count)")
    }
    return (0..<count).map { tensor.pointee.int64_data[$0] }
}

private func readNode(_ node: UnsafeMutablePointer<Onnx__NodeProto>, file: String) throws -> ONNXModel.Node {
    var attributes: [String: ONNXModel.Attribute] = [:]
    for attribute in pointers(node.pointee.attribute, node.pointee.n_attribute) {
        let a = attribute.pointee
        let value: ONNXModel.Attribute?
        switch a.type {
        case 1: value = .float(a.f)
        case 2: value = .int(a.i)
        case 3: value = .string(String(decoding: UnsafeRawBufferPointer(start: a.s.data, count: a.s.len), as: UTF8.self))
        case 4: value = try a.t.map { .tensor(try floatTensor($0, file: file)) }
        case 6: value = .floats((0..<a.n_floats).map { a.floats[$0] })
        case 7: value = .ints((0..<a.n_ints).map { a.ints[$0] })
        case 8: value = .strings((0..<a.n_strings).map { String(decoding: UnsafeRawBufferPointer(start: a.strings[$0].data, count: a.strings[$0].len), as: UTF8.self) })
        default: value = nil  // graphs and sparse tensors: not needed to map weights
        }
        if let value { attributes[string(a.name)] = value }
    }
    return ONNXModel.Node(
        name: string(node.pointee.name), opType: string(node.pointee.op_type), domain: string(node.pointee.domain),
        inputs: (0..<node.pointee.n_input).map { string(node.pointee.input[$0]) },
        outputs: (0..<node.pointee.n_output).map { string(node.pointee.output[$0]) },
        attributes: attributes)
}
