import ArgumentParser
import Logging

@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Multimodal model serving: one process per modality, one wire protocol, a gateway in front.",
        discussion: """
            Run everything locally:       chorus up
            Run one service:              chorus speech --port 7103 --models models
            Check the system:             chorus health --target 127.0.0.1:7100
            Call any method:              chorus call speech.Health '{}'
            Load-test a method:           chorus load vision.EmbedTexts '{"texts": ["a cat"]}' --concurrency 1:16:x2
            Measure the wire:             chorus bench wire
            """,
        subcommands: [
            VisionCommand.self, DiffusionCommand.self, SpeechCommand.self, GatewayCommand.self,
            UpCommand.self, CallCommand.self, HealthCommand.self, LoadCommand.self, BenchCommand.self,
        ])

    static func main() async {
        KernelChoice.restartIfGeneric()
        await main(nil)
    }
}

/// Logs go to standard error, one line each, so `chorus up` can prefix and forward them.
enum Logs {
    static func bootstrap(level: String) throws {
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            return handler
        }
    }
}
