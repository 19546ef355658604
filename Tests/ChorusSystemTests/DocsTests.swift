import ChorusTestSupport
import Foundation
import Testing

/// The docs stay true: scripts/doc-test runs every `sh test` / `python test` block of README.md and docs/*.md
/// against `chorus up` on the default models (plus the tiny LLaVA and CLIP fixtures, as llava-tiny and clip-tiny)
/// and checks their output and every link between them; and the runner itself fails when it should.
@Suite(.serialized) struct DocsTests {
    static let repository = VisionProcessTests.repository
    static let runner = repository.appendingPathComponent("scripts/doc-test").path

    static var documents: [String] {
        let docs = repository.appendingPathComponent("docs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: docs.path)) ?? []
        return ["README.md"] + names.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
    }

    @Test func everyExampleInTheDocsRunsAndEveryLinkResolves() async throws {
        #expect(Self.documents.count >= 9, "README.md and the eight docs of issue #40: \(Self.documents)")
        let stack = try await UpStack.start()
        defer { stack.stop() }
        let ports = stack.ports

        let (status, output) = try Self.runDocTest(["--gateway", "127.0.0.1:\(ports[0])", "--http", "127.0.0.1:\(ports[4])",
                                                    "--service", "7101=127.0.0.1:\(ports[1])", "--service", "7102=127.0.0.1:\(ports[2])",
                                                    "--service", "7103=127.0.0.1:\(ports[3])", "--chorus", ChorusProcess.binary.path]
                                                   + Self.documents)
        #expect(status == 0, "\(output)")
        let ran = output.split(separator: "\n").first { $0.hasPrefix("examples: ") }
        #expect(ran.map { Int($0.split(separator: " ")[1]) ?? 0 } ?? 0 >= 30, "the docs run their examples: \(ran ?? "none")\n\(output)")
    }

    /// `chorus up` on free ports (gateway, vision, diffusion, speech, HTTP) with `modelsWithFixtures()`, once the
    /// gateway reports every service healthy.
    struct UpStack {
        let up: ChorusProcess
        let ports: [Int]
        let models: String

        static func start() async throws -> UpStack {
            let models = try DocsTests.modelsWithFixtures()
            let ports = try (0..<5).map { _ in try freePort() }
            let config = """
                {"host": "127.0.0.1", "gateway": {"port": \(ports[0]), "http_port": \(ports[4])},
                 "services": {"vision": {"port": \(ports[1]), "models": "\(models)", "extra_args": ["--data-dir", "\(models)/.vision-data"]},
                              "diffusion": {"port": \(ports[2]), "models": "\(models)"},
                              "speech": {"port": \(ports[3]), "models": "\(models)"}}}
                """
            let file = NSTemporaryDirectory() + "chorus-up-\(ports[0]).json"
            try config.write(toFile: file, atomically: true, encoding: .utf8)
            let up = try ChorusProcess(["up", "--config", file])
            let (healthy, health) = try await ChorusProcess.run(["health", "--target", "127.0.0.1:\(ports[0])", "--wait-seconds", "120"], timeout: 130)
            #expect(healthy == 0, "\(health)\n\(up.log)")
            return UpStack(up: up, ports: ports, models: models, config: file)
        }

        let config: String

        func stop() {
            up.signal(SIGKILL)
            try? FileManager.default.removeItem(atPath: models)
            try? FileManager.default.removeItem(atPath: config)
        }
    }

    /// A --models folder with the default real models (scripts/fetch-models) and the tiny LLaVA and CLIP fixtures as
    /// llava-tiny and clip-tiny, all as links; the caller removes it.
    static func modelsWithFixtures() throws -> String {
        let realModels = try RealModels.path("")
        let models = NSTemporaryDirectory() + "chorus-docs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: realModels) where !name.hasPrefix(".") {
            try FileManager.default.createSymbolicLink(atPath: models + "/" + name, withDestinationPath: realModels + "/" + name)
        }
        try FileManager.default.createSymbolicLink(atPath: models + "/llava-tiny", withDestinationPath: ChatProcessTests.llavaFolder.path)
        try FileManager.default.createSymbolicLink(atPath: models + "/clip-tiny", withDestinationPath: VisionProcessTests.clipFolder.path)
        return models
    }

    /// The runner on a made-up doc: a passing block with wildcards, a failing one, a broken link and a missing anchor.
    @Test func theRunnerFailsOnAWrongOutputABrokenLinkAndAMissingAnchor() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-doctest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ name: String, _ text: String) throws -> String {
            let path = folder.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let fence = "```"
        let good = try write("good.md", """
            # Good
            ## A part
            See [the other](other.md#second-part) and [this part](#a-part).
            \(fence)sh test
            echo "took 1.25 s"; printf 'one\\ntwo\\nthree\\nend\\n'
            \(fence)
            \(fence)output
            took * s
            one
            ...
            end
            \(fence)
            \(fence)sh
            exit 1   # shown, not run
            \(fence)
            """)
        _ = try write("other.md", "# Other\n## Second part\n")
        let passing = try Self.runDocTest(["--gateway", "127.0.0.1:1", good])
        #expect(passing.status == 0 && passing.output.contains("examples: 1 run, 0 failed"), "\(passing.output)")

        let wrongOutput = try write("wrong.md", "\(fence)sh test\necho 42\n\(fence)\n\(fence)output\n41\n\(fence)\n")
        let failing = try Self.runDocTest(["--gateway", "127.0.0.1:1", wrongOutput])
        #expect(failing.status == 1 && failing.output.contains("no line of the output fits '41'"), "\(failing.output)")

        let exitStatus = try write("status.md", "\(fence)python test\nimport sys; sys.exit(3)\n\(fence)\n")
        let failed = try Self.runDocTest(["--gateway", "127.0.0.1:1", "--python", "/usr/bin/python3", exitStatus])
        #expect(failed.status == 1 && failed.output.contains("exit status 3"), "\(failed.output)")

        let links = try write("links.md", "[gone](missing.md) and [no anchor](other.md#third-part) and `[code](not-a-link.md)`\n")
        let broken = try Self.runDocTest([links])
        #expect(broken.status == 1 && broken.output.contains("links: 2 broken"), "\(broken.output)")
        #expect(broken.output.contains("missing.md does not exist") && broken.output.contains("no heading with anchor #third-part"))
    }

    /// scripts/doc-test with `arguments`, from the repository root; it bounds each block's time itself (--timeout).
    static func runDocTest(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", runner] + arguments
        process.currentDirectoryURL = repository
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Read on this thread until the runner closes its output (it ends with the process).
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
