import ChorusTensor
import Foundation
import Logging

/// Runs a benchmark peer (or one of our own configurations) to completion and reads the JSON object on
/// the last line of its output; nil when it fails (its stderr goes to ours, so the reason is visible).
func runJSON(_ executable: String, _ arguments: [String], quietErrors: Bool = true) -> [String: Any]? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = KernelChoice.originalEnvironment
    let pipe = Pipe()
    process.standardOutput = pipe
    if quietErrors { process.standardError = FileHandle.nullDevice }
    guard (try? process.run()) != nil else { return nil }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
}

/// A peer that stays loaded and answers one JSON line per request line (`diffusion_peer.py --serve`), so a
/// benchmark can alternate rounds of its own with rounds of the peer's: on these machines the speed of both
/// drifts by tens of percent over a minute, and back-to-back blocks of each would measure the drift.
final class PeerSession {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var pending = Data()

    init?(_ executable: String, _ arguments: [String]) {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = KernelChoice.originalEnvironment
        process.standardInput = input
        process.standardOutput = output
        guard (try? process.run()) != nil else { return nil }
    }

    /// The answer to `request`, or nil when the peer has exited or answered something else than JSON.
    func ask(_ request: String) -> [String: Any]? {
        input.fileHandleForWriting.write(Data((request + "\n").utf8))
        while !pending.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { return nil }
            pending.append(chunk)
        }
        let end = pending.firstIndex(of: UInt8(ascii: "\n"))!
        let line = pending[pending.startIndex..<end]
        pending = Data(pending[(end + 1)...])
        return try? JSONSerialization.jsonObject(with: line) as? [String: Any]
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// The Python that runs the peers: the project's venv when it exists.
var peerPython: String {
    FileManager.default.isExecutableFile(atPath: ".venv/bin/python") ? ".venv/bin/python" : "/usr/bin/python3"
}

/// Median seconds of `body` over enough runs to fill about `budget` seconds (at least 3), after one warm-up.
func medianSeconds(budget: Double = 3, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    let started = Date()
    while times.count < 3 || (Date().timeIntervalSince(started) < budget && times.count < 200) {
        let t = Date()
        body()
        times.append(Date().timeIntervalSince(t))
    }
    return times.sorted()[times.count / 2]
}

/// Benchmarks print their own tables; only warnings from the services they start get through.
func quietBenchLogging() {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
}

/// The CPU as /proc/cpuinfo names it, with its family and model (the name alone, "AMD EPYC", hides which
/// generation), the widest vector instructions it has, and the level this process's kernels use (`CHORUS_CPU`).
func cpuName() -> String {
    let lines = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(separator: "\n")
    func field(_ name: String) -> String {
        lines.first { $0.hasPrefix(name) }?.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
    }
    let flags = Set(field("flags").split(separator: " ").map(String.init))
    let vector = ["amx_tile", "avx512_bf16", "avx512f", "avx2"].filter(flags.contains).joined(separator: ", ")
    return "\(field("model name")) (family \(field("cpu family")) model \(field("model")); \(vector.isEmpty ? "no AVX2" : vector)), \(ProcessInfo.processInfo.activeProcessorCount) cores; kernels at \(CPULevel.chosen)"
}
