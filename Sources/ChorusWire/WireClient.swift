import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A client for one server address. Calls share one connection (many streams in flight on it) — calls
/// made on one of the group's event loops share one per loop; a closed or draining connection is replaced
/// on the next call, so a restarted server is reached again.
public final class WireClient: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var maxFrameSize: Int
        public var connectTimeout: TimeAmount
        /// A PING goes out this often; no PONG within `keepaliveTimeout` closes the connection. nil: off.
        public var keepaliveInterval: TimeAmount?
        public var keepaliveTimeout: TimeAmount
        /// Sent with every call unless the call sets the same key itself (a service's API key).
        public var metadata: [String: String]
        /// TLS (ChorusTLS) when set; plain TCP otherwise.
        public var security: ConnectionSecurity?
        /// Answer bytes that may wait unread across the connection's calls before it stops reading
        /// (one frame is always taken, whatever its size): a slow reader slows the server, not memory.
        public var maxBufferedResponseBytes: Int

        public init(maxFrameSize: Int = defaultMaxFrameSize, connectTimeout: TimeAmount = .seconds(2),
                    keepaliveInterval: TimeAmount? = .seconds(20), keepaliveTimeout: TimeAmount = .seconds(10),
                    metadata: [String: String] = [:], security: ConnectionSecurity? = nil,
                    maxBufferedResponseBytes: Int = 8 << 20) {
            self.maxFrameSize = maxFrameSize
            self.maxBufferedResponseBytes = maxBufferedResponseBytes
            self.connectTimeout = connectTimeout
            self.keepaliveInterval = keepaliveInterval
            self.keepaliveTimeout = keepaliveTimeout
            self.metadata = metadata
            self.security = security
        }
    }

    public let host: String
    public let port: Int
    public let configuration: Configuration
    private let group: EventLoopGroup
    /// The group's loops: a call made on one of them gets a connection of its own on that loop.
    private let loops: Set<ObjectIdentifier>
    private let lock = NIOLock()
    private var slots: [Slot.Key: Slot] = [:]
    private var closeObservers: [@Sendable () -> Void] = []

    /// A connection and what keeps it: the shared one, for calls made off the event loops, and one per
    /// event loop for calls made on it (the gateway's relays), so that a relayed call never leaves the
    /// thread its frame arrived on: on loopback a thread hand-off costs more than the whole relay.
    private struct Slot {
        enum Key: Hashable {
            case shared
            case loop(ObjectIdentifier)
        }

        var connection: ClientConnection?
        var connecting: EventLoopFuture<ClientConnection>?
        var keepalive: RepeatedTask?
    }

    public var address: String { "\(host):\(port)" }

    public init(host: String, port: Int, configuration: Configuration = .init(),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.group = group
        loops = Set(group.makeIterator().map { ObjectIdentifier($0) })
    }

    /// "host:port" → client.
    public convenience init(address: String, configuration: Configuration = .init()) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, configuration: configuration)
    }

    /// Called whenever a connection of this client closes (the gateway ejects a replica on it).
    public func onConnectionClosed(_ observer: @escaping @Sendable () -> Void) {
        lock.withLock { closeObservers.append(observer) }
    }

    // MARK: connection

    func readyConnection() async throws -> ClientConnection {
        let current = MultiThreadedEventLoopGroup.currentEventLoop.flatMap { loops.contains(ObjectIdentifier($0)) ? $0 : nil }
        let key: Slot.Key = current.map { .loop(ObjectIdentifier($0)) } ?? .shared
        // A live connection is returned as it is: awaiting even a succeeded future hops to its event loop
        // and back, which is most of what a forwarded call through the gateway costs.
        let loop = current ?? group.next()
        let (ready, pending) = connection(key, on: loop)
        if let ready { return ready }
        guard let future = pending else { throw WireStatus(.internal, "no connection to \(address)") }
        do {
            return try await future.get()
        } catch {
            throw WireStatus(.unavailable, "cannot connect to \(address): \(describe(error))")
        }
    }

    /// The slot's open connection, or the connection being made (started now if none is).
    private func connection(_ key: Slot.Key, on loop: EventLoop) -> (ready: ClientConnection?, pending: EventLoopFuture<ClientConnection>?) {
        let (ready, pending, started): (ClientConnection?, EventLoopFuture<ClientConnection>?, EventLoopPromise<ClientConnection>?) = lock.withLock {
            if let connection = slots[key]?.connection, connection.acceptsNewStreams { return (connection, nil, nil) }
            if let connecting = slots[key]?.connecting { return (nil, connecting, nil) }
            let promise = loop.makePromise(of: ClientConnection.self)
            slots[key, default: Slot()].connecting = promise.futureResult
            return (nil, promise.futureResult, promise)
        }
        // Connecting outside the lock: on its own loop, a refused connect can complete (and take the lock) at once.
        if let started { connect(key, on: loop).cascade(to: started) }
        return (ready, pending)
    }

    private func connect(_ key: Slot.Key, on loop: EventLoop) -> EventLoopFuture<ClientConnection> {
        let maxFrameSize = configuration.maxFrameSize, maxBuffered = configuration.maxBufferedResponseBytes
        let address = self.address
        let security = configuration.security, host = self.host
        let future = ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelOption(.allocator, value: WireMemory.allocator)
            .connect(host: host, port: port)
            .flatMap { channel -> EventLoopFuture<ClientConnection> in
                let connection = ClientConnection(channel: channel, address: address, maxFrameSize: maxFrameSize,
                                                  maxBufferedBytes: maxBuffered) { [weak self] closed in
                    self?.connectionClosed(closed)
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let security {
                        try channel.pipeline.syncOperations.addHandler(try security.clientHandler(host))
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)),
                        connection,
                    ])
                    return connection
                }
            }
        future.whenComplete { [self] result in
            lock.withLock {
                var slot = slots[key] ?? Slot()
                slot.connecting = nil
                if case .success(let connection) = result {
                    slot.connection = connection
                    slot.keepalive?.cancel()
                    slot.keepalive = startKeepalive(connection)
                }
                slots[key] = slot
            }
        }
        return future
    }

    private func startKeepalive(_ connection: ClientConnection) -> RepeatedTask? {
        guard let interval = configuration.keepaliveInterval else { return nil }
        let timeout = configuration.keepaliveTimeout
        return connection.eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { task in
            let promise = connection.eventLoop.makePromise(of: Void.self)
            promise.completeWithTask {
                do {
                    _ = try await connection.ping(timeout: timeout)
                } catch {
                    connection.close()
                    task.cancel()
                }
            }
            return promise.futureResult
        }
    }

    private func connectionClosed(_ closed: ClientConnection) {
        let observers: [@Sendable () -> Void] = lock.withLock {
            for (key, slot) in slots where slot.connection === closed {
                slot.keepalive?.cancel()
                slots[key] = Slot(connection: nil, connecting: slot.connecting, keepalive: nil)
            }
            return closeObservers
        }
        observers.forEach { $0() }
    }

    /// Closes the connections; calls in flight fail with UNAVAILABLE.
    public func close() {
        let current: [ClientConnection] = lock.withLock {
            let open = slots.values.compactMap(\.connection)
            for (key, slot) in slots {
                slot.keepalive?.cancel()
                slots[key] = Slot(connection: slot.connection, connecting: slot.connecting, keepalive: nil)
            }
            return open
        }
        current.forEach { $0.close() }
    }

    /// Round-trip time of a PING.
    public func ping(timeout: TimeAmount = .seconds(2)) async throws -> TimeAmount {
        try await readyConnection().ping(timeout: timeout)
    }

    // MARK: raw calls

    /// Opens a stream for `method`; `first` travels in the OPEN frame.
    public func open(_ method: String, options: CallOptions = .init(), first: ByteBuffer? = nil,
                     endOfStream: Bool = false) async throws -> ClientCall {
        if let deadline = options.deadline, deadline <= .now() {
            throw WireStatus(.deadlineExceeded, "deadline passed before \(method) was sent")
        }
        let connection = try await readyConnection()
        var options = options
        if !configuration.metadata.isEmpty { options.metadata.merge(configuration.metadata) { own, _ in own } }
        return try connection.open(method: method, options: options, first: first, endOfStream: endOfStream)
    }

    /// Opens a stream on this event loop's own connection, its answers told to `answer` there (LoopAnswer):
    /// for a relay running on the loop. nil, having sent nothing, when off the group's loops or the loop has no
    /// open connection that can take the frame now (not yet connected — it starts connecting for the calls
    /// after —, draining, its socket full): the caller takes the async way (`open`). Throws when the frame
    /// cannot be sent.
    public func openOnLoop(_ method: String, options: CallOptions, first: ByteBuffer?, endOfStream: Bool,
                           answer: @escaping (LoopAnswer) -> Void) throws -> LoopUpstream? {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop, loops.contains(ObjectIdentifier(loop)) else { return nil }
        guard let connection = connection(.loop(ObjectIdentifier(loop)), on: loop).ready,
              connection.channel.isWritable else { return nil }
        var options = options
        if !configuration.metadata.isEmpty { options.metadata.merge(configuration.metadata) { own, _ in own } }
        let id = try connection.openOnLoop(method: method, options: options, first: first, endOfStream: endOfStream, answer: answer)
        return LoopUpstream(connection: connection, streamID: id)
    }
}

func describe(_ error: Error) -> String {
    if let status = error as? WireStatus { return status.message }
    if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
        return describe(first.error)
    }
    if let io = error as? IOError {
        return String(cString: strerror(io.errnoCode)).lowercased()
    }
    return "\(error)"
}

/// Parses "host:port" (IPv6 as "[::1]:port").
public func parseAddress(_ text: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw WireStatus(.invalidArgument, "'\(text)' is not host:port")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host.isEmpty ? "127.0.0.1" : host, port)
}
