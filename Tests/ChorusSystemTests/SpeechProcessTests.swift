import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import Testing

/// SpeechService as its own process with the real Whisper weights (scripts/fetch-models), over the wire.
@Suite(.serialized) struct SpeechProcessTests {
    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    static func fixture(_ name: String) -> Data {
        FileManager.default.contents(atPath: repository.appendingPathComponent("Tests/SpeechServiceTests/Fixtures/\(name)").path)!
    }

    /// One speech process for the suite: loading the models is the slow part.
    actor SharedService {
        private var started: Task<(ChorusProcess, String), Error>?

        func address() async throws -> (ChorusProcess, String) {
            if started == nil {
                started = Task {
                    let models = SpeechProcessTests.repository.appendingPathComponent("models")
                    guard FileManager.default.fileExists(atPath: models.appendingPathComponent("whisper-tiny.en/model.bin").path) else {
                        throw TestFailure("models/whisper-tiny.en is missing: run scripts/fetch-models first")
                    }
                    // Greedy keeps these process tests quick in debug builds; beam search is tested in-process.
                    // Loading two Whisper models and the Piper voice in a debug build takes a while on a busy machine.
                    return try await ChorusProcess.serve(["speech", "--port", "0", "--models", models.path, "--max-concurrency", "2", "--beam-size", "1"],
                                                         startTimeout: 90)
                }
            }
            return try await started!.value
        }
    }

    static let shared = SharedService()

    static var service: (process: ChorusProcess, address: String) {
        get async throws { try await shared.address() }
    }

    func client() async throws -> SpeechClient {
        SpeechClient(try WireClient(address: try await Self.service.address))
    }

    @Test func transcribesToSRTStreamingSegmentsFirst() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        var events: [TranscribeEvent] = []
        for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: Self.fixture("espeak_lights.wav")), format: .srt)) {
            events.append(event)
        }
        #expect(events.count == 2 && events[0].segment != nil && events[1].result != nil, "a segment, then the result")
        let result = try #require(events.last?.result)
        #expect(result.formatted == "1\n00:00:00,000 --> 00:00:02,000\nPlease turn off the lights before you leave.\n")
        #expect(result.text == " Please turn off the lights before you leave." && result.model == "whisper-tiny.en")
    }

    @Test func chorusCallThroughTheGatewayWritesSRT() async throws {
        let service = try await Self.service
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", service.address])
        defer { gateway.signal(SIGKILL) }
        let wav = Self.repository.appendingPathComponent("Tests/SpeechServiceTests/Fixtures/espeak_lights.wav").path
        let (status, output) = try await ChorusProcess.run(["call", "speech.Transcribe", #"{"format": "SRT"}"#, "--file", "audio.wav=\(wav)",
                                                            "--field", "result.formatted", "--target", gatewayAddress], timeout: 60)
        #expect(status == 0, "\(output)")
        #expect(output == "1\n00:00:00,000 --> 00:00:02,000\nPlease turn off the lights before you leave.\n\n")
        // The same file in 16 KiB chunks through TranscribeUpload, as files from --chunk-above MiB on go.
        let (chunkedStatus, chunked) = try await ChorusProcess.run(["call", "speech.Transcribe", #"{"format": "SRT"}"#, "--file", "audio.wav=\(wav)",
                                                                    "--chunk-above", "0", "--chunk-kib", "16",
                                                                    "--field", "result.formatted", "--target", gatewayAddress], timeout: 60)
        #expect(chunkedStatus == 0, "\(chunked)")
        #expect(chunked.contains("75990 bytes, sent in 5 chunks of up to 16384 bytes through /chorus.speech.v1.Speech/TranscribeUpload\n"), "\(chunked)")
        #expect(chunked.hasSuffix("\n1\n00:00:00,000 --> 00:00:02,000\nPlease turn off the lights before you leave.\n\n"), "\(chunked)")
    }

    /// An HTTP transcription's file goes on to the service while the client is still sending it: the gateway's
    /// TranscribeUpload call is open before the body is complete. A field after the file (response_format) still
    /// counts: it rides on the upload's last chunk.
    @Test func httpTranscriptionStreamsTheFileWhileItArrives() async throws {
        let service = try await Self.service
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", service.address, "--http-port", "0",
                                                                       "--http-max-body-mib", "80"])
        defer { gateway.signal(SIGKILL) }
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        let port = Int(http.split(separator: ":").last!)!

        // The sentence, then 10 s of silence: 396 KB, more than one upload chunk (256 KiB).
        let wav = wavFile(pcm16(Self.fixture("espeak_lights.wav")) + [Int16](repeating: 0, count: 160_000))
        let boundary = "chorus-stream-test"
        let head = Data(("--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
                         + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n\r\n").utf8)
        let tail = Data(("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\nsrt\r\n"
                         + "--\(boundary)--\r\n").utf8)
        let split = 300_000
        let socket = try connectedSocket(port: port)
        defer { close(socket) }
        func send(_ data: Data) throws {
            try data.withUnsafeBytes { raw in
                var sent = 0
                while sent < raw.count {
                    let n = Foundation.send(socket, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                    guard n > 0 else { throw TestFailure("send failed: errno \(errno)") }
                    sent += n
                }
            }
        }
        let length = head.count + wav.count + tail.count
        try send(Data(("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=\(boundary)\r\n"
                       + "Content-Length: \(length)\r\nConnection: close\r\n\r\n").utf8))
        try send(head + wav.prefix(split))

        // The first chunk is on its way before the rest of the body is sent.
        let uploading = "chorus_gateway_calls_in_flight{method=\"/chorus.speech.v1.Speech/TranscribeUpload\"} 1"
        var metrics = ""
        let started = await eventually(timeout: .seconds(30)) {
            metrics = (try? String(contentsOf: URL(string: http + "/metrics")!, encoding: .utf8)) ?? ""
            return metrics.contains(uploading)
        }
        #expect(started, "no TranscribeUpload in flight after \(split) of \(wav.count) bytes: \(metrics.split(separator: "\n").filter { $0.contains("in_flight") })")

        try send(wav.suffix(from: split) + tail)
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(socket, &buffer, buffer.count, 0)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
        #expect(text.hasSuffix("\r\n\r\n1\n00:00:00,000 --> 00:00:02,000\nPlease turn off the lights before you leave.\n"), "\(text)")
        let finished = await eventually(timeout: .seconds(10)) {
            metrics = (try? String(contentsOf: URL(string: http + "/metrics")!, encoding: .utf8)) ?? ""
            return metrics.contains("chorus_gateway_calls_total{method=\"/chorus.speech.v1.Speech/TranscribeUpload\",code=\"OK\"} 1")
        }
        #expect(finished, "\(metrics.split(separator: "\n").filter { $0.contains("TranscribeUpload") })")

        // A translation gathers the form and sends it as one message: a file over a frame is refused by its size
        // before any call (it once went out, failed, and took the replica out of service), and the next call works.
        let big = Data(count: 65 << 20)
        var request = URLRequest(url: URL(string: http + "/v1/audio/translations")!)
        request.httpMethod = "POST"
        request.setValue("multipart/form-data; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n\r\n".utf8) + big
            + Data("\r\n--\(boundary)--\r\n".utf8)
        let (refusal, response) = try await URLSession.shared.data(for: request)
        let refusalText = String(decoding: refusal, as: UTF8.self)
        #expect((response as? HTTPURLResponse)?.statusCode == 413 && refusalText.contains("in one message of at most"), "\(refusalText)")
        let echo = try await SpeechClient(try WireClient(address: gatewayAddress)).echo(EchoRequest())
        #expect(!echo.servedBy.isEmpty)

        // Streamed, the body is still bounded by --http-max-body-mib (80): past it the upload is cancelled and the
        // answer is 413.
        request = URLRequest(url: URL(string: http + "/v1/audio/transcriptions")!)
        request.httpMethod = "POST"
        request.setValue("multipart/form-data; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        request.httpBody = head + Data(count: 81 << 20) + Data("\r\n--\(boundary)--\r\n".utf8)
        let (tooLarge, tooLargeResponse) = try await URLSession.shared.data(for: request)
        let tooLargeText = String(decoding: tooLarge, as: UTF8.self)
        #expect((tooLargeResponse as? HTTPURLResponse)?.statusCode == 413 && tooLargeText.contains("larger than the limit"), "\(tooLargeText)")
        let cancelled = await eventually(timeout: .seconds(10)) {
            metrics = (try? String(contentsOf: URL(string: http + "/metrics")!, encoding: .utf8)) ?? ""
            return metrics.contains("chorus_gateway_calls_total{method=\"/chorus.speech.v1.Speech/TranscribeUpload\",code=\"CANCELLED\"} 1")
        }
        #expect(cancelled, "\(metrics.split(separator: "\n").filter { $0.contains("TranscribeUpload") })")
    }

    @Test func detectsLanguageAndRefusesEnglishOnlyTranslation() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        let detected = try await speech.detectLanguage(DetectLanguageRequest(audio: Audio(wav: Self.fixture("piper_speech_service.wav"))))
        #expect(detected.language == "en" && abs(detected.probability - 0.9974) < 1e-3)
        do {
            _ = try await speech.translate(TranscribeRequest(audio: Audio(wav: Self.fixture("espeak_lights.wav")), model: "whisper-tiny.en"))
            Issue.record("tiny.en translated")
        } catch let status as WireStatus {
            #expect(status.code == .invalidArgument && status.message.contains("English-only"))
        }
    }

    @Test func badAndEmptyAudio() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        for (audio, reason) in [(Audio(wav: Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVEjunk".utf8)), "audio.wav"),
                                (Audio(pcmF32: Data(count: 6), sampleRate: 16000), "whole float32 samples"),
                                (Audio(pcmF32: Data(count: 8)), "sample_rate")] {
            do {
                _ = try await speech.translate(TranscribeRequest(audio: audio, model: "whisper-base"))
                Issue.record("accepted \(reason)")
            } catch let status as WireStatus {
                #expect(status.code == .invalidArgument && status.message.contains(reason), "\(status)")
            }
        }
        // An empty WAV is an empty transcript, not an error.
        let empty = wavFile([])
        var events: [TranscribeEvent] = []
        for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: empty))) { events.append(event) }
        #expect(events.count == 1 && events[0].result?.text == "" && events[0].result?.segments.isEmpty == true)
        // Raw float32 PCM, stereo, uploaded in chunks, is downmixed.
        let stereo = pcm16(Self.fixture("espeak_lights.wav")).flatMap { [Float($0) / 32768, Float($0) / 32768] }
        let pcm = stereo.withUnsafeBytes { Data($0) }
        let half = pcm.count / 2 / 8 * 8
        let result = try await speech.transcribeUpload(AsyncStreamOf([
            AudioChunk(data: pcm.prefix(half), format: .pcmF32, sampleRate: 16000, channels: 2, options: TranscribeRequest(format: .text)),
            AudioChunk(data: pcm.suffix(from: half), format: .pcmF32, sampleRate: 16000, channels: 2),
        ]))
        #expect(result.text.lowercased().contains("lights"), "\(result.text)")
    }

    @Test func longAudioIsTranscribedWindowByWindowAndCancelStopsIt() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        // 70 s: the two clips with silence between them, repeated: three 30 s windows.
        let a = pcm16(Self.fixture("espeak_lights.wav")), b = pcm16(Self.fixture("piper_speech_service.wav"))
        let silence = [Int16](repeating: 0, count: 16000 * 9)
        var samples: [Int16] = []
        while samples.count < 16000 * 70 { samples += a + silence + b + silence }
        let long = wavFile(samples)
        var segments: [Segment] = []
        var result: TranscribeResult?
        for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: long), format: .vtt)) {
            if let segment = event.segment { segments.append(segment) }
            if let final = event.result { result = final }
        }
        let final = try #require(result)
        #expect(final.durationSeconds > 69)
        #expect(segments.count >= 4, "\(segments.map(\.text))")
        #expect(zip(segments, segments.dropFirst()).allSatisfy { $0.start <= $1.start }, "segments in time order")
        #expect((segments.last?.start ?? 0) > 30, "the later windows were decoded")
        #expect(final.formatted.hasPrefix("WEBVTT\n\n00:00:00.000 --> "))

        // Cancel after the first segment: the service stops decoding (its in-flight count drops back).
        for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: long))) where event.segment != nil { break }
        let giveUp = Date().addingTimeInterval(10)
        var idle = false
        while Date() < giveUp && !idle {
            idle = try await speech.status(StatusRequest()).inFlight == 1
            if !idle { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(idle, "decoding stopped after CANCEL")
    }

    @Test func espeakRoundTripWordErrorRateAtMostTenPercent() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        for sentence in ["Please send the report to the finance team by Friday.",
                         "It is going to rain tomorrow, so bring an umbrella.",
                         "Turn left at the next traffic light."] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("espeak-\(UUID().uuidString).wav")
            defer { try? FileManager.default.removeItem(at: file) }
            let espeak = Process()
            espeak.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            espeak.arguments = ["espeak-ng", "-v", "en-us", "-w", file.path, sentence]
            try espeak.run()
            espeak.waitUntilExit()
            #expect(espeak.terminationStatus == 0, "espeak-ng is needed (scripts/install-deps installs it)")
            // espeak-ng writes 22050 Hz: the service resamples it.
            var result = TranscribeResult()
            for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: try Data(contentsOf: file)))) {
                if let final = event.result { result = final }
            }
            let error = wordErrorRate(reference: sentence, hypothesis: result.text)
            #expect(error <= 0.10, "WER \(error): \(result.text)")
        }
    }
}

/// Word error rate after lowercasing and dropping punctuation: word-level edit distance / reference words.
func wordErrorRate(reference: String, hypothesis: String) -> Double {
    func words(_ text: String) -> [String] {
        text.lowercased().components(separatedBy: CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "'")).inverted).filter { !$0.isEmpty }
    }
    let r = words(reference), h = words(hypothesis)
    var row = Array(0...h.count)
    for i in 1...max(r.count, 1) where !r.isEmpty {
        var next = [i] + [Int](repeating: 0, count: h.count)
        for j in 1...max(h.count, 1) where !h.isEmpty {
            next[j] = min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1))
        }
        row = next
    }
    return Double(row[h.count]) / Double(max(r.count, 1))
}

func le(_ v: UInt32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
func le16(_ v: UInt16) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }

func pcm16(_ wav: Data) -> [Int16] {
    let bytes = Array(wav)
    return stride(from: 44, to: bytes.count - 1, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
}

/// A 16 kHz mono PCM16 WAV.
func wavFile(_ samples: [Int16]) -> Data {
    let data = samples.withUnsafeBytes { Data($0) }
    var out = Data("RIFF".utf8)
    out += le(UInt32(36 + data.count))
    out += Data("WAVEfmt ".utf8)
    out += le(16)
    out += le16(1) + le16(1)
    out += le(16000) + le(32000)
    out += le16(2) + le16(16)
    out += Data("data".utf8)
    out += le(UInt32(data.count))
    return out + data
}

/// `chorus speech --precision int8`: the real tiny.en on int8 weights, over the wire.
@Suite struct SpeechInt8ProcessTests {
    @Test func int8TranscribesTheSameWordsAndListModelsSaysSo() async throws {
        let real = SpeechProcessTests.repository.appendingPathComponent("models/whisper-tiny.en")
        guard FileManager.default.fileExists(atPath: real.appendingPathComponent("model.bin").path) else {
            throw TestFailure("models/whisper-tiny.en is missing: run scripts/fetch-models first")
        }
        let models = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-int8-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: models) }
        try FileManager.default.createSymbolicLink(at: models.appendingPathComponent("whisper-tiny.en"), withDestinationURL: real)
        let (process, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--models", models.path, "--beam-size", "1", "--precision", "int8"],
                                                               startTimeout: 90)
        defer { process.signal(SIGKILL) }
        let speech = SpeechClient(try WireClient(address: address))
        defer { (speech.channel as? WireClient)?.close() }
        let listed = try await speech.listModels(ListModelsRequest()).models
        let precision = listed.first { $0.name == "whisper-tiny.en" }?.details.first { $0.key == "precision" }?.value
        let vnni = (try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)).contains(" avx512_vnni")
        #expect(precision == (vnni ? "int8" : "float32"), "\(listed)")
        if !vnni { #expect(process.log.contains("--precision int8 needs AVX-512 VNNI"), "\(process.log)") }
        var result: TranscribeResult?
        for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: SpeechProcessTests.fixture("espeak_lights.wav")))) {
            if let done = event.result { result = done }
        }
        #expect(result?.text == " Please turn off the lights before you leave.")
    }
}
