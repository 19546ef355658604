import ArgumentParser
import Foundation

/// A command whose `--help` ends with examples. ArgumentParser prints a command's options last, after its
/// discussion, so the examples are appended to its help by `HelpExamples.message` rather than written there.
protocol HasExamples {
    static var examples: [String] { get }
}

enum HelpExamples {
    /// The help `error` asks for (`--help`, `-h`, `chorus help …`), with the examples of the command it names; nil
    /// for any other error or outcome.
    static func message(for error: Error, arguments: [String]) -> String? {
        guard Chorus.exitCode(for: error) == .success else { return nil }
        let help = Chorus.fullMessage(for: error)
        guard help.hasPrefix("OVERVIEW:") || help.hasPrefix("USAGE:") else { return nil }  // --version, say
        let command = named(by: arguments)
        guard let examples = (command as? HasExamples.Type)?.examples, !examples.isEmpty else { return help }
        return help.trimmingCharacters(in: .newlines) + "\n\nEXAMPLES:\n" + examples.map { "  " + $0 }.joined(separator: "\n") + "\n"
    }

    /// The subcommand the words of `arguments` lead to from `chorus` (options and their values end the walk).
    static func named(by arguments: [String]) -> ParsableCommand.Type {
        var command: ParsableCommand.Type = Chorus.self
        for word in arguments where word != "help" {
            guard let next = command.configuration.subcommands.first(where: { $0.configuration.commandName == word }) else { break }
            command = next
        }
        return command
    }
}
