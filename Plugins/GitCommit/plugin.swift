import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` (`let buildCommit = "…"`) with the checkout's commit, so `chorus --version` and the
/// services' Health name the exact source they were built from. It reruns when git's HEAD moves (its reflog and
/// the current branch's ref are the inputs). Without a checkout (a container build) it is the first line of
/// `.build-commit` if the build wrote one (compose/Dockerfile's CHORUS_COMMIT), else "unknown".
@main
struct GitCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let package = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("BuildCommit.swift")
        let git = package.appendingPathComponent(".git")
        var inputs = [git.appendingPathComponent("HEAD"), git.appendingPathComponent("logs/HEAD"),
                      git.appendingPathComponent("packed-refs")]
        if let head = try? String(contentsOf: inputs[0], encoding: .utf8), head.hasPrefix("ref: ") {
            inputs.append(git.appendingPathComponent(head.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        inputs = inputs.filter { FileManager.default.fileExists(atPath: $0.path) }
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || cat "$1/.build-commit" 2>/dev/null || echo unknown)
            printf '// Written by the GitCommit plugin at build time.\\nlet buildCommit = "%s"\\n' "$commit" > "$2.tmp" && mv "$2.tmp" "$2"
            """
        return [.buildCommand(displayName: "Recording the git commit", executable: URL(fileURLWithPath: "/bin/sh"),
                              arguments: ["-c", script, "sh", package.path, output.path],
                              inputFiles: inputs, outputFiles: [output])]
    }
}
