import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes

/// Read deadlines for one HTTP connection, so slowloris clients (a header byte every few seconds, a
/// body that never finishes) cannot hold connections for ever. A request's head must be complete
/// within `headTimeout` of the connection opening or the previous response ending; while a body is
/// read, no `bodyTimeout` may pass without a byte of it. A late head is answered 408; a stalled body
/// closes the connection (its handler is reading it and sees the close).
final class RequestReadTimeouts: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    let logger: Logger
    private var timer: Scheduled<Void>?
    private var readingBody = false
    /// A request is read and its response not yet written.
    private var awaitingResponse = false

    init(headTimeout: TimeAmount, bodyTimeout: TimeAmount, logger: Logger) {
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { waitForHead(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        waitForHead(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            readingBody = true
            waitForBody(context)
        case .body:
            waitForBody(context)
        case .end:
            readingBody = false
            awaitingResponse = true
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
        // While the handler works nobody reads the socket, so a client that hangs up would go unseen:
        // one read lets its end of file arrive (see userInboundEventTriggered).
        if awaitingResponse { context.read() }
    }

    /// The client closed its side while its request was being answered: it has gone (a killed curl,
    /// a closed browser tab). Closing the connection cancels the request (CancelOnDisconnect).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, awaitingResponse {
            logger.debug("the client closed its connection before its response; cancelling the request")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            // The response is out: the next request's head is due (keep-alive).
            awaitingResponse = false
            let written = promise ?? context.eventLoop.makePromise()
            written.futureResult.whenSuccess { [self] in if !readingBody { waitForHead(context) } }
            context.write(data, promise: written)
            return
        }
        context.write(data, promise: promise)
    }

    private func waitForHead(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let seconds = headTimeout.nanoseconds / 1_000_000_000
        timer = context.eventLoop.scheduleTask(in: headTimeout) { [self] in
            logger.debug("closing an HTTP connection whose request head did not arrive within \(seconds) s")
            let head = HTTPResponse(status: .requestTimeout, headerFields: [.connection: "close", .contentLength: "0"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            context.close(promise: nil)
        }
    }

    private func waitForBody(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let seconds = bodyTimeout.nanoseconds / 1_000_000_000
        timer = context.eventLoop.scheduleTask(in: bodyTimeout) { [self] in
            logger.info("closing an HTTP connection whose request body stalled for \(seconds) s")
            context.close(promise: nil)
        }
    }
}

/// A request context that keeps its connection, so a handler can be cancelled when the client leaves.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// A client that closes its connection cancels its request: the call through the gateway is cancelled
/// and the service stops the work (a transcription whose client left ran to its end before).
struct CancelOnDisconnect: RouterMiddleware {
    func handle(_ request: Request, context: GatewayRequestContext,
                next: (Request, GatewayRequestContext) async throws -> Response) async throws -> Response {
        let (closed, closing) = AsyncStream<Never>.makeStream()
        context.channel.closeFuture.whenComplete { _ in closing.finish() }
        return try await withoutActuallyEscaping(next) { next in
            try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask { try await next(request, context) }
                group.addTask {
                    // Ends when the connection closes, or when cancelled because the response is ready.
                    for await _ in closed {}
                    try Task.checkCancellation()
                    return nil
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let response = result { return response }
                    // The connection is gone: cancel the handler and answer nobody.
                    group.cancelAll()
                    throw CancellationError()
                }
                throw CancellationError()
            }
        }
    }
}
