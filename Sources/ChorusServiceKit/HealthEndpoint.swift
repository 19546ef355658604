import NIOCore
import NIOHTTP1
import NIOPosix

/// Plain HTTP for orchestrators and Prometheus beside a service's wire port (`--health-http-port`), so a kubelet
/// probes it and a scraper reads it without a Chorus client:
///
/// - `GET /livez`: 200 while the process answers at all (a kubelet restarts it when this stops).
/// - `GET /readyz`: 200 once start-up has loaded the models and while calls can be taken; 503 with the reason
///   while loading, draining, or with the compute queue full (the kubelet then sends no new traffic).
/// - `GET /metrics`: the runtime's figures in Prometheus' text format (ServiceRuntime.prometheus).
///
/// It starts before the models load, so a startup probe sees "loading" rather than a refused connection. Every
/// answer closes its connection; a request line or headers past NIO's limits end the connection.
public final class HealthEndpoint: Sendable {
    private let channel: Channel
    /// The port bound (the one asked for, or the kernel's pick for 0).
    public let port: Int

    public static func start(host: String, port: Int, runtime: ServiceRuntime) async throws -> HealthEndpoint {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HealthHandler(runtime: runtime))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw HealthEndpointError(description: "cannot listen for health checks on \(host):\(port): \(error)")
        }
        return HealthEndpoint(channel: channel, port: channel.localAddress?.port ?? port)
    }

    private init(channel: Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public func close() async {
        try? await channel.close()
    }
}

public struct HealthEndpointError: Error, CustomStringConvertible {
    public let description: String
}

/// One request per connection: the head names the route, the end of the request answers it.
private final class HealthHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let runtime: ServiceRuntime
    private var head: HTTPRequestHead?

    init(runtime: ServiceRuntime) {
        self.runtime = runtime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // probes send none; anything sent is read and dropped
        case .end:
            guard let head else { return }
            self.head = nil
            let promise = context.eventLoop.makePromise(of: (HTTPResponseStatus, String, String).self)
            let runtime = runtime
            promise.completeWithTask { await Self.answer(head, runtime: runtime) }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { status, type, body in
                let (handler, context) = bound.value
                handler.respond(context: context, status: status, type: type, body: body, isHead: head.method == .HEAD)
            }
        }
    }

    static func answer(_ head: HTTPRequestHead, runtime: ServiceRuntime) async -> (HTTPResponseStatus, String, String) {
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, "text/plain", "GET /livez, /readyz or /metrics\n")
        }
        switch head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "" {
        case "/livez":
            return (.ok, "application/json", "{\"status\":\"live\",\"service\":\"\(runtime.service)\"}\n")
        case "/readyz":
            let readiness = await runtime.readiness()
            let body = "{\"status\":\"\(readiness.ready ? "ready" : "not ready")\",\"service\":\"\(runtime.service)\",\"reason\":\"\(readiness.reason)\"}\n"
            return (readiness.ready ? .ok : .serviceUnavailable, "application/json", body)
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", await runtime.prometheus())
        default:
            return (.notFound, "text/plain", "not found: this port serves /livez, /readyz and /metrics\n")
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, type: String, body: String, isHead: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !isHead { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
