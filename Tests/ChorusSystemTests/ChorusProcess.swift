import Foundation
import Testing

/// A `chorus` subcommand running as its own process, with its output captured line by line.
final class ChorusProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var output = ""

    /// The chorus binary sits beside the test bundle (swift build puts both in .build/<config>).
    static var binary: URL {
        if let override = ProcessInfo.processInfo.environment["CHORUS_BIN"] { return URL(fileURLWithPath: override) }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("chorus")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/chorus")
    }

    init(_ arguments: [String], executable: URL? = nil, exitWithParent: Bool = true, environment extra: [String: String] = [:]) throws {
        let binary = executable ?? Self.binary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("no chorus binary at \(binary.path): run `swift build` before `swift test` (or set CHORUS_BIN)")
        }
        process.executableURL = binary
        process.arguments = arguments
        // Servers a test leaves running (the shared speech process) exit when the test run does.
        var environment = ProcessInfo.processInfo.environment
        environment["CHORUS_EXIT_WITH_PARENT"] = exitWithParent ? "1" : nil
        environment.merge(extra) { $1 }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Blocking reads on a thread of its own until the output ends. FileHandle's readabilityHandler (a
        // dispatch source) raced with the handle being closed and once crashed libdispatch's event loop,
        // and with it the whole test run; the thread holds the handle, so it is never closed under a read.
        let reader = pipe.fileHandleForReading
        let thread = Thread { [weak self] in
            readUntilEnd(reader) { self?.append($0) }
        }
        thread.name = "chorus output"
        thread.start()
    }

    private func append(_ data: Data) {
        lock.withLock { output += String(decoding: data, as: UTF8.self) }
    }

    /// A shell command line (for limits such as `ulimit -f` before `exec chorus ...`).
    static func shell(_ command: String) throws -> ChorusProcess {
        try ChorusProcess(["-c", command], executable: URL(fileURLWithPath: "/bin/sh"))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var log: String { lock.withLock { output } }
    var pid: Int32 { process.processIdentifier }

    /// Waits for a line containing `text`; returns that line.
    @discardableResult
    func waitForLine(containing text: String, timeout: Double = 20) async throws -> String {
        let giveUp = Date().addingTimeInterval(timeout)
        while Date() < giveUp {
            if let line = log.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(50))  // let the last output arrive
                if let line = log.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
                throw TestFailure("chorus \(process.arguments!.joined(separator: " ")) exited (\(process.terminationStatus)) before printing '\(text)':\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // A test task can be starved past the deadline by CPU-bound suites: look once more before failing.
        if let line = log.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
        throw TestFailure("no '\(text)' within \(timeout) s from chorus \(process.arguments!.joined(separator: " ")):\n\(log)")
    }

    /// Starts a service or gateway with --port 0 and returns the address it listens on. The wait is long
    /// because debug builds load models slowly while the other suites hold both cores.
    static func serve(_ arguments: [String], startTimeout: Double = 60, environment: [String: String] = [:]) async throws -> (ChorusProcess, String) {
        let process = try ChorusProcess(arguments, environment: environment)
        _ = try await process.waitForLine(containing: " listening on ", timeout: startTimeout)
        guard let address = process.listeningAddress else { throw TestFailure("no address in:\n\(process.log)") }
        return (process, address)
    }

    /// The address from the process's "listening on" line, once it has printed one.
    var listeningAddress: String? {
        log.split(separator: "\n").lazy.compactMap { line -> String? in
            guard let range = line.range(of: " listening on ") else { return nil }
            return line[range.upperBound...].split(separator: " ").first.map(String.init)
        }.first
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Waits for the process to end; returns its exit status, or nil if it is still running after `timeout`.
    func waitForExit(timeout: Double = 10) async -> Int32? {
        let giveUp = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < giveUp {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Runs a short command to completion: (exit status, output).
    static func run(_ arguments: [String], timeout: Double = 30, environment: [String: String] = [:]) async throws -> (Int32, String) {
        let process = try ChorusProcess(arguments, environment: environment)
        guard let status = await process.waitForExit(timeout: timeout) else {
            process.signal(SIGKILL)
            throw TestFailure("chorus \(arguments.joined(separator: " ")) did not finish within \(timeout) s:\n\(process.log)")
        }
        try await Task.sleep(for: .milliseconds(30))
        return (status, process.log)
    }
}

/// Hands each chunk read from `handle` to `consume` as it arrives (one read(2) at a time, so a line is seen
/// when it is written), until end of file. Blocks: run it on a thread of its own, which keeps the handle,
/// and with it the descriptor, open until the end.
func readUntilEnd(_ handle: FileHandle, _ consume: (Data) -> Void) {
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            consume(Data(buffer[0..<count]))
        } else if count < 0 && errno == EINTR {
            continue
        } else {
            return
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A port that was free a moment ago (for configs that must name ports up front).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}
