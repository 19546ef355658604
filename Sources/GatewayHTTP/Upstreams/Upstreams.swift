import AsyncHTTPClient
import ChorusWire
import Gateway
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The gateway's upstreams and the one HTTP client (connection pools, TLS) that reaches them.
package final class Upstreams: Sendable {
    package let all: [Upstream]
    let client: HTTPClient
    let logger: Logger

    package init(_ configs: [UpstreamConfig], logger: Logger) {
        all = configs.map(Upstream.init)
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, configs.map(\.maxConcurrent).max() ?? 8)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.logger = logger
    }

    package func shutdown() async { try? await client.shutdown() }

    /// The upstream serving `alias`, and the model it is there.
    func route(_ alias: String) -> (Upstream, UpstreamConfig.Model)? {
        for upstream in all {
            if let model = upstream.config.models.first(where: { $0.alias == alias }) { return (upstream, model) }
        }
        return nil
    }

    /// `/v1/models` entries: each alias, owned by its upstream.
    func modelList() -> [[String: Any]] {
        all.flatMap { upstream in
            upstream.config.models.map { ["id": $0.alias, "object": "model", "created": 0, "owned_by": upstream.name,
                                          "capabilities": $0.capabilities.map(\.rawValue).sorted()] as [String: Any] }
        }
    }

    func readiness() -> [String: Any] {
        Dictionary(uniqueKeysWithValues: all.map { ($0.name, ["healthy": $0.isHealthy, "in_flight": $0.inFlight] as [String: Any]) })
    }

    func metrics() -> String { all.map { $0.metrics() }.joined() }
}

/// Sends a request whose `model` is an upstream alias there, with the upstream's model name and key, and
/// relays the answer: a stream chunk by chunk as it arrives, anything else whole, an error in OpenAI's shape
/// with the upstream's status. Other requests go on to the gateway's own routes with their body intact.
struct UpstreamRouting<Context: RequestContext>: RouterMiddleware {
    let upstreams: Upstreams
    let bodyLimit: Int
    /// The services this gateway is configured for (a discovered one may have no replica yet): a model that is no
    /// alias, on a route whose service is not here, is unknown (404) rather than a missing service (503).
    let localServices: Set<String>

    /// The service that answers each route locally.
    static var localService: [String: String] {
        ["/v1/chat/completions": "vision", "/v1/completions": "vision", "/v1/embeddings": "vision", "/v1/images/generations": "diffusion",
         "/v1/images/edits": "diffusion", "/v1/audio/speech": "speech", "/v1/audio/transcriptions": "speech", "/v1/audio/translations": "speech"]
    }

    /// The routes that can name an upstream model, and whether their body is multipart.
    static var routes: [String: Bool] {
        ["/v1/chat/completions": false, "/v1/completions": false, "/v1/embeddings": false, "/v1/images/generations": false,
         "/v1/images/edits": true, "/v1/audio/speech": false, "/v1/audio/transcriptions": true, "/v1/audio/translations": true]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard request.method == .post, let multipart = Self.routes[path] else { return try await next(request, context) }
        var request = request
        // The alias, if the body names one; anything unreadable goes on to the route, which says what is wrong.
        var model: String?
        var json: [String: Any]?
        if multipart {
            // Read only up to the model field: a form for a local model streams on to the route.
            model = try await MultipartStream.peekModel(&request, limit: bodyLimit)
        } else {
            json = try await request.peekJSON(limit: bodyLimit)
            model = json?["model"] as? String
        }
        guard let model, let match = upstreams.route(model) else {
            if let model, let service = Self.localService[path], !localServices.contains(service) {
                let aliases = upstreams.all.flatMap { $0.config.models.map(\.alias) }.sorted().joined(separator: ", ")
                throw OpenAIError(.notFound, "model '\(model)' is not served here: no upstream model has that name (\(aliases)) and this "
                                  + "gateway has no \(service) service of its own", code: "model_not_found", param: "model")
            }
            return try await next(request, context)
        }
        let (upstream, target) = match
        let route = String(path.dropFirst(3))  // "/chat/completions"
        guard target.capabilities.contains(where: { $0.routes.contains(route) }) else {
            throw OpenAIError.invalid("model '\(model)' (upstream '\(upstream.name)') does not serve \(path); it serves "
                                      + target.capabilities.flatMap { $0.routes.map { "/v1" + $0 } }.sorted().joined(separator: ", "), param: "model")
        }
        if let json, !target.capabilities.contains(.vision), Self.hasImages(json) {
            throw OpenAIError.invalid("model '\(model)' (upstream '\(upstream.name)') does not take images: its capabilities are "
                                      + target.capabilities.map(\.rawValue).sorted().joined(separator: ", ") + " (add \"vision\")", param: "messages")
        }
        let (outgoing, outgoingType): ([UInt8], String)
        if var json {
            json["model"] = target.model
            outgoing = [UInt8](try JSONSerialization.data(withJSONObject: json))
            outgoingType = "application/json"
        } else if multipart {
            var stream = try MultipartStream(request, limit: bodyLimit)
            let form = MultipartForm(parts: try await stream.gatherParts())
            let boundary = "chorus-" + UUID().uuidString
            outgoing = form.encoded(boundary: boundary, replacing: ["model": target.model])
            outgoingType = "multipart/form-data; boundary=\(boundary)"
        } else {
            return try await next(request, context)
        }
        let streaming = (json?["stream"] as? Bool) == true
        return try await upstreams.relay(outgoing, contentType: outgoingType, route: route, to: upstream, streaming: streaming)
    }

    /// Whether a chat request carries image parts (OpenAI's `image_url`), which only a vision model may take.
    static func hasImages(_ json: [String: Any]) -> Bool {
        (json["messages"] as? [Any] ?? []).contains { message in
            ((message as? [String: Any])?["content"] as? [Any] ?? []).contains { ($0 as? [String: Any])?["type"] as? String == "image_url" }
        }
    }

}

extension Upstreams {
    /// Sends `body` to the upstream's `route` under its limits and breaker; the slot is finished by the caller
    /// once the answer has been read (or abandoned).
    func send(_ body: [UInt8], contentType: String, route: String, to upstream: Upstream,
              deadline: NIODeadline? = nil) async throws -> (HTTPClientResponse, Upstream.Slot) {
        let slot = try upstream.admit()
        var outgoing = HTTPClientRequest(url: upstream.config.baseURL + route)
        outgoing.method = .POST
        outgoing.headers.add(name: "Content-Type", value: contentType)
        if let key = upstream.config.apiKey { outgoing.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let header = upstream.config.requestIDHeader, let id = RequestNote.requestID { outgoing.headers.add(name: header, value: id) }
        outgoing.body = .bytes(ByteBuffer(bytes: body))
        let own = NIODeadline.now() + .nanoseconds(Int64(upstream.config.timeoutSeconds * 1e9))  // checked: at most 3600 s
        do {
            return (try await Self.execute(outgoing, client: client, deadline: min(own, deadline ?? own)), slot)
        } catch {
            slot.finish(status: nil)
            throw Self.failure(error, upstream: upstream)
        }
    }

    /// The upstream's answer as an HTTP response: a stream relayed chunk by chunk, anything else whole, errors
    /// with the upstream's status.
    func relay(_ body: [UInt8], contentType: String, route: String, to upstream: Upstream, streaming: Bool) async throws -> Response {
        let (answer, slot) = try await send(body, contentType: contentType, route: route, to: upstream)
        let status = Int(answer.status.code)  // checked: an HTTP status, three digits
        let type = answer.headers.first(name: "content-type") ?? "application/json"
        if streaming, status == 200, type.hasPrefix("text/event-stream") {
            // Each chunk goes out as it arrives; the client going away ends the loop and cancels the upstream call.
            let body = ResponseBody { writer in
                for try await chunk in answer.body { try await writer.write(chunk) }
                slot.finish(status: status)
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: body)
        }
        let bytes = try await whole(answer, slot: slot, upstream: upstream)
        if status >= 400 {
            // The upstream's own error when it has OpenAI's shape, else one made of its status and text.
            if let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any], object["error"] != nil {
                return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
            let text = String(decoding: bytes.prefix(500), as: UTF8.self)
            throw OpenAIError(.init(code: status), "upstream '\(upstream.name)' answered \(status): \(text)", type: "upstream_error")
        }
        return Response(status: .init(code: status), headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The whole body of an answer (at most 256 MiB), the slot finished with its status.
    func whole(_ answer: HTTPClientResponse, slot: Upstream.Slot, upstream: Upstream) async throws -> [UInt8] {
        do {
            var collected = try await answer.body.collect(upTo: 256 << 20)
            slot.finish(status: Int(answer.status.code))  // checked: an HTTP status, three digits
            return collected.readBytes(length: collected.readableBytes) ?? []
        } catch {
            slot.finish(status: nil)
            throw Self.failure(error, upstream: upstream)
        }
    }

    /// Pipeline steps for the upstream models: `upstream.chat`, `upstream.completions`, `upstream.embeddings` and
    /// `upstream.images` take the OpenAI request (with `model` an alias) and answer the upstream's JSON; a chat's
    /// output also has `text`, the reply, as a local chat step's does.
    package func registerSteps(on steps: ExternalSteps) {
        for (name, route) in [("upstream.chat", "/chat/completions"), ("upstream.completions", "/completions"),
                              ("upstream.embeddings", "/embeddings"), ("upstream.images", "/images/generations")] {
            steps.register(name) { [self] request, deadline in
                guard var json = (try? JSONSerialization.jsonObject(with: request)) as? [String: Any] else {
                    throw WireStatus(.invalidArgument, "\(name): the request is not a JSON object")
                }
                guard let alias = json["model"] as? String, let match = self.route(alias) else {
                    let known = all.flatMap { $0.config.models.map(\.alias) }.sorted().joined(separator: ", ")
                    throw WireStatus(.invalidArgument, "\(name): 'model' must be an upstream model (\(known))")
                }
                let (upstream, target) = match
                guard target.capabilities.contains(where: { $0.routes.contains(route) }) else {
                    throw WireStatus(.invalidArgument, "\(name): model '\(alias)' (upstream '\(upstream.name)') does not serve /v1\(route)")
                }
                json["model"] = target.model
                json["stream"] = false
                do {
                    let (answer, slot) = try await send([UInt8](try JSONSerialization.data(withJSONObject: json)), contentType: "application/json",
                                                        route: route, to: upstream, deadline: deadline)
                    let bytes = try await whole(answer, slot: slot, upstream: upstream)
                    let status = Int(answer.status.code)  // checked: an HTTP status, three digits
                    guard var output = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any], status < 400 else {
                        let message = (((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any])?["error"] as? [String: Any])?["message"] as? String
                        throw WireStatus(Self.code(status), "upstream '\(upstream.name)' answered \(status): \(message ?? String(decoding: bytes.prefix(300), as: UTF8.self))")
                    }
                    if let reply = ((output["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String {
                        output["text"] = reply
                    }
                    return try JSONSerialization.data(withJSONObject: output)
                } catch let error as OpenAIError {
                    throw WireStatus(Self.code(Int(error.status.code)), error.message)  // checked: an HTTP status, three digits
                }
            }
        }
    }

    static func code(_ status: Int) -> StatusCode {
        switch status {
        case 400, 413, 422: return .invalidArgument
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .notFound
        case 429: return .resourceExhausted
        case 499: return .cancelled
        case 504: return .deadlineExceeded
        case 500...: return .unavailable
        default: return .unknown
        }
    }

    /// One request. A connection that cannot be made is retried by the client's pool (with back-off) until the
    /// connect timeout, 3 s — nothing was sent, so that is safe; a request that was sent is never sent again.
    static func execute(_ request: HTTPClientRequest, client: HTTPClient, deadline: NIODeadline) async throws -> HTTPClientResponse {
        try await client.execute(request, deadline: deadline)
    }

    /// An upstream that did not answer, in OpenAI's shape: 504 past its timeout, 499 when the client left, else 503.
    static func failure(_ error: Error, upstream: Upstream) -> OpenAIError {
        if error is CancellationError || (error as? HTTPClientError) == .cancelled {
            return OpenAIError(.init(code: 499, reasonPhrase: "Client Closed Request"), "cancelled", type: "cancelled")
        }
        if let client = error as? HTTPClientError, client == .deadlineExceeded || client == .readTimeout {
            return OpenAIError(.gatewayTimeout, "upstream '\(upstream.name)' did not answer within \(upstream.config.timeoutSeconds) s", type: "timeout")
        }
        return OpenAIError(.serviceUnavailable, "upstream '\(upstream.name)' at \(upstream.config.baseURL) is unreachable: \(error)",
                           type: "service_unavailable", code: "upstream_unavailable")
    }
}

extension MultipartForm {
    /// The form again, with some fields' values replaced.
    func encoded(boundary: String, replacing: [String: String]) -> [UInt8] {
        var out: [UInt8] = []
        for part in parts {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { head += "; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream" }
            out += Array((head + "\r\n\r\n").utf8)
            out += replacing[part.name].map { Array($0.utf8) } ?? part.data
            out += Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }
}
