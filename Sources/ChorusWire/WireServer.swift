import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// Counters every service reports in Status; measured, not configured.
public final class ServerStats: Sendable {
    private let inFlightCount = Atomic<Int>(0)
    private let total = Atomic<UInt64>(0)
    private let failedCount = Atomic<UInt64>(0)

    public init() {}

    public var inFlight: Int { inFlightCount.load(ordering: .relaxed) }
    public var callsTotal: UInt64 { total.load(ordering: .relaxed) }
    public var callsFailed: UInt64 { failedCount.load(ordering: .relaxed) }

    func recordStarted() {
        inFlightCount.add(1, ordering: .relaxed)
    }

    func recordFinished(failed: Bool) {
        inFlightCount.subtract(1, ordering: .relaxed)
        recordRefused(failed: failed)
    }

    /// A call answered without ever running (an unknown method): counted, never in flight.
    func recordRefused(failed: Bool = true) {
        total.add(1, ordering: .relaxed)
        if failed { failedCount.add(1, ordering: .relaxed) }
    }
}

/// A TCP server speaking the Chorus wire.
public final class WireServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var maxFrameSize: Int
        public var limits: Limits
        /// TLS (ChorusTLS) when set; plain TCP otherwise.
        public var security: ConnectionSecurity?

        public init(host: String = "127.0.0.1", port: Int = 0, maxFrameSize: Int = defaultMaxFrameSize, limits: Limits = Limits(),
                    security: ConnectionSecurity? = nil) {
            self.host = host
            self.port = port
            self.maxFrameSize = maxFrameSize
            self.limits = limits
            self.security = security
        }
    }

    /// What one client may hold of a server: each bound is what a hostile client would otherwise
    /// grow without end (20,000 OPEN frames, unread PONGs, silent sockets, unread request messages).
    public struct Limits: Sendable {
        /// Connections open at once; past it a new one gets GOAWAY (RESOURCE_EXHAUSTED) and is closed.
        public var maxConnections: Int
        /// Streams open at once on one connection. The gateway multiplexes its calls to a replica over
        /// one connection, so this stays well above any service's queue.
        public var maxStreamsPerConnection: Int
        /// A connection with no open stream that sends nothing, not even a PING, for this long is closed
        /// (the client's keepalive PINGs every 20 s by default). nil: never.
        public var idleTimeout: TimeAmount?
        /// Request bytes waiting for handlers on one connection before the server stops reading it
        /// (TCP's backpressure then slows the client down; nothing fails).
        public var maxBufferedBytesPerConnection: Int
        /// Request bytes waiting for handlers in the whole process; a message past it fails its
        /// stream with RESOURCE_EXHAUSTED.
        public var maxBufferedBytes: Int

        public init(maxConnections: Int = 1024, maxStreamsPerConnection: Int = 1024, idleTimeout: TimeAmount? = .seconds(120),
                    maxBufferedBytesPerConnection: Int = 64 << 20, maxBufferedBytes: Int = 1 << 30) {
            self.maxConnections = maxConnections
            self.maxStreamsPerConnection = maxStreamsPerConnection
            self.idleTimeout = idleTimeout
            self.maxBufferedBytesPerConnection = maxBufferedBytesPerConnection
            self.maxBufferedBytes = maxBufferedBytes
        }
    }

    public let configuration: Configuration
    public let logger: Logger
    public let stats = ServerStats()
    /// Request bytes every connection has waiting for handlers (Limits.maxBufferedBytes).
    let bufferedBytes = Atomic<Int>(0)
    private let routes: [String: ServerRoute]
    private let fallback: ServerRoute.RawHandler?
    private let loopRelay: LoopRelay?
    private let group: EventLoopGroup
    private let lock = NIOLock()
    private var serverChannel: Channel?
    private var connections: [ObjectIdentifier: ServerConnection] = [:]
    private var allClosed: [EventLoopPromise<Void>] = []

    /// `fallback` answers methods no route names (the gateway forwards them); without it they are UNIMPLEMENTED.
    /// It must only relay (ServerRoute.relaysOnly): it runs on the connection's event loop. `loopRelay` is
    /// offered those calls first (ServerRoute.loopRelay).
    public init(configuration: Configuration, routes: [ServerRoute], fallback: ServerRoute.RawHandler? = nil,
                loopRelay: LoopRelay? = nil, logger: Logger = Logger(label: "chorus.wire"),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.routes = Dictionary(routes.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        self.fallback = fallback
        self.loopRelay = loopRelay
        self.logger = logger
        self.group = group
    }

    func route(for method: String) -> ServerRoute? {
        routes[method] ?? fallback.map { ServerRoute(path: method, relaysOnly: true, loopRelay: loopRelay, handler: $0) }
    }

    /// Binds and starts accepting; returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let maxFrameSize = configuration.maxFrameSize
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allocator, value: WireMemory.allocator)
            .childChannelInitializer { [self] channel in
                let connection = ServerConnection(server: self, channel: channel)
                let open = lock.withLock {
                    connections[ObjectIdentifier(connection)] = connection
                    return connections.count
                }
                if open > configuration.limits.maxConnections {
                    connection.refusal = WireStatus(.resourceExhausted, "the server has \(open - 1) connections open, its limit (--max-connections); retry later")
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let security = configuration.security {
                        try channel.pipeline.syncOperations.addHandler(try security.serverHandler())
                    }
                    if let idle = configuration.limits.idleTimeout {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)),
                        connection,
                    ])
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        lock.withLock { serverChannel = channel }
        return channel.localAddress?.port ?? configuration.port
    }

    public var localPort: Int? {
        lock.withLock { serverChannel?.localAddress?.port }
    }

    func connectionClosed(_ connection: ServerConnection) {
        let waiters: [EventLoopPromise<Void>] = lock.withLock {
            connections.removeValue(forKey: ObjectIdentifier(connection))
            guard connections.isEmpty else { return [] }
            defer { allClosed = [] }
            return allClosed
        }
        waiters.forEach { $0.succeed(()) }
    }

    /// Graceful shutdown: stop accepting, send GOAWAY, let open calls finish for up to `grace`, then close.
    public func drain(grace: TimeAmount) async {
        let (listener, open) = lock.withLock { (serverChannel, Array(connections.values)) }
        try? await listener?.close()
        logger.info("draining \(open.count) connection(s), \(stats.inFlight) call(s) in flight")
        for connection in open {
            connection.eventLoop.execute { connection.startDraining() }
        }
        let done: EventLoopPromise<Void>? = lock.withLock {
            if connections.isEmpty { return nil }
            let promise = group.next().makePromise(of: Void.self)
            allClosed.append(promise)
            return promise
        }
        guard let done else { return }
        let timeout = group.next().scheduleTask(in: grace) { done.succeed(()) }
        try? await done.futureResult.get()
        timeout.cancel()
        await close()
    }

    /// Closes the listener and every connection at once; in-flight calls fail with UNAVAILABLE.
    public func close() async {
        let (listener, open) = lock.withLock { (serverChannel, Array(connections.values)) }
        try? await listener?.close()
        for connection in open {
            connection.eventLoop.execute { connection.closeNow() }
        }
    }
}
