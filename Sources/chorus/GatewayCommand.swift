import ArgumentParser
import ChorusServiceKit
import ChorusWire
import Gateway
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
            Calls go to the healthy replica with the fewest calls in flight. Replicas are probed with Health
            every --health-interval-ms, ejected when they fail and re-admitted when they answer again.
            """)

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 7100

    @Option(help: "VisionService replicas, host:port[,host:port...].")
    var vision: String?

    @Option(help: "DiffusionService replicas, host:port[,host:port...].")
    var diffusion: String?

    @Option(help: "SpeechService replicas, host:port[,host:port...].")
    var speech: String?

    @Option(help: "Milliseconds between health probes of each replica.")
    var healthIntervalMs = 500

    @Option(help: "Largest frame accepted, in MiB.")
    var maxFrameMib = 64

    @Option(help: "Seconds open calls get to finish after SIGTERM.")
    var drainGrace = 30

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard vision != nil || diffusion != nil || speech != nil else {
            throw ValidationError("give at least one of --vision, --diffusion, --speech")
        }
        for list in [vision, diffusion, speech].compactMap({ $0 }) {
            for address in list.split(separator: ",") {
                do { _ = try parseAddress(String(address)) } catch { throw ValidationError("'\(address)' is not host:port") }
            }
        }
        guard healthIntervalMs >= 10 else { throw ValidationError("--health-interval-ms must be at least 10") }
    }

    func run() async throws {
        ParentWatch.startIfAsked()
        try Logs.bootstrap(level: logLevel)
        let logger = Logger(label: "chorus.gateway")
        func split(_ list: String?) -> [String] {
            (list ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let gateway = try Gateway(
            configuration: .init(services: ["vision": split(vision), "diffusion": split(diffusion), "speech": split(speech)],
                                 healthInterval: .milliseconds(Int64(healthIntervalMs))),
            logger: logger)
        let checks = Task { await gateway.runHealthChecks() }
        defer { checks.cancel() }
        try await ServiceHost.serve(
            routes: gateway.routes, fallback: gateway.forward, host: host, port: port,
            maxFrameSize: maxFrameMib << 20, drainGrace: .seconds(Int64(drainGrace)), logger: logger,
            onStarted: { address, _ in
                for (name, pool) in gateway.pools.sorted(by: { $0.key < $1.key }) {
                    logger.info("routing \(name) to \(pool.replicas.map(\.address).joined(separator: ", "))")
                }
                logger.info("gateway listening on \(address)")
            })
    }
}
