import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// `chorus up`, `chorus health` and `chorus call` as a person runs them.
@Suite(.serialized) struct CommandLineTests {
    @Test func upStartsEverythingHealthReportsItAndCtrlCStopsIt() async throws {
        let ports = try (0..<4).map { _ in try freePort() }
        let config = """
            {"host": "127.0.0.1", "gateway": {"port": \(ports[0])},
             "services": {"vision": {"port": \(ports[1])}, "diffusion": {"port": \(ports[2])}, "speech": {"port": \(ports[3])}}}
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-up-\(ports[0]).json")
        try config.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let up = try ChorusProcess(["up", "--config", file.path])
        defer { up.signal(SIGKILL) }
        let (status, output) = try await ChorusProcess.run(["health", "--target", "127.0.0.1:\(ports[0])", "--wait-seconds", "30"], timeout: 40)
        #expect(status == 0, "\(output)\n\(up.log)")
        for service in ["vision", "diffusion", "speech"] {
            #expect(output.contains("\(service)") && output.contains("1/1 replicas healthy"))
        }
        #expect(output.contains("gateway 127.0.0.1:\(ports[0]): SERVING"))
        #expect(up.log.contains("[speech]") && up.log.contains("[gateway]"), "child logs are forwarded with a prefix")

        // A crashed service is restarted.
        let speech = SpeechClient(try WireClient(address: "127.0.0.1:\(ports[3])"))
        defer { (speech.channel as? WireClient)?.close() }
        let firstPid = try await speech.status(StatusRequest()).pid
        kill(Int32(firstPid), SIGKILL)
        let giveUp = Date().addingTimeInterval(10)
        var newPid: UInt32?
        while Date() < giveUp {
            if let pid = try? await speech.status(StatusRequest(), options: CallOptions(timeout: .seconds(1))).pid, pid != firstPid {
                newPid = pid
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(newPid != nil, "speech came back after being killed:\n\(up.log)")
        #expect(up.log.contains("restarting"))

        up.signal(SIGINT)
        #expect(await up.waitForExit(timeout: 20) == 0, "\(up.log)")
        #expect(up.log.contains("all processes stopped"))
        let after = try? await speech.health(HealthRequest(), options: CallOptions(timeout: .seconds(1)))
        #expect(after == nil, "the services stopped with chorus up")
    }

    @Test func callPrintsAnswersAsJSONAndFailsWithTheStatus() async throws {
        let (speech, address) = try await ChorusProcess.serve(["speech", "--port", "0"])
        defer { speech.signal(SIGKILL) }
        let (ok, json) = try await ChorusProcess.run(["call", "speech.Echo", #"{"payload": "aGk="}"#, "--target", address])
        #expect(ok == 0)
        #expect(json.contains(#""payload":"aGk=""#) && json.split(separator: "\n").count == 1, "piped: one line of JSON per answer")

        let wav = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-call-\(getpid()).wav")
        try Data("RIFF....WAVE".utf8).write(to: wav)
        defer { try? FileManager.default.removeItem(at: wav) }
        let (failed, message) = try await ChorusProcess.run(["call", "speech.Transcribe", #"{"format": "SRT"}"#, "--file", "audio.wav=\(wav.path)",
                                                             "--target", address, "--field", "result.formatted"])
        #expect(failed == 1)
        #expect(message.contains("FAILED_PRECONDITION"))

        let (badJSON, explanation) = try await ChorusProcess.run(["call", "speech.Transcribe", #"{"format": "MP3"}"#, "--target", address])
        #expect(badJSON != 0)
        #expect(explanation.contains("format"))

        let (streamed, lines) = try await ChorusProcess.run(["call", "speech.EchoStream", #"{"count": 3}"#, "--target", address, "--field", "sequence"])
        #expect(streamed == 0)
        #expect(lines.split(separator: "\n") == ["0", "1", "2"])
    }
}

extension CommandLineTests {
    /// CHORUS_CPU lowers every kernel's instruction set, OpenBLAS's included (the binary starts itself again
    /// with OPENBLAS_CORETYPE), and a value that names no level stops the process before anything runs.
    @Test func chorusCPULowersTheKernelsAndAWrongValueIsRefused() async throws {
        let (status, output) = try await ChorusProcess.run(["--version"], environment: ["CHORUS_CPU": "avx2"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("kernels: avx2 (CHORUS_CPU=avx2") && output.contains("float32 AVX2 + FMA; quantized products AVX2"), "\(output)")
        #expect(output.contains("kernels at avx2") && output.contains("openblas: Haswell kernel"), "\(output)")

        let (plainStatus, plain) = try await ChorusProcess.run(["--version"], environment: ["CHORUS_CPU": "plain"])
        #expect(plainStatus == 0 && plain.contains("kernels: plain (CHORUS_CPU=plain") && plain.contains("float32 Swift loops; quantized products none"), "\(plain)")

        let (autoStatus, automatic) = try await ChorusProcess.run(["--version"], environment: ["CHORUS_CPU": "auto"])
        #expect(autoStatus == 0 && automatic.contains("the highest this CPU runs (CHORUS_CPU lowers it)"), "\(automatic)")

        let (wrongStatus, wrong) = try await ChorusProcess.run(["--version"], environment: ["CHORUS_CPU": "avx3"])
        #expect(wrongStatus == 64, "\(wrong)")
        #expect(wrong.contains("CHORUS_CPU=avx3 names no instruction-set level; it takes one of plain, avx2, avx512, avx512-vnni, avx512-bf16, amx"), "\(wrong)")
        #expect(!wrong.contains("chorus 0."), "nothing ran: \(wrong)")
    }

    @Test func versionNamesTheCommitTheCPUAndTheKernels() async throws {
        let (status, output) = try await ChorusProcess.run(["--version"])
        #expect(status == 0)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(output)")
        guard lines.count == 4 else { return }
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        git.arguments = ["-C", VisionProcessTests.repository.path, "rev-parse", "--short=12", "HEAD"]
        let pipe = Pipe()
        git.standardOutput = pipe
        try git.run()
        let head = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        git.waitUntilExit()
        // The commit the build recorded (Plugins/GitCommit) is the checkout's: scripts/test builds before it tests.
        #expect(lines[0] == "chorus 0.1.0 (commit \(head))", "\(output)")
        let flags = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        #expect(lines[1].hasPrefix("cpu: ") && lines[1].contains("family") && lines[1].contains("cores"), "\(output)")
        #expect(lines[1].contains("avx2") == flags.contains(" avx2"), "\(output)")
        #expect(lines[2].hasPrefix("kernels: ") && lines[2].contains(": float32 ") && lines[2].contains("; quantized products "), "\(output)")
        #expect(lines[2].contains("AVX-512") == (flags.contains(" avx512f") && flags.contains(" avx512bw")) || lines[2].contains("AVX2"), "\(output)")
        #expect(lines[3].hasPrefix("openblas: ") && lines[3].contains(" kernel, OpenBLAS 0."), "\(output)")
    }

    /// Every command's help starts with a line of what it is for and ends with examples of it.
    @Test func everyHelpStartsWithItsPurposeAndEndsWithExamples() async throws {
        var commands: [[String]] = [[]]
        var checked = 0
        while let path = commands.popLast() {
            let (status, help) = try await ChorusProcess.run(path + ["--help"])
            #expect(status == 0, "chorus \(path.joined(separator: " ")) --help: \(help)")
            #expect(help.hasPrefix("OVERVIEW: ") && help.split(separator: "\n").first!.count > 30, "\(help)")
            let sections = help.components(separatedBy: "\n\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
            let examples = sections.last?.split(separator: "\n").map(String.init) ?? []
            #expect(examples.first == "EXAMPLES:" && examples.count >= 2, "chorus \(path.joined(separator: " ")) --help ends with:\n\(sections.last ?? "")")
            #expect(examples.dropFirst().allSatisfy { $0.hasPrefix("  chorus" + path.map { " " + $0 }.joined()) }, "\(examples)")
            checked += 1
            // Its subcommands: the first word of each line of the SUBCOMMANDS section that is indented by two.
            if let listed = sections.first(where: { $0.hasPrefix("SUBCOMMANDS:") }) {
                for line in listed.split(separator: "\n").dropFirst() where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                    commands.append(path + [String(line.split(separator: " ")[0])])
                }
            }
        }
        #expect(checked >= 20, "chorus, its services, gateway, up, call, health, load, bench and its benchmarks")
    }

    /// `chorus bench wire`, briefly and without the grpc-swift-2 peer: every path it measures answers, and the hop
    /// is printed beside its two floors (figures are for benchmarks; this checks that the benchmark runs).
    @Test func benchWireMeasuresEveryPathAndTheHopsFloors() async throws {
        let (status, output) = try await ChorusProcess.run(["bench", "wire", "--calls", "200", "--rounds", "1", "--concurrency", "1",
                                                            "--throughput-mib", "1", "--throughput-calls", "2", "--grpc-peer", "/nonexistent"],
                                                           timeout: 180)
        #expect(status == 0, "\(output)")
        for row in ["direct      1 |", "gateway     1 |", "gateway hop at concurrency 1: +", "NIO byte relay (", "raw TCP relay (",
                    " 1 MiB  direct  |", " 1 MiB  gateway |", "(no grpc-swift-2 peer at /nonexistent"] {
            #expect(output.contains(row), "no '\(row)' in:\n\(output)")
        }
    }

    /// `chorus up` on free ports without the HTTP front, once the gateway reports every service healthy;
    /// the ports are gateway, vision, diffusion, speech.
    static func upWithoutHTTP(exitWithParent: Bool = true) async throws -> (ChorusProcess, [Int]) {
        let ports = try (0..<4).map { _ in try freePort() }
        let config = """
            {"host": "127.0.0.1", "gateway": {"port": \(ports[0]), "http_port": -1},
             "services": {"vision": {"port": \(ports[1])}, "diffusion": {"port": \(ports[2])}, "speech": {"port": \(ports[3])}}}
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-up-\(ports[0]).json")
        try config.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let up = try ChorusProcess(["up", "--config", file.path], exitWithParent: exitWithParent)
        let (status, output) = try await ChorusProcess.run(["health", "--target", "127.0.0.1:\(ports[0])", "--wait-seconds", "30"], timeout: 40)
        guard status == 0 else {
            up.signal(SIGKILL)
            throw TestFailure("chorus up did not become healthy:\n\(output)\n\(up.log)")
        }
        return (up, ports)
    }

    /// A trap in a service ends it with SIGILL; its last words name the request it was serving, and
    /// `chorus up` says so when it restarts it. The trap is simulated with kill -ILL while a call runs.
    @Test func aCrashedServiceIsRestartedNamingTheRequest() async throws {
        let (up, ports) = try await Self.upWithoutHTTP()
        defer { up.signal(SIGINT) }

        let speech = SpeechClient(try WireClient(address: "127.0.0.1:\(ports[3])"))
        defer { (speech.channel as? WireClient)?.close() }
        let pid = try await speech.status(StatusRequest()).pid
        // The first streamed answer proves the handler runs; it would go on for 100 s.
        let stream = speech.echoStream(EchoRequest(payload: Data("x".utf8), delayMs: 100, count: 1000),
                                       options: CallOptions(metadata: ["request-id": "crash-test-42"]))
        var iterator = stream.makeAsyncIterator()
        #expect(try await iterator.next()?.sequence == 0)
        kill(Int32(pid), SIGILL)
        let restarted = try await up.waitForLine(containing: "[up] speech died of signal \(SIGILL)", timeout: 20)
        #expect(restarted.contains("last request started: request crash-test-42 /chorus.speech.v1.Speech/EchoStream"), "\(up.log)")
        #expect(up.log.contains("[speech] chorus crash: speech died of SIGILL (a Swift trap)"), "\(up.log)")
        withExtendedLifetime(iterator) {}
    }

    /// `chorus up` killed with -9 cannot stop its children itself: they notice and exit. (Started as a
    /// person would, without the variable the test harness sets for every other process.)
    @Test func theServicesFollowAKilledChorusUpOut() async throws {
        let (up, ports) = try await Self.upWithoutHTTP(exitWithParent: false)
        let speech = SpeechClient(try WireClient(address: "127.0.0.1:\(ports[3])"))
        let pid = Int32(try await speech.status(StatusRequest()).pid)
        (speech.channel as? WireClient)?.close()
        up.signal(SIGKILL)
        let giveUp = Date().addingTimeInterval(15)
        while kill(pid, 0) == 0 && Date() < giveUp { try await Task.sleep(for: .milliseconds(100)) }
        #expect(kill(pid, 0) != 0, "speech (pid \(pid)) outlived chorus up")
    }
}
