import ChorusWire
import Foundation

/// A method with JSON bridges, so tools can call any method by name without knowing its types.
public struct AnyMethod: Sendable {
    public let descriptor: MethodDescriptor
    public let requestType: String
    public let responseType: String
    /// JSON (the .proto field names) → wire bytes of the request.
    public let encodeRequest: @Sendable (Data) throws -> [UInt8]
    /// Wire bytes of a response → pretty JSON.
    public let decodeResponse: @Sendable ([UInt8]) throws -> Data
    /// Wire bytes of a request → its JSON (the gateway's pipeline steps read requests this way).
    public let decodeRequest: @Sendable ([UInt8]) throws -> Data

    public init<Request: ChorusMessage, Response: ChorusMessage>(_ descriptor: MethodDescriptor, request: Request.Type, response: Response.Type) {
        self.descriptor = descriptor
        self.requestType = Request.protoName
        self.responseType = Response.protoName
        self.encodeRequest = { json in
            let request: Request
            do {
                request = try JSONDecoder().decode(Request.self, from: json.isEmpty ? Data("{}".utf8) : json)
            } catch {
                throw WireStatus(.invalidArgument, "request JSON is not a \(Request.protoName): \(jsonErrorDescription(error))")
            }
            return try request.wireBytes()
        }
        self.decodeResponse = { bytes in try prettyJSON(Response(wireBytes: bytes)) }
        self.decodeRequest = { bytes in try prettyJSON(Request(wireBytes: bytes)) }
    }
}

func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try encoder.encode(value)
}

/// Where in the JSON decoding failed, in words.
public func jsonErrorDescription(_ error: Error) -> String {
    switch error {
    case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
        return "at \(path(context.codingPath)): expected \(type)"
    case DecodingError.dataCorrupted(let context):
        return "at \(path(context.codingPath)): \(context.debugDescription)"
    case DecodingError.keyNotFound(let key, let context):
        return "at \(path(context.codingPath)): missing \(key.stringValue)"
    default:
        return "\(error)"
    }
}

private func path(_ codingPath: [CodingKey]) -> String {
    codingPath.isEmpty ? "top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}

/// Every method of every Chorus service, by full name.
public enum ChorusMethods {
    public static let all: [String: AnyMethod] = Dictionary(
        (Speech.methods + Vision.methods + Diffusion.methods + Gateway.methods).map { ($0.descriptor.path, $0) },
        uniquingKeysWith: { first, _ in first })
}
