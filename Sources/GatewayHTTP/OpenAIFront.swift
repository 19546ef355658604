import ChorusAPI
import ChorusWire
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The OpenAI-compatible HTTP front of the gateway. Every endpoint is a thin translation onto a
/// native call opened on the gateway's router in this process, so HTTP requests get the same routing,
/// failover, health and per-service limits as native ones, without a hop through the gateway's port.
public struct OpenAIFront: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var maxBodyBytes: Int
        /// When set, every request must carry `Authorization: Bearer <key>`.
        public var apiKey: String?
        /// A request head must arrive within this of the connection opening (or the last response).
        public var headTimeout: TimeAmount
        /// A request body may not stall for longer than this.
        public var bodyTimeout: TimeAmount
        /// A keep-alive connection with no request in progress is closed after this.
        public var idleTimeout: TimeAmount
        /// Connections open at once; more wait in the listen backlog until one closes.
        public var maxConnections: Int
        /// TLS: wraps the HTTP/1 server (the gateway command builds it with HummingbirdTLS, so this
        /// target links no TLS library); nil serves plain HTTP.
        public var secureServer: (@Sendable (HTTPServerBuilder) throws -> HTTPServerBuilder)?
        /// OpenAI-compatible servers whose models this front serves beside the local ones (`--upstreams`).
        package var upstreams: Upstreams?
        /// Named keys with their models and limits (`--api-keys`); checked instead of `apiKey` when set.
        package var keyPolicies: KeyPolicies?
        /// The browser playground at `/` (`--no-playground` turns it off).
        public var playground = true
        /// Serve the playground's files from this folder, read on every request, instead of those built in
        /// (CHORUS_PLAYGROUND_DIR: for working on the page without rebuilding).
        public var playgroundDirectory: String?

        public init(host: String = "127.0.0.1", port: Int = 7180, maxBodyBytes: Int = 64 << 20, apiKey: String? = nil,
                    headTimeout: TimeAmount = .seconds(10), bodyTimeout: TimeAmount = .seconds(30),
                    idleTimeout: TimeAmount = .seconds(60), maxConnections: Int = 1024,
                    secureServer: (@Sendable (HTTPServerBuilder) throws -> HTTPServerBuilder)? = nil) {
            self.secureServer = secureServer
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
            self.apiKey = apiKey
            self.headTimeout = headTimeout
            self.bodyTimeout = bodyTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
        }
    }

    let settings: Settings
    let gateway: ChorusGateway
    let logger: Logger

    public init(settings: Settings, gateway: ChorusGateway, logger: Logger) {
        self.settings = settings
        self.gateway = gateway
        self.logger = logger
    }

    func router() -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestIDs())
        router.add(middleware: RequestMetrics(metrics: gateway.metrics))
        router.add(middleware: ErrorShape(logger: logger))
        router.add(middleware: CancelOnDisconnect())
        let limit = settings.maxBodyBytes
        if let policies = settings.keyPolicies {
            router.add(middleware: KeyPolicyCheck(policies: policies, bodyLimit: limit))
        } else if let key = settings.apiKey {
            router.add(middleware: BearerToken(key: key))
        }
        let upstreams = settings.upstreams
        if let upstreams {
            router.add(middleware: UpstreamRouting(upstreams: upstreams, bodyLimit: limit,
                                                       localServices: Set(gateway.pools.keys)))
            upstreams.registerSteps(on: gateway.externalSteps)
        }
        // The front's own key was checked above; the router's clients present the services' key.
        let options = CallOptions()
        let services = gateway.router
        let chat = ChatCompletions(vision: VisionClient(services), speech: SpeechClient(services), bodyLimit: limit, options: options)
        let completions = Completions(vision: VisionClient(services), bodyLimit: limit, options: options)
        let embeddings = Embeddings(vision: VisionClient(services), bodyLimit: limit, options: options)
        let audio = AudioRoutes(speech: SpeechClient(services), bodyLimit: limit, options: options)
        let images = ImageRoutes(diffusion: DiffusionClient(services), vision: VisionClient(services), bodyLimit: limit, options: options)
        let pipelines = PipelineRoute(gateway: gateway, bodyLimit: limit)
        if settings.playground { Playground(directory: settings.playgroundDirectory).register(on: router) }
        router.get("/healthz") { _, _ in Response.json(["status": "ok"]) }
        router.get("/readyz") { _, _ in readiness() }
        router.get("/metrics") { _, _ in
            Response.bytes(Array((gateway.metrics.render(pools: gateway.pools) + (upstreams?.metrics() ?? "") + (settings.keyPolicies?.metrics() ?? "")).utf8), contentType: "text/plain; version=0.0.4")
        }
        router.get("/v1/models") { _, _ in await models() }
        router.post("/v1/chat/completions") { request, _ in try await chat.handle(request) }
        router.post("/v1/completions") { request, _ in try await completions.handle(request) }
        router.post("/v1/embeddings") { request, _ in try await embeddings.handle(request) }
        router.post("/v1/audio/speech") { request, _ in try await audio.speak(request) }
        router.post("/v1/audio/transcriptions") { request, _ in try await audio.transcribe(request, translate: false) }
        router.post("/v1/audio/translations") { request, _ in try await audio.transcribe(request, translate: true) }
        router.post("/v1/images/generations") { request, _ in try await images.generate(request) }
        router.post("/v1/images/edits") { request, _ in try await images.edit(request) }
        router.post("/v1/prompts/preview") { request, _ in try await images.preview(request) }
        router.post("/v1/pipelines") { request, _ in try await pipelines.handle(request) }
        router.post("/v1/echo") { request, _ in try await echo(request, options: options) }
        return router
    }

    /// 200 when every configured service has a healthy replica, else 503 naming those that do not.
    func readiness() -> Response {
        var services: [String: Any] = [:], missing: [String] = []
        for (name, pool) in gateway.pools.sorted(by: { $0.key < $1.key }) {
            let healthy = pool.replicas.filter { $0.isHealthy }.count
            services[name] = ["healthy_replicas": healthy, "replicas": pool.replicas.count]
            if healthy == 0 { missing.append(name) }
        }
        // Upstreams are reported, not required: the local services answer whatever state they are in.
        let upstreams = settings.upstreams?.readiness() ?? [:]
        if missing.isEmpty { return Response.json(["status": "ready", "services": services, "upstreams": upstreams]) }
        return Response.json(["status": "not ready", "services": services, "upstreams": upstreams,
                              "error": "no healthy replica for \(missing.joined(separator: ", "))"], status: .serviceUnavailable)
    }

    /// A Chorus diagnostic, like the native Echo: `{"service": "speech", "payload": base64}` is echoed by
    /// that service through the gateway, so `chorus bench gateway` can time the HTTP front alone.
    func echo(_ request: Request, options: CallOptions) async throws -> Response {
        let fields = JSONFields(try await request.jsonObject(limit: settings.maxBodyBytes))
        let payload = Data(base64Encoded: try fields.string("payload") ?? "") ?? Data()
        let echo = EchoRequest(payload: payload)
        let answer: EchoResponse
        switch try fields.string("service") ?? "speech" {
        case "speech": answer = try await SpeechClient(gateway.router).echo(echo, options: options)
        case "vision": answer = try await VisionClient(gateway.router).echo(echo, options: options)
        case "diffusion": answer = try await DiffusionClient(gateway.router).echo(echo, options: options)
        case let other: throw OpenAIError.invalid("'service' is '\(other)'; services are speech, vision and diffusion", param: "service")
        }
        return Response.json(["payload": answer.payload.base64EncodedString(), "served_by": answer.servedBy])
    }

    /// What every service has loaded, as OpenAI's model list (`owned_by` names the service).
    func models() async -> Response {
        let listed = await gateway.listModels()
        let data = listed.models.map { model -> [String: Any] in
            ["id": model.name, "object": "model", "created": 0, "owned_by": "chorus", "kind": model.kind]
        }
        return Response.json(["object": "list", "data": data + (settings.upstreams?.modelList() ?? [])])
    }

    /// Serves until the task is cancelled; `onStarted` gets the bound address ("127.0.0.1:7180").
    public func run(onStarted: @escaping @Sendable (String) async -> Void) async throws {
        let settings = self.settings, logger = self.logger
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestReadTimeouts(headTimeout: settings.headTimeout, bodyTimeout: settings.bodyTimeout, logger: logger)],
            idleTimeout: settings.idleTimeout)
        var configuration = ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: "chorus-gateway")
        configuration.availableConnectionsDelegate = .maximum(settings.maxConnections, logger: logger)
        let plain = HTTPServerBuilder.http1(configuration: http1)
        let app = Application(
            router: router(),
            server: try settings.secureServer?(plain) ?? plain,
            configuration: configuration,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.port
                await onStarted("\(settings.host):\(port)")
            },
            logger: logger)
        try await app.run()
    }
}

/// Counts and times every request by its route (the matched path, so ids in URLs cannot explode the series).
struct RequestMetrics<Context: RequestContext>: RouterMiddleware {
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = context.endpointPath ?? "unmatched"
        // Methods are client text too (any token is a valid HTTP method): the usual ones, or "other".
        let method = ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"].contains("\(request.method)") ? "\(request.method)" : "other"
        let finished = metrics.httpRequestStarted(method: method, route: route)
        do {
            let response = try await next(request, context)
            finished("\(response.status.code)")
            return response
        } catch {
            finished("\((error as? HTTPResponseError)?.status.code ?? 500)")
            throw error
        }
    }
}

/// Each request gets an id: the client's `X-Request-Id` when it is a sane token, else a new one. It
/// goes to the services as `request-id` metadata (their logs and crash reports name it) and comes
/// back in the response's `X-Request-Id`.
struct RequestIDs<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let given = request.headers[.requestID] ?? ""
        let sane = (1...64).contains(given.utf8.count) && given.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 45 || byte == 95 || byte == 46
        }
        let id = sane ? given : RequestNote.newID()
        var response = try await RequestNote.$requestID.withValue(id) { try await next(request, context) }
        response.headers[.requestID] = id
        return response
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
}

/// Every failure leaves in OpenAI's error shape, whatever threw it.
struct ErrorShape<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let shaped = OpenAIError.from(error)
            if shaped.status.code >= 500 { logger.warning("\(request.method) \(request.uri.path): \(shaped.message)") }
            var response = Response.json(shaped.json, status: shaped.status)
            // A full queue or a missing replica: say when to come back rather than have clients hammer.
            if shaped.status == .tooManyRequests || shaped.status == .serviceUnavailable { response.headers[.retryAfter] = "1" }
            return response
        }
    }
}

/// What answers without credentials: the probes an orchestrator calls (a Kubernetes readiness probe on /readyz, a
/// liveness probe on /healthz), which tell states and counts, never models or data; and the playground's page and
/// files, which hold no data and ask the person for the key that the API calls they make then carry.
enum OpenProbes {
    static let paths: Set<String> = ["/healthz", "/readyz", "/"]

    static func isOpen(_ path: String) -> Bool {
        paths.contains(path) || path.hasPrefix(Playground.prefix)
    }
}

/// `Authorization: Bearer <key>`, compared in constant time so the key cannot be guessed byte by byte.
struct BearerToken<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if OpenProbes.isOpen(request.uri.path) { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let given = header.hasPrefix("Bearer ") ? Array(header.utf8.dropFirst(7)) : []
        guard constantTimeEqual(given, Array(key.utf8)) else {
            throw OpenAIError(.unauthorized, given.isEmpty ? "missing API key: send Authorization: Bearer <key>" : "incorrect API key",
                              type: "invalid_request_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }
}
