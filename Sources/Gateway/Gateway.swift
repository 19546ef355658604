import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The front door: forwards every service method to a healthy replica and answers its own
/// Health/Status/ListModels with the picture across all services.
public final class Gateway: Sendable {
    public struct Configuration: Sendable {
        /// Service name ("vision", "diffusion", "speech") → replica addresses.
        public var services: [String: [String]]
        public var healthInterval: TimeAmount
        public var healthTimeout: TimeAmount
        /// Calls relayed to one service at once; past it a call is refused with RESOURCE_EXHAUSTED
        /// (HTTP 429) at once, so nothing queues without bound in the gateway.
        public var maxInFlightPerService: Int
        /// The key the services require (their --api-key), sent on every call to them.
        public var serviceKey: APIKey?
        /// TLS to the services (ChorusTLS), when they listen with it.
        public var serviceSecurity: ConnectionSecurity?
        /// How often `dns:///` and `file://` replica sources are read again (runDiscovery).
        public var discoveryInterval: TimeAmount = .seconds(5)

        public init(services: [String: [String]], healthInterval: TimeAmount = .milliseconds(500),
                    healthTimeout: TimeAmount = .seconds(1), maxInFlightPerService: Int = 512, serviceKey: APIKey? = nil,
                    serviceSecurity: ConnectionSecurity? = nil) {
            self.services = services
            self.healthInterval = healthInterval
            self.healthTimeout = healthTimeout
            self.maxInFlightPerService = maxInFlightPerService
            self.serviceKey = serviceKey
            self.serviceSecurity = serviceSecurity
        }
    }

    /// The wire service each backend name serves.
    public static let serviceNames: [String: String] = [
        "vision": Vision.serviceName,
        "diffusion": Diffusion.serviceName,
        "speech": Speech.serviceName,
    ]

    public let configuration: Configuration
    public let pools: [String: ReplicaPool]
    /// The services whose replicas come (in part) from names or files, with all their sources.
    let discovered: [String: [ReplicaSource]]
    /// Discovery rounds finished (tests wait on it to see a round pass without change).
    let discoveryRounds = NIOLockedValueBox(0)
    /// Where every call to a service is opened: forwarded calls, pipeline steps and the HTTP front.
    public let router: ServiceRouter
    public let metrics = GatewayMetrics()
    /// Pipeline steps outside the services (the HTTP front's upstream models).
    public let externalSteps = ExternalSteps()
    let logger: Logger

    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var pools: [String: ReplicaPool] = [:], discovered: [String: [ReplicaSource]] = [:]
        for (service, addresses) in configuration.services where !addresses.isEmpty {
            guard Self.serviceNames[service] != nil else {
                throw WireStatus(.invalidArgument, "unknown service '\(service)'; the gateway knows \(Self.serviceNames.keys.sorted().joined(separator: ", "))")
            }
            let sources = try addresses.map(ReplicaSource.init)
            if sources.contains(where: \.isDynamic) {
                // Discovered replicas join at the first runDiscovery round, fixed ones with them.
                discovered[service] = sources
                pools[service] = ReplicaPool(service: service, replicas: [])
            } else {
                pools[service] = ReplicaPool(service: service, replicas: try addresses.map { try Self.replica(service, $0, configuration, logger) })
            }
        }
        self.pools = pools
        self.discovered = discovered
        router = ServiceRouter(pools: pools, maxInFlightPerService: configuration.maxInFlightPerService, metrics: metrics, logger: logger)
    }

    /// A replica and its client; a replica whose connection drops is ejected at once, not at the next health check.
    static func replica(_ service: String, _ address: String, _ configuration: Configuration, _ logger: Logger, healthy: Bool = true) throws -> Replica {
        let client = try WireClient(address: address, configuration: .init(metadata: configuration.serviceKey?.metadata ?? [:], security: configuration.serviceSecurity))
        let replica = Replica(service: service, client: client, healthy: healthy)
        client.onConnectionClosed { [weak replica, logger] in
            guard let replica, replica.setHealthy(false, error: "connection closed") else { return }
            logger.warning("\(replica.service) replica \(replica.address) ejected: connection closed")
        }
        return replica
    }

    // MARK: discovery

    /// Reads every `dns:///` and `file://` source each `discoveryInterval` and makes each pool's members what they
    /// name: a new address joins unhealthy and takes calls once its first health check (at once) passes; an
    /// address gone leaves at once for new calls, and its connection closes when its calls in flight have ended.
    /// A source that cannot be read keeps the members it gave last. Runs until cancelled.
    public func runDiscovery() async {
        var failing: [String: String] = [:]
        while !Task.isCancelled {
            for (service, sources) in discovered.sorted(by: { $0.key < $1.key }) {
                guard let pool = pools[service] else { continue }
                var addresses: [String] = [], readable = true
                for source in sources {
                    do {
                        addresses += try await source.resolve()
                        if failing.removeValue(forKey: source.description) != nil { logger.info("\(service): \(source) readable again") }
                    } catch {
                        readable = false
                        let message = WireStatus.from(error).message
                        if failing.updateValue(message, forKey: source.description) != message {
                            logger.warning("\(service): \(source): \(message); keeping the replicas it gave before")
                        }
                    }
                }
                // An unreadable source keeps what it gave: members are only added while any source fails.
                if !readable { addresses += pool.replicas.map(\.address) }
                let unique = Array(Set(addresses)).sorted()
                do {
                    let (joined, left) = try pool.update(to: unique) { address in
                        try Self.replica(service, address, configuration, logger, healthy: false)
                    }
                    for replica in joined {
                        logger.info("\(service) replica \(replica.address) joined (\(sources.filter(\.isDynamic).map(\.description).joined(separator: ", "))); admitted after its first health check")
                        Task { await self.probe(replica) }
                    }
                    for replica in left {
                        logger.info("\(service) replica \(replica.address) left; no new calls reach it, its \(replica.inFlight) calls in flight finish first")
                        Task { await Self.closeWhenIdle(replica) }
                    }
                } catch {
                    logger.warning("\(service): \(WireStatus.from(error).message)")
                }
            }
            discoveryRounds.withLockedValue { $0 += 1 }
            try? await Task.sleep(nanoseconds: UInt64(configuration.discoveryInterval.nanoseconds))  // checked: --discovery-interval-ms is 10 ... 86400000
        }
    }

    /// Closes a departed replica's connection once nothing is in flight on it (or after ten minutes).
    static func closeWhenIdle(_ replica: Replica) async {
        let giveUp = ContinuousClock.now + .seconds(600)
        while replica.inFlight > 0 && ContinuousClock.now < giveUp {
            try? await Task.sleep(for: .milliseconds(50))
        }
        replica.client.close()
    }

    /// The server routes: the gateway's own methods, plus `forward` for every other method.
    public var routes: [ServerRoute] {
        GatewayServer(gateway: self).routes
    }

    /// `routes`, `forward` and `relayOnLoop` requiring the clients' key, except the gateway's own Health.
    public func requiringKey(_ key: APIKey) -> (routes: [ServerRoute], fallback: ServerRoute.RawHandler, loopRelay: LoopRelay) {
        (key.guarding(routes, who: "the gateway"), key.guarding(forward, who: "the gateway"),
         key.guarding(relayOnLoop, who: "the gateway"))
    }

    // MARK: forwarding

    /// Relays one call to a replica, frame for frame: deadline, metadata and cancellation pass through.
    /// (The router counts the call in the metrics.)
    @Sendable public func forward(_ call: ServerCall) async throws -> ByteBuffer? {
        let method = call.context.method
        // Unary and server-streaming calls carry their one request in the OPEN frame, as the caller sent it.
        let kind = ChorusMethods.all[method]?.descriptor.kind ?? .bidirectionalStreaming
        var requests = call.requests.makeAsyncIterator()
        var first: ByteBuffer?
        let singleRequest = kind == .unary || kind == .serverStreaming
        if singleRequest {
            first = try await requests.next()
            guard first != nil else { throw WireStatus(.invalidArgument, "\(method) expects one request, the stream carried none") }
        }
        let options = Self.upstreamOptions(deadline: call.context.deadline, metadata: call.context.metadata)
        let upstream = try await router.open(method, options: options, first: first, endOfStream: singleRequest)
        return try await relay(call, requests: singleRequest ? nil : requests, to: upstream)
    }

    /// `forward` for a unary call, without a task: offered each call first (WireServer's loopRelay), it relays
    /// the call on the event loop its frame arrived on when the chosen replica has a connection there (after
    /// the first call on each loop). Streaming calls, and any call it declines, take `forward`.
    @Sendable public func relayOnLoop(_ call: LoopCall) -> Bool {
        guard ChorusMethods.all[call.method]?.descriptor.kind == .unary else { return false }
        return router.relayOnLoop(call, options: Self.upstreamOptions(deadline: call.deadline, metadata: call.metadata))
    }

    /// The clients' API key stops here: backends never see it (the replicas' clients present the services' own
    /// key, Configuration.serviceKey).
    static func upstreamOptions(deadline: NIODeadline?, metadata: [String: String]) -> CallOptions {
        CallOptions(deadline: deadline, metadata: metadata["authorization"] == nil ? metadata : metadata.filter { $0.key != "authorization" })
    }

    private func relay(_ call: ServerCall, requests: RequestPayloads.AsyncIterator?,
                       to upstream: ClientCall) async throws -> ByteBuffer? {
        let pump: Task<Void, Never>? = requests.map { iterator in
            Task {
                var iterator = iterator
                do {
                    while let message = try await iterator.next() {
                        try await upstream.send(message)
                    }
                    try await upstream.halfClose()
                } catch {
                    upstream.cancel()
                }
            }
        }
        defer { pump?.cancel() }
        return try await withTaskCancellationHandler {
            for try await part in upstream.responses {
                if part.isFinal { return part.payload }
                try await call.send(part.payload)
            }
            return nil
        } onCancel: {
            upstream.cancel()
        }
    }

    // MARK: health

    /// Probes every replica every `healthInterval`; ejects on failure, re-admits on success. Runs until cancelled.
    public func runHealthChecks() async {
        while !Task.isCancelled {
            await withTaskGroup(of: Void.self) { group in
                for pool in pools.values {
                    for replica in pool.replicas {
                        group.addTask { await self.probe(replica) }
                    }
                }
            }
            try? await Task.sleep(nanoseconds: UInt64(configuration.healthInterval.nanoseconds))
        }
    }

    func probe(_ replica: Replica) async {
        let health = HealthClient(replica.client, service: replica.service)
        do {
            let answer = try await health.check(timeout: configuration.healthTimeout)
            let serving = answer.state == .serving
            if replica.setHealthy(serving, error: serving ? "" : "replica reports \(answer.state)") {
                if serving {
                    logger.info("\(replica.service) replica \(replica.address) re-admitted")
                } else {
                    logger.warning("\(replica.service) replica \(replica.address) ejected: it reports \(answer.state)")
                }
            }
        } catch {
            let message = WireStatus.from(error).message
            if replica.setHealthy(false, error: message) {
                logger.warning("\(replica.service) replica \(replica.address) ejected: \(message)")
            }
        }
    }
}

/// Calls the Health method of whichever service a replica runs.
struct HealthClient {
    let client: WireClient
    let service: String

    init(_ client: WireClient, service: String) {
        self.client = client
        self.service = service
    }

    func check(timeout: TimeAmount) async throws -> HealthResponse {
        let method = MethodDescriptor(service: Gateway.serviceNames[service]!, method: "Health", kind: .unary)
        return try await client.unary(method, HealthRequest(), as: HealthResponse.self, options: CallOptions(timeout: timeout))
    }

    func status(timeout: TimeAmount) async throws -> ServiceStatus {
        let method = MethodDescriptor(service: Gateway.serviceNames[service]!, method: "Status", kind: .unary)
        return try await client.unary(method, StatusRequest(), as: ServiceStatus.self, options: CallOptions(timeout: timeout))
    }

    func listModels(timeout: TimeAmount) async throws -> ListModelsResponse {
        let method = MethodDescriptor(service: Gateway.serviceNames[service]!, method: "ListModels", kind: .unary)
        return try await client.unary(method, ListModelsRequest(), as: ListModelsResponse.self, options: CallOptions(timeout: timeout))
    }
}

/// The gateway under a name no generated service enum shares (ChorusAPI's `Gateway` is the wire service).
public typealias ChorusGateway = Gateway

/// Equal lengths and bytes, in time that depends only on the lengths: an API key cannot be guessed
/// byte by byte from response times.
