import Foundation
import Logging

/// Runs a benchmark peer (or one of our own configurations) to completion and reads the JSON object on
/// the last line of its output; nil when it fails (its stderr goes to ours, so the reason is visible).
func runJSON(_ executable: String, _ arguments: [String], quietErrors: Bool = true) -> [String: Any]? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    if quietErrors { process.standardError = FileHandle.nullDevice }
    guard (try? process.run()) != nil else { return nil }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
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
