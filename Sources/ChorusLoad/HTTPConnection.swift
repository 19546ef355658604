import ChorusWire
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection of the load generator: a request at a time, its response parts
/// handed over as they arrive (so a server-sent event's arrival time is when its bytes came).
final class HTTPConnection: @unchecked Sendable {
    private let channel: Channel
    private let reader: ResponseReader

    private init(channel: Channel, reader: ResponseReader) {
        self.channel = channel
        self.reader = reader
    }

    static func connect(host: String, port: Int, security: ConnectionSecurity?) async throws -> HTTPConnection {
        let reader = ResponseReader()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let security { try channel.pipeline.syncOperations.addHandler(security.clientHandler(host)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(reader)
                }
            }
            .connect(host: host, port: port).get()
        return HTTPConnection(channel: channel, reader: reader)
    }

    var isActive: Bool { channel.isActive }

    /// Sends a request; the stream ends with the response's end, or throws when the connection fails.
    func send(_ head: HTTPRequestHead, body: ByteBuffer) -> AsyncThrowingStream<HTTPClientResponsePart, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: HTTPClientResponsePart.self)
        channel.eventLoop.execute { [channel, reader] in
            guard channel.isActive else {
                continuation.finish(throwing: WireStatus(.unavailable, "the connection closed"))
                return
            }
            reader.current = continuation
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if body.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { error in
                reader.fail(error)
            }
        }
        return stream
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Passes response parts to the request waiting for them. Lives on the channel's event loop.
private final class ResponseReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    var current: AsyncThrowingStream<HTTPClientResponsePart, Error>.Continuation?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        current?.yield(part)
        if case .end = part {
            current?.finish()
            current = nil
        }
    }

    func fail(_ error: Error) {
        current?.finish(throwing: error)
        current = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(WireStatus(.unavailable, "the server closed the connection"))
        context.fireChannelInactive()
    }
}

/// Idle keep-alive connections to one server, reused by the next call (a closed loop of N callers ends
/// up with N connections, as an HTTP client pool would).
final class HTTPConnectionPool: @unchecked Sendable {
    let host: String
    let port: Int
    let security: ConnectionSecurity?
    private let lock = NSLock()
    private var idle: [HTTPConnection] = []

    init(host: String, port: Int, security: ConnectionSecurity?) {
        self.host = host
        self.port = port
        self.security = security
    }

    func take() async throws -> HTTPConnection {
        while let connection = lock.withLock({ idle.popLast() }) {
            if connection.isActive { return connection }
        }
        return try await HTTPConnection.connect(host: host, port: port, security: security)
    }

    func giveBack(_ connection: HTTPConnection) {
        guard connection.isActive else { return }
        lock.withLock { idle.append(connection) }
    }

    func closeAll() {
        let all = lock.withLock { () -> [HTTPConnection] in
            defer { idle.removeAll() }
            return idle
        }
        for connection in all { connection.close() }
    }
}
