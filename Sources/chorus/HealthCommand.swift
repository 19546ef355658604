import ArgumentParser
import ChorusTLS
import ChorusAPI
import ChorusWire
import Foundation
import NIOCore

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask a gateway (or one service) whether it is serving; exits 0 when it is.")

    @Option(help: "Address of the gateway or service; $CHORUS_TARGET sets the default.")
    var target = ConnectionDefaults.target

    @Option(help: "What listens at --target: gateway, vision, diffusion or speech.")
    var service = "gateway"

    @Option(help: "Ask over TLS, trusting this CA (PEM) for the target's certificate.")
    var tlsCa: String?

    @Option(help: "Keep asking for up to this many seconds until everything is serving.")
    var waitSeconds: Double = 0

    func run() async throws {
        let names = ["gateway": Gateway.serviceName, "vision": Vision.serviceName,
                     "diffusion": Diffusion.serviceName, "speech": Speech.serviceName]
        guard let serviceName = names[service] else {
            throw ValidationError("--service must be one of \(names.keys.sorted().joined(separator: ", "))")
        }
        let client = try WireClient(address: target, configuration: .init(security: try tlsCa.map { try TLS.client(trusting: $0) }))
        defer { client.close() }
        let method = MethodDescriptor(service: serviceName, method: "Health", kind: .unary)
        let giveUp = Date().addingTimeInterval(waitSeconds)
        while true {
            do {
                let health = try await client.unary(method, HealthRequest(), as: HealthResponse.self, options: CallOptions(timeout: .seconds(2)))
                if health.state == .serving || Date() >= giveUp {
                    print(render(health))
                    if health.state != .serving { throw ExitCode(1) }
                    return
                }
            } catch let status as WireStatus {
                if Date() >= giveUp {
                    FileHandle.standardError.write(Data("\(service) at \(target): \(status)\n".utf8))
                    throw ExitCode(1)
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func render(_ health: HealthResponse) -> String {
        var lines = ["\(health.service) \(target): \(ServingState.protoNames[health.state] ?? "?") (version \(health.version))"]
        for service in health.services {
            var line = "  \(service.service.padding(toLength: 10, withPad: " ", startingAt: 0)) \(ServingState.protoNames[service.state] ?? "?")  \(service.healthyReplicas)/\(service.replicas) replicas healthy"
            if !service.message.isEmpty { line += "  (\(service.message))" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

extension HealthCommand: HasExamples {
    static let examples = [
        "chorus health",
        "chorus health --target 127.0.0.1:7103 --service speech --wait-seconds 60",
    ]
}
