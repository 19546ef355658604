import ChorusInput
import ChorusWire
import Foundation
import HTTPTypes
import Hummingbird

/// An error in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the HTTP status
/// the official clients map to their exception classes.
struct OpenAIError: Error, HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    let type: String
    let code: String?
    let param: String?

    init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error", code: String? = nil, param: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
    }

    static func invalid(_ message: String, param: String? = nil) -> OpenAIError {
        OpenAIError(.badRequest, message, param: param)
    }

    /// 413 for a body past `--http-max-body-mib`.
    static func bodyTooLarge(_ limit: Int) -> OpenAIError {
        OpenAIError(.contentTooLarge, "the request body is larger than the limit of \(limit) bytes (--http-max-body-mib)")
    }

    /// A backend's status in HTTP terms: a missing model or service is 503, as is an unreachable one.
    init(_ status: WireStatus) {
        switch status.code {
        case .invalidArgument, .outOfRange: self.init(.badRequest, status.message)
        case .notFound: self.init(.notFound, status.message, code: "model_not_found")
        case .failedPrecondition, .unavailable: self.init(.serviceUnavailable, status.message, type: "service_unavailable")
        case .resourceExhausted: self.init(.tooManyRequests, status.message, type: "rate_limit_error")
        case .deadlineExceeded: self.init(.gatewayTimeout, status.message, type: "timeout")
        case .unauthenticated: self.init(.unauthorized, status.message, type: "authentication_error")
        case .permissionDenied: self.init(.forbidden, status.message, type: "permission_error")
        case .unimplemented: self.init(.notImplemented, status.message, type: "not_implemented")
        case .cancelled: self.init(HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"), status.message, type: "cancelled")
        default: self.init(.internalServerError, status.message, type: "server_error")
        }
    }

    /// A refused field (ChorusInput) as a 400 naming it.
    init(_ invalid: InvalidField) {
        self.init(.badRequest, invalid.message, param: invalid.field)
    }

    /// Runs a check, answering 400 with the field's name when it refuses.
    static func checking<T>(_ check: () throws -> T) throws -> T {
        do { return try check() } catch let invalid as InvalidField { throw OpenAIError(invalid) }
    }

    static func from(_ error: Error) -> OpenAIError {
        if let error = error as? OpenAIError { return error }
        if let error = error as? InvalidField { return OpenAIError(error) }
        if let error = error as? HTTPError {
            return OpenAIError(error.status, error.body ?? "\(error.status)", type: error.status == .contentTooLarge ? "invalid_request_error" : "server_error")
        }
        return OpenAIError(WireStatus.from(error))
    }

    var json: [String: Any] {
        ["error": ["message": message, "type": type, "param": param ?? NSNull(), "code": code ?? NSNull()] as [String: Any]]
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response.json(json, status: status)
    }
}

extension Response {
    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        // JSONSerialization ends the process on what it cannot write: check first.
        let valid = JSONSerialization.isValidJSONObject(object)
        let data = (valid ? try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) : nil) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func bytes(_ bytes: [UInt8], contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
