import ArgumentParser
import ChorusServiceKit
import Foundation

/// What `chorus up` starts. JSON, with these keys; `host` and every `port` are required, the rest have defaults.
struct UpConfig: Codable {
    struct Service: Codable {
        var port: Int
        /// Replicas listen on port, port+10, port+20 ...
        var replicas: Int?
        var device: String?
        var models: String?
        var maxConcurrency: Int?
        var extraArgs: [String]?

        enum CodingKeys: String, CodingKey {
            case port, replicas, device, models
            case maxConcurrency = "max_concurrency"
            case extraArgs = "extra_args"
        }
    }

    struct GatewaySection: Codable {
        var port: Int
        /// The OpenAI-compatible HTTP API's port (gateway --http-port); nil = 7180, -1 = off.
        var httpPort: Int?
        /// A JSON file of upstream OpenAI-compatible servers (gateway --upstreams).
        var upstreams: String?
        var extraArgs: [String]?

        enum CodingKeys: String, CodingKey {
            case port
            case httpPort = "http_port"
            case upstreams
            case extraArgs = "extra_args"
        }
    }

    var host: String
    var gateway: GatewaySection
    var services: [String: Service]

    static func defaults(modelsFolder: String?) -> UpConfig {
        UpConfig(host: "127.0.0.1", gateway: .init(port: 7100, httpPort: 7180), services: [
            // Vision loads any CLIP folder put under models/ and keeps its image indexes in data/vision.
            "vision": .init(port: 7101, models: modelsFolder, extraArgs: ["--data-dir", "data/vision"]),
            "diffusion": .init(port: 7102, models: modelsFolder),
            "speech": .init(port: 7103, models: modelsFolder),
        ])
    }

    func addresses(of service: String) -> [String] {
        guard let section = services[service] else { return [] }
        return (0..<max(1, section.replicas ?? 1)).map { "\(host):\(section.port + 10 * $0)" }
    }
}

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start the three services and the gateway as separate processes, and keep them running.",
        discussion: """
            Logs of every process are forwarded with a [name] prefix. A process that dies is restarted with
            back-off (0.5 s doubling to 30 s). Ctrl-C or SIGTERM stops them all cleanly (they drain first).
            Without --config: vision 7101, diffusion 7102, speech 7103, gateway 7100 (OpenAI-compatible HTTP on 7180),
            models from ./models.
            --print-config shows the configuration in the file format.
            """)

    @Option(help: "JSON configuration file (see --print-config for the format).")
    var config: String?

    @Flag(help: "Print the configuration that would run, and exit.")
    var printConfig = false

    @Option(help: "Log level passed to every process.")
    var logLevel = "info"

    func run() async throws {
        let settings = try loadConfig()
        if printConfig {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(settings), as: UTF8.self))
            return
        }
        var specs: [Supervisor.ProcessSpec] = []
        for name in ["vision", "diffusion", "speech"] {
            guard let section = settings.services[name] else { continue }
            for (index, address) in settings.addresses(of: name).enumerated() {
                let port = address.split(separator: ":").last.map(String.init) ?? "\(section.port)"
                var args = [name, "--host", settings.host, "--port", port, "--log-level", logLevel]
                if let device = section.device { args += ["--device", device] }
                if let models = section.models { args += ["--models", models] }
                if let concurrency = section.maxConcurrency { args += ["--max-concurrency", "\(concurrency)"] }
                args += section.extraArgs ?? []
                specs.append(.init(name: section.replicas ?? 1 > 1 ? "\(name)-\(index + 1)" : name, arguments: args))
            }
        }
        var gatewayArgs = ["gateway", "--host", settings.host, "--port", "\(settings.gateway.port)", "--log-level", logLevel]
        for name in ["vision", "diffusion", "speech"] where settings.services[name] != nil {
            gatewayArgs += ["--\(name)", settings.addresses(of: name).joined(separator: ",")]
        }
        // One argument: "--http-port", "-1" would read -1 as a flag.
        if let httpPort = settings.gateway.httpPort { gatewayArgs += ["--http-port=\(httpPort)"] }
        if let upstreams = settings.gateway.upstreams { gatewayArgs += ["--upstreams", upstreams] }
        gatewayArgs += settings.gateway.extraArgs ?? []
        specs.append(.init(name: "gateway", arguments: gatewayArgs))
        let supervisor = Supervisor(specs: specs)
        await supervisor.run()
    }

    private func loadConfig() throws -> UpConfig {
        guard let config else {
            var isDirectory: ObjCBool = false
            let hasModels = FileManager.default.fileExists(atPath: "models", isDirectory: &isDirectory) && isDirectory.boolValue
            return .defaults(modelsFolder: hasModels ? "models" : nil)
        }
        guard let data = FileManager.default.contents(atPath: config) else {
            throw ValidationError("cannot read config file '\(config)'")
        }
        do {
            return try JSONDecoder().decode(UpConfig.self, from: data)
        } catch {
            throw ValidationError("config file '\(config)' is not valid: \(error)")
        }
    }
}

extension UpCommand: HasExamples {
    static let examples = [
        "chorus up",
        "chorus up --print-config > chorus.json && chorus up --config chorus.json",
    ]
}
