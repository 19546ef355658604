import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print a ratio against a peer measured in the same run.",
        subcommands: [BenchWireCommand.self, BenchKernelsCommand.self, BenchSpeechCommand.self, BenchSpeechOneCommand.self, BenchCLIPCommand.self, BenchTTSCommand.self, BenchDiffusionCommand.self, BenchVLMCommand.self, BenchLLMCommand.self, BenchGatewayCommand.self, BenchVideoCommand.self])
}

extension BenchCommand: HasExamples {
    static let examples = [
        "chorus bench wire",
        "chorus bench speech --rounds 3",
    ]
}
