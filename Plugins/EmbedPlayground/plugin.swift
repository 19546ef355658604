import Foundation
import PackagePlugin

/// Writes `PlaygroundFiles.swift`: every file of the package's `Playground/` folder as base64 under its name, so the
/// gateway serves the browser playground from its own binary. Reruns when any of those files changes.
@main
struct EmbedPlayground: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let folder = context.package.directoryURL.appendingPathComponent("Playground")
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("PlaygroundFiles.swift")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        let files = names.map { folder.appendingPathComponent($0) }
        let script = """
            out=$1; shift
            {
              printf '// Written by the EmbedPlayground plugin from Playground/ at build time.\\n'
              printf 'enum PlaygroundFiles {\\n    static let base64: [String: String] = [\\n'
              [ $# -eq 0 ] && printf '        :\\n'
              for f in "$@"; do printf '        "%s": "%s",\\n' "${f##*/}" "$(base64 -w0 "$f")"; done
              printf '    ]\\n}\\n'
            } > "$out.tmp" && mv "$out.tmp" "$out"
            """
        return [.buildCommand(displayName: "Embedding the playground (\(files.count) files)", executable: URL(fileURLWithPath: "/bin/sh"),
                              arguments: ["-c", script, "sh", output.path] + files.map(\.path),
                              inputFiles: files, outputFiles: [output])]
    }
}
