import ArgumentParser
struct BenchWireCommand: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "wire"); func run() async throws {} }
