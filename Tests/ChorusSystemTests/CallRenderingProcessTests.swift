import ChorusTestSupport
import Foundation
import Testing

/// `chorus call` as people and scripts see it: on a pseudo-terminal a diffusion run draws a progress bar that ends
/// at 100% and a transcription prints its segments; piped, or with --json, every answer is one line of JSON.
@Suite(.serialized) struct CallRenderingProcessTests {
    static let textToImage = #"{"prompt": "a cat", "steps": 6, "seed": 3, "width": 32, "height": 32, "preview_every": 2}"#

    @Test func onATerminalDiffusionDrawsABarThatEndsAtTheLastStep() async throws {
        let (process, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", try StableDiffusionProcessTests.models()])
        defer { process.signal(SIGKILL) }

        let (status, screen) = try Self.runOnTerminal(["call", "diffusion.TextToImage", Self.textToImage, "--target", address])
        #expect(status == 0, "\(screen)")
        // Each redraw returns to the line's start; the bar grows step by step and the last one is full.
        let draws = screen.components(separatedBy: "\r").map { $0.replacingOccurrences(of: "\u{1B}[2K", with: "") }
            .filter { $0.hasPrefix("[") && $0.contains(" steps ") }
        #expect(draws.map { $0.components(separatedBy: "] ")[1].split(separator: " ")[0] } == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"], "\(screen)")
        #expect(draws.first?.contains("ETA") == true && draws.first?.contains("[#####-------") == true, "\(screen)")
        #expect(draws.last?.hasPrefix("[" + String(repeating: "#", count: 30) + "] 6/6 steps 100%") == true, "\(screen)")
        #expect(draws.last?.contains("2 previews") == true, "previews after steps 2 and 4 are counted on the bar: \(screen)")
        #expect(screen.contains("1 image, seed 3, "), "\(screen)")
        #expect(!screen.contains("iVBOR"), "no base64 PNG on a person's terminal")

        // The same call piped, and with --json on a terminal: one JSON object a line, every event there.
        let (pipedStatus, piped) = try await ChorusProcess.run(["call", "diffusion.TextToImage", Self.textToImage, "--target", address], timeout: 60)
        let (jsonStatus, jsonScreen) = try Self.runOnTerminal(["call", "diffusion.TextToImage", Self.textToImage, "--target", address, "--json"])
        #expect(pipedStatus == 0 && jsonStatus == 0)
        for output in [piped, jsonScreen.replacingOccurrences(of: "\r\n", with: "\n")] {
            let lines = output.split(separator: "\n").filter { !$0.contains("info chorus") }
            let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(objects.count == lines.count && lines.count == 6 + 2 + 1, "6 progress, 2 previews, the result:\n\(output)")
            #expect(objects.compactMap { ($0["progress"] as? [String: Any])?["step"] as? Int } == [1, 2, 3, 4, 5, 6])
            #expect(((objects.last?["result"] as? [String: Any])?["images"] as? [Any])?.count == 1)
        }
    }

    @Test func onATerminalATranscriptionPrintsItsSegments() async throws {
        let models = try RealModels.path("")
        let (speech, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--models", models])
        defer { speech.signal(SIGKILL) }
        let wav = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-render-\(getpid()).wav")
        defer { try? FileManager.default.removeItem(at: wav) }
        let (made, _) = try await ChorusProcess.run(["call", "speech.Synthesize", #"{"text": "Turn on the lights."}"#, "--target", address,
                                                     "--save", "data=\(wav.path)"], timeout: 60)
        #expect(made == 0)
        let (status, screen) = try Self.runOnTerminal(["call", "speech.Transcribe", "{}", "--file", "audio.wav=\(wav.path)", "--target", address])
        #expect(status == 0, "\(screen)")
        let lines = screen.components(separatedBy: "\r\n")
        #expect(lines.contains { $0.hasPrefix("[00:00.000 --> ") && $0.lowercased().contains("lights") }, "\(screen)")
        #expect(lines.contains { $0.hasPrefix("language en") && $0.contains("model whisper-tiny.en") }, "\(screen)")
    }

    /// Runs chorus with its standard output and error on a new pseudo-terminal; returns its exit status and all it
    /// wrote there (a terminal turns "\n" into "\r\n").
    static func runOnTerminal(_ arguments: [String], timeout: Double = 60) throws -> (Int32, String) {
        var controller: Int32 = -1, terminal: Int32 = -1
        guard openpty(&controller, &terminal, nil, nil, nil) == 0 else { throw TestFailure("openpty failed: errno \(errno)") }
        defer { close(controller) }
        let process = Process()
        process.executableURL = ChorusProcess.binary
        process.arguments = arguments
        let handle = FileHandle(fileDescriptor: terminal, closeOnDealloc: false)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        close(terminal)  // the child holds it now: reading ends (EIO) once it exits
        var screen = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let giveUp = Date().addingTimeInterval(timeout)
        while Date() < giveUp {
            var ready = pollfd(fd: controller, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 200) >= 0 else { break }
            if ready.revents == 0 { continue }
            let count = read(controller, &buffer, buffer.count)
            if count <= 0 { break }
            screen.append(contentsOf: buffer[0..<count])
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: screen, as: UTF8.self))
    }
}
