import ChorusServiceKit
import Foundation

/// Runs child processes of this same binary, forwards their output with a name prefix, restarts the
/// ones that die (with back-off), and stops them all on SIGINT/SIGTERM.
final class Supervisor: @unchecked Sendable {
    struct ProcessSpec {
        var name: String
        var arguments: [String]
    }

    private let specs: [ProcessSpec]
    private let lock = NSLock()
    private var children: [String: Process] = [:]
    private var stopping = false
    private let executable: String
    private let output = FileHandle.standardError

    init(specs: [ProcessSpec]) {
        self.specs = specs
        self.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func run() async {
        let signals = TerminationSignals()
        for spec in specs {
            start(spec, backoff: 0.5)
        }
        let signal = await signals.next()
        log("up", "\(signal): stopping \(specs.count) processes")
        await stopAll()
        log("up", "all processes stopped")
    }

    private func start(_ spec: ProcessSpec, backoff: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = spec.arguments
        // Children follow `chorus up` out: killed with -9, or through a closed pipe, it cannot stop them itself.
        var environment = ProcessInfo.processInfo.environment
        environment["CHORUS_EXIT_WITH_PARENT"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let prefixer = LinePrefixer(prefix: "[\(spec.name)] ", output: output)
        // Blocking reads on a thread of its own until the child's output ends: FileHandle's
        // readabilityHandler (a dispatch source) can race with the handle's closing inside libdispatch.
        let reader = pipe.fileHandleForReading
        let relay = Thread {
            // One read(2) at a time, so each line is passed on as soon as it is written.
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reader.fileDescriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    prefixer.feed(Data(buffer[0..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            prefixer.finish()
        }
        relay.name = "[\(spec.name)] output"
        let startedAt = Date()
        process.terminationHandler = { [weak self] finished in
            guard let self else { return }
            let stopping = self.lock.withLock { self.stopping }
            if stopping { return }
            let ranFor = Date().timeIntervalSince(startedAt)
            // A process that ran a while before dying starts again quickly; one that keeps dying waits longer.
            let delay = ranFor > 60 ? 0.5 : backoff
            let how = finished.terminationReason == .uncaughtSignal
                ? "died of signal \(finished.terminationStatus)" : "exited with status \(finished.terminationStatus)"
            // The crash report's line may still be on its way through the pipe.
            let crash = prefixer.lastCrash(waitingUpTo: 1)
            let serving = crash.map { " (\($0))" } ?? ""
            self.log("up", "\(spec.name) \(how) after \(String(format: "%.1f", ranFor)) s\(serving); restarting in \(delay) s")
            DispatchQueue.global().asyncAfter(deadline: .now() + delay) {
                guard !self.lock.withLock({ self.stopping }) else { return }
                self.start(spec, backoff: min(delay * 2, 30))
            }
        }
        do {
            try process.run()
            relay.start()
            lock.withLock { children[spec.name] = process }
            log("up", "started \(spec.name) (pid \(process.processIdentifier)): chorus \(spec.arguments.joined(separator: " "))")
        } catch {
            log("up", "cannot start \(spec.name): \(error)")
        }
    }

    private func stopAll() async {
        let running: [(String, Process)] = lock.withLock {
            stopping = true
            return children.map { ($0.key, $0.value) }
        }
        for (_, process) in running where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
        }
        let giveUp = Date().addingTimeInterval(15)
        while running.contains(where: { $0.1.isRunning }) && Date() < giveUp {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for (name, process) in running where process.isRunning {
            log("up", "\(name) did not stop within 15 s; killing it")
            kill(process.processIdentifier, SIGKILL)
        }
    }

    private func log(_ name: String, _ message: String) {
        output.write(Data("[\(name)] \(message)\n".utf8))
    }
}

/// Splits a child's output into lines and writes each with the child's name in front; remembers the
/// crash report's line ("chorus crash: ... serving request ...") so a restart can say what killed it.
private final class LinePrefixer: @unchecked Sendable {
    private let prefix: Data
    private let output: FileHandle
    private var pending = Data()
    private let lock = NSLock()
    private var crash: String?
    private var finished = false

    init(prefix: String, output: FileHandle) {
        self.prefix = Data(prefix.utf8)
        self.output = output
    }

    func feed(_ data: Data) {
        lock.withLock {
            pending.append(data)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let text = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                if let range = text.range(of: "chorus crash: ") { crash = String(text[range.upperBound...]) }
                var line = prefix
                line.append(pending[pending.startIndex...newline])
                output.write(line)
                pending.removeSubrange(pending.startIndex...newline)
            }
        }
    }

    func finish() {
        lock.withLock { finished = true }
    }

    /// The crash report line, once the output has ended or `seconds` have passed.
    func lastCrash(waitingUpTo seconds: Double) -> String? {
        let giveUp = Date().addingTimeInterval(seconds)
        while !lock.withLock({ finished }) && Date() < giveUp { usleep(10_000) }
        return lock.withLock { crash }
    }
}
