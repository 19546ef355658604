import ChorusWire
import Dispatch
import Foundation
import Logging
import NIOCore

/// Runs a WireServer until SIGTERM or SIGINT, then drains: GOAWAY, open calls finish, the process exits.
public enum ServiceHost {
    public static func serve(routes: [ServerRoute], fallback: ServerRoute.RawHandler? = nil, loopRelay: LoopRelay? = nil,
                             host: String, port: Int, maxFrameSize: Int = defaultMaxFrameSize,
                             limits: WireServer.Limits = WireServer.Limits(), security: ConnectionSecurity? = nil,
                             drainGrace: TimeAmount = .seconds(30), logger: Logger,
                             onStarted: (String, WireServer) -> Void = { _, _ in }, onDraining: @escaping @Sendable () -> Void = {}) async throws {
        let signals = TerminationSignals()
        let server = WireServer(configuration: .init(host: host, port: port, maxFrameSize: maxFrameSize, limits: limits, security: security),
                                routes: routes, fallback: fallback, loopRelay: loopRelay, logger: logger)
        let boundPort: Int
        do {
            boundPort = try await server.start()
        } catch {
            throw WireStatus(.unavailable, "cannot listen on \(host):\(port): \(error)")
        }
        let address = "\(host):\(boundPort)"
        if let security { logger.info("connections use \(security.name)") }
        onStarted(address, server)
        let signal = await signals.next()
        logger.info("received \(signal); draining (grace \(drainGrace.nanoseconds / 1_000_000_000) s)")
        onDraining()
        await server.drain(grace: drainGrace)
        logger.info("stopped")
    }

}

/// SIGTERM and SIGINT, caught from the moment this is created, so a signal during start-up is not lost.
public final class TerminationSignals: @unchecked Sendable {
    private let stream: AsyncStream<String>
    private var sources: [DispatchSourceSignal] = []

    public init() {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        self.stream = stream
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
    }

    /// Suspends until the next signal; returns its name.
    public func next() async -> String {
        for await name in stream { return name }
        return "end of signals"
    }
}
