import ArgumentParser
import ChorusTensor
import Foundation
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
        version: VersionText.text,
        subcommands: [
            VisionCommand.self, DiffusionCommand.self, SpeechCommand.self, GatewayCommand.self,
            UpCommand.self, CallCommand.self, HealthCommand.self, LoadCommand.self, BenchCommand.self,
        ])

    static func main() async {
        if let problem = CPULevel.problem(with: ProcessInfo.processInfo.environment[CPULevel.variable]) {
            FileHandle.standardError.write(Data("chorus: \(problem)\n".utf8))
            Foundation.exit(64)  // EX_USAGE, before anything runs on a level nobody asked for
        }
        KernelChoice.restartForTheChosenKernel()
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            // ArgumentParser's own main, but a command's help ends with its examples.
            if let help = HelpExamples.message(for: error, arguments: arguments) {
                print(help, terminator: "")
                Foundation.exit(0)
            }
            exit(withError: error)
        }
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

extension Chorus: HasExamples {
    static let examples = [
        "chorus up                                   # the whole system on ./models",
        "chorus call speech.Synthesize '{\"text\": \"Hello.\"}' --save data=hello.wav",
        "chorus --version                            # commit, CPU features, OpenBLAS kernel",
    ]
}
