import ArgumentParser
import ChorusServiceKit
import ChorusWire
import Gateway
import GatewayHTTP
import ChorusTLS
import HummingbirdCore
import HummingbirdTLS
import Foundation
import Logging
import NIOCore

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the gateway: routes every service method to a healthy replica.",
        discussion: """
            Each service takes a comma-separated list of replica addresses:
              chorus gateway --speech 127.0.0.1:7103,127.0.0.1:7113 --vision 127.0.0.1:7101
            Calls go to the healthy replica with the fewest calls in flight; one that cannot be reached, or
            refuses a call before starting it (full queue, draining), is passed over. Replicas are probed with
            Health every --health-interval-ms, ejected when they fail and re-admitted when they answer again.
            The OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/audio/*, /v1/images/*,
            /v1/pipelines, /v1/models, /healthz, /readyz, /metrics) listens on --http-port; it calls the
            services through the same router as native calls and pipeline steps, in this process.
            """)

    @OptionGroup var listener: ListenerFlags

    @Option(help: "VisionService replicas, comma-separated: host:port, dns:///name:port (every address the name resolves to, read again each --discovery-interval-ms: a Kubernetes headless Service), or file:///path (one host:port a line; replace it by renaming a new file over it).")
    var vision: String?

    @Option(help: "DiffusionService replicas, comma-separated: host:port, dns:///name:port (every address the name resolves to, read again each --discovery-interval-ms: a Kubernetes headless Service), or file:///path (one host:port a line; replace it by renaming a new file over it).")
    var diffusion: String?

    @Option(help: "SpeechService replicas, comma-separated: host:port, dns:///name:port (every address the name resolves to, read again each --discovery-interval-ms: a Kubernetes headless Service), or file:///path (one host:port a line; replace it by renaming a new file over it).")
    var speech: String?

    @Option(help: "Milliseconds between health probes of each replica.")
    var healthIntervalMs = 500

    @Option(help: "Milliseconds between readings of dns:/// and file:// replica sources: replicas that appear join after a healthy probe, replicas that vanish stop taking calls and close once theirs finish.")
    var discoveryIntervalMs = 5000

    @Option(help: "Port of the OpenAI-compatible HTTP API; 0 picks a free one, -1 turns it off.")
    var httpPort = 7180

    @Option(help: "Largest HTTP request body, in MiB.")
    var httpMaxBodyMib = 64

    @Option(help: "Require 'Authorization: Bearer KEY' on HTTP requests and 'authorization: Bearer KEY' metadata on native calls (or set CHORUS_API_KEY).")
    var apiKey: String?

    @Option(help: "A JSON file of OpenAI-compatible upstream servers whose models the HTTP API serves beside the local ones: {\"upstreams\": [{\"name\", \"base_url\", \"api_key_env\", \"timeout_seconds\", \"max_concurrent\", \"models\": {ALIAS: {\"model\", \"capabilities\": [\"chat\", \"vision\", \"completions\", \"embeddings\", \"images\", \"audio\"]}}}]}.")
    var upstreams: String?

    @Option(help: "A JSON file of named API keys for the HTTP API, each with the models it may use and its limits: {\"keys\": [{\"name\", \"key_env\" (or \"key\"), \"models\": [\"*\" or names], \"requests_per_minute\", \"max_concurrent\"}]}. Checked instead of --api-key on HTTP; native calls still take --api-key.")
    var apiKeys: String?

    @Option(help: "The key the services require (their --api-key), sent on every call to them (or set CHORUS_SERVICE_API_KEY).")
    var serviceApiKey: String?

    @Option(help: "A file whose first line is the services' key (instead of --service-api-key).")
    var serviceApiKeyFile: String?

    @Option(help: "Calls relayed to one service at once; past it calls are refused with RESOURCE_EXHAUSTED (HTTP 429 with Retry-After).")
    var maxInFlightPerService = 512

    @Option(help: "Seconds an HTTP request head may take to arrive (slow clients get 408).")
    var httpHeadTimeout = 10

    @Option(help: "Seconds an HTTP request body may stall before the connection is closed.")
    var httpBodyTimeout = 30

    @Option(help: "Seconds an idle keep-alive HTTP connection stays open.")
    var httpIdleTimeout = 60

    @Option(help: "HTTP connections open at once; more wait until one closes.")
    var httpMaxConnections = 1024

    @Option(help: "HTTPS for the HTTP API: the certificate chain (PEM); give --http-tls-key with it.")
    var httpTlsCert: String?

    @Option(help: "HTTPS for the HTTP API: the private key (PEM) of --http-tls-cert.")
    var httpTlsKey: String?

    @Option(help: "Call the services over TLS, trusting this CA (PEM) for their certificates (they listen with --tls-cert).")
    var serviceTlsCa: String?

    @Flag(help: "Call the services over TLS, trusting the system's CA roots.")
    var serviceTls = false

    @Flag(help: "Serve no browser playground at / on the HTTP port (it calls the same API, with the same key rules).")
    var noPlayground = false

    func validate() throws {
        guard vision != nil || diffusion != nil || speech != nil || upstreams != nil else {
            throw ValidationError("give at least one of --vision, --diffusion, --speech (or --upstreams: a front for upstream servers alone)")
        }
        for list in [vision, diffusion, speech].compactMap({ $0 }) {
            for address in list.split(separator: ",") {
                do { _ = try ReplicaSource(String(address).trimmingCharacters(in: .whitespaces)) } catch {
                    throw ValidationError("'\(address)' is not host:port, dns:///name:port or file:///path")
                }
            }
        }
        guard healthIntervalMs >= 10 else { throw ValidationError("--health-interval-ms must be at least 10") }
        guard (10...86_400_000).contains(discoveryIntervalMs) else { throw ValidationError("--discovery-interval-ms must be 10 ... 86400000") }
        guard (-1...65535).contains(httpPort) else { throw ValidationError("--http-port must be -1 (off), 0 (any) or a port") }
        guard (1...4096).contains(httpMaxBodyMib) else { throw ValidationError("--http-max-body-mib must be 1 ... 4096") }
        guard (1...1_000_000).contains(maxInFlightPerService) else { throw ValidationError("--max-in-flight-per-service must be 1 ... 1000000") }
        for (flag, value) in [("--http-head-timeout", httpHeadTimeout), ("--http-body-timeout", httpBodyTimeout), ("--http-idle-timeout", httpIdleTimeout)] {
            guard (1...86_400).contains(value) else { throw ValidationError("\(flag) must be 1 ... 86400 seconds") }
        }
        guard (1...1_000_000).contains(httpMaxConnections) else { throw ValidationError("--http-max-connections must be 1 ... 1000000") }
        guard (httpTlsCert == nil) == (httpTlsKey == nil) else { throw ValidationError("give --http-tls-cert and --http-tls-key together") }
    }

    func run() async throws {
        ParentWatch.startIfAsked()
        try Logs.bootstrap(level: listener.logLevel)
        RequestNote.installCrashReport(process: "gateway")
        let logger = Logger(label: "chorus.gateway")
        func split(_ list: String?) -> [String] {
            (list ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        var configuration = Gateway.Configuration(
            services: ["vision": split(vision), "diffusion": split(diffusion), "speech": split(speech)],
            healthInterval: .milliseconds(Int64(healthIntervalMs)), maxInFlightPerService: maxInFlightPerService,
            serviceKey: try APIKey.load(flag: serviceApiKey, file: serviceApiKeyFile, environment: "CHORUS_SERVICE_API_KEY"),
            serviceSecurity: serviceTls || serviceTlsCa != nil ? try TLS.client(trusting: serviceTlsCa) : nil)
        configuration.discoveryInterval = .milliseconds(Int64(discoveryIntervalMs))
        let gateway = try Gateway(configuration: configuration, logger: logger)
        let checks = Task { await gateway.runHealthChecks() }
        defer { checks.cancel() }
        let discovery = Task { await gateway.runDiscovery() }
        defer { discovery.cancel() }
        let http = HTTPFrontTask()
        defer { http.cancel() }
        var secureServer: (@Sendable (HTTPServerBuilder) throws -> HTTPServerBuilder)?
        if let httpTlsCert, let httpTlsKey {
            let tls = try TLS.serverConfiguration(certificateChain: httpTlsCert, privateKey: httpTlsKey)
            secureServer = { try .tls($0, tlsConfiguration: tls) }
        }
        var front = OpenAIFront.Settings(host: listener.host, port: httpPort, maxBodyBytes: httpMaxBodyMib << 20,
                                            apiKey: (apiKey ?? ProcessInfo.processInfo.environment["CHORUS_API_KEY"]).flatMap { $0.isEmpty ? nil : $0 },
                                            headTimeout: .seconds(Int64(httpHeadTimeout)), bodyTimeout: .seconds(Int64(httpBodyTimeout)),
                                            idleTimeout: .seconds(Int64(httpIdleTimeout)), maxConnections: httpMaxConnections,
                                            secureServer: secureServer)
        front.playground = !noPlayground
        front.playgroundDirectory = ProcessInfo.processInfo.environment["CHORUS_PLAYGROUND_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        if let directory = front.playgroundDirectory { logger.info("playground files read from \(directory) (CHORUS_PLAYGROUND_DIR)") }
        if let apiKeys {
            do {
                front.keyPolicies = try KeyPolicies.load(json: try Data(contentsOf: URL(fileURLWithPath: apiKeys)))
            } catch {
                throw ValidationError("--api-keys \(apiKeys): \(error)")
            }
            logger.info("HTTP API keys: \(front.keyPolicies?.policies.map(\.name).joined(separator: ", ") ?? "")")
            if front.apiKey == nil { logger.warning("--api-keys guards the HTTP API only: the native port takes calls without a key (set --api-key for it)") }
        }
        if let upstreams {
            let configs: [UpstreamConfig]
            do {
                configs = try UpstreamConfig.load(json: try Data(contentsOf: URL(fileURLWithPath: upstreams)))
            } catch {
                throw ValidationError("--upstreams \(upstreams): \(error)")
            }
            front.upstreams = Upstreams(configs, logger: logger)
            for config in configs {
                logger.info("upstream \(config.name) at \(config.baseURL): \(config.models.map { "\($0.alias) → \($0.model)" }.joined(separator: ", "))\(config.apiKey == nil ? "" : " (with a key)")")
            }
        }
        let settings = front
        let (routes, fallback, loopRelay) = APIKey(settings.apiKey).map { gateway.requiringKey($0) }
            ?? (gateway.routes, gateway.forward, gateway.relayOnLoop)
        try await ServiceHost.serve(
            routes: routes, fallback: fallback, loopRelay: loopRelay, host: listener.host, port: listener.port ?? 7100,
            maxFrameSize: listener.maxFrameMib << 20, limits: listener.connections.limits, security: try listener.security(),
            drainGrace: .seconds(Int64(listener.drainGrace)), logger: logger,
            onStarted: { address, _ in
                for name in gateway.pools.keys.sorted() {
                    logger.info("routing \(name) to \((gateway.configuration.services[name] ?? []).joined(separator: ", "))")
                }
                logger.info("gateway listening on \(address)")
                guard settings.port >= 0 else { return }
                let front = OpenAIFront(settings: settings, gateway: gateway, logger: logger)
                http.start {
                    do {
                        try await front.run { bound in
                            logger.info("OpenAI-compatible HTTP on \(settings.secureServer == nil ? "http" : "https")://\(bound)\(settings.apiKey == nil ? "" : " (API key required)")")
                        }
                    } catch {
                        logger.error("the HTTP front stopped: \(error)")
                    }
                }
            })
    }
}

/// The HTTP front runs beside the wire server and stops with it.
final class HTTPFrontTask: @unchecked Sendable {
    private var task: Task<Void, Never>?
    private let lock = NSLock()

    func start(_ body: @escaping @Sendable () async -> Void) {
        lock.withLock { task = Task { await body() } }
    }

    func cancel() {
        lock.withLock { task?.cancel() }
    }
}

extension GatewayCommand: HasExamples {
    static let examples = [
        "chorus gateway --port 7100 --http-port 7180 --vision 127.0.0.1:7101 --diffusion 127.0.0.1:7102 --speech 127.0.0.1:7103",
        "chorus gateway --speech dns:///speech.chorus.svc.cluster.local:7103 --discovery-interval-ms 5000",
    ]
}
