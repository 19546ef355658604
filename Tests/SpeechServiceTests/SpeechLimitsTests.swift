import ChorusAPI
import ChorusMedia
import ChorusServiceKit
import ChorusTestSupport
import ChorusWire
import Foundation
import Logging
@testable import SpeechService
import Testing

/// What the hostile-client probing found in SpeechService, over a real wire server in this process with
/// the real tiny.en (scripts/fetch-models): a full queue must refuse at once, not hang; a WAV header's
/// sample rate must not become a CPU bomb.
@Suite(.serialized) struct SpeechLimitsTests {
    /// A speech server with one slot and no queue, whose slot the test can hold.
    static func start() async throws -> (ServiceRuntime, WireServer, SpeechClient) {
        let models = NSTemporaryDirectory() + "chorus-speech-limits-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/whisper-tiny.en", withDestinationPath: try RealModels.path("whisper-tiny.en"))
        let runtime = ServiceRuntime(options: .init(service: "speech", modelsDirectory: models, maxConcurrency: 1, maxQueue: 0),
                                     logger: Logger(label: "test"))
        let server = WireServer(configuration: .init(port: 0), routes: try SpeechServer(runtime: runtime).routes)
        let port = try await server.start()
        return (runtime, server, SpeechClient(try WireClient(address: "127.0.0.1:\(port)")))
    }

    static func wav(rate: Int, seconds: Double) throws -> Data {
        let count = Int(Double(rate) * seconds)
        let tone = (0..<count).map { Float(sin(2 * Double.pi * 440 * Double($0) / Double(rate)) * 0.1) }
        return Data(try WAVCodec.encode(AudioSamples(sampleRate: rate, mono: tone)))
    }

    /// Before the fix the segment stream was only finished inside the compute block: a call the limiter
    /// refused never answered (until its deadline, or forever over HTTP).
    @Test func aFullQueueRefusesTranscribeAndTranslateAtOnce() async throws {
        let (runtime, server, speech) = try await Self.start()
        defer { (speech.channel as? WireClient)?.close(); Task { await server.close() } }
        let (release, releaser) = AsyncStream<Void>.makeStream()
        let holder = Task { try await runtime.limiter.run { for await _ in release {} } }
        let giveUp = Date().addingTimeInterval(10)
        while await runtime.limiter.inFlight < 1 && Date() < giveUp { try await Task.sleep(for: .milliseconds(5)) }
        #expect(await runtime.limiter.inFlight == 1)

        // The deadline only bounds the test if the bug is back: then the code would be DEADLINE_EXCEEDED.
        let options = CallOptions(timeout: .seconds(30))
        let request = TranscribeRequest(audio: Audio(wav: try Self.wav(rate: 16000, seconds: 1)))
        for attempt in 0..<3 {
            do {
                _ = try await collect(speech.transcribe(request, options: options))
                Issue.record("transcribe \(attempt) was accepted with the only slot held")
            } catch let status as WireStatus {
                #expect(status.code == .resourceExhausted, "\(status)")
            }
        }
        await #expect(throws: WireStatus.self) { _ = try await speech.translate(request, options: options) }
        releaser.finish()
        try await holder.value

        // With the slot free the same call is served.
        let events = try await collect(speech.transcribe(request))
        #expect(events.last?.result != nil)
    }

    /// 48001 Hz took 1.7 s to set up for a 16 KB file (16000 filter phases); now it is resampled as
    /// 48000 Hz. A rate beyond any real audio is refused naming the range.
    @Test func oddAndAbsurdSampleRates() async throws {
        #expect(AudioInput.resamplingRate(44100) == 44100)
        #expect(AudioInput.resamplingRate(22050) == 22050)
        #expect(AudioInput.resamplingRate(11025) == 11025)
        #expect(AudioInput.resamplingRate(48001) == 48000)
        #expect(AudioInput.resamplingRate(160001) == 160000)
        for rate in AudioInput.sampleRates.lowerBound...40000 where rate % 7 == 0 {
            let used = AudioInput.resamplingRate(rate)
            #expect(16000 / gcd(used, 16000) <= 1000 && abs(used - rate) <= 8, "\(rate) → \(used)")
        }
        // The library refuses a table past its limit whoever calls it.
        #expect(throws: MediaError.self) { try SincResampler(inputRate: 1_000_000_007, outputRate: 16000) }

        let (_, server, speech) = try await Self.start()
        defer { (speech.channel as? WireClient)?.close(); Task { await server.close() } }
        let odd = try await collect(speech.transcribe(TranscribeRequest(audio: Audio(wav: try Self.wav(rate: 48001, seconds: 0.5)))))
        #expect(odd.last?.result != nil)
        var header = [UInt8](try Self.wav(rate: 16000, seconds: 0.1))
        withUnsafeBytes(of: UInt32(1_000_000_007).littleEndian) { header.replaceSubrange(24..<28, with: $0) }
        do {
            _ = try await collect(speech.transcribe(TranscribeRequest(audio: Audio(wav: Data(header)))))
            Issue.record("a 1 GHz WAV was accepted")
        } catch let status as WireStatus {
            #expect(status.code == .invalidArgument && status.message.contains("1000 ... 384000 Hz"), "\(status)")
        }
        // A float WAV with one NaN made every logit NaN, and beam search force-unwrapped an empty maximum.
        for bad in [Float.nan, .infinity, 1e30] {
            var samples = [Float](repeating: 0.01, count: 1600)
            samples[800] = bad
            let wav = Data(try WAVCodec.encode(AudioSamples(sampleRate: 16000, mono: samples), format: .float32))
            do {
                _ = try await collect(speech.transcribe(TranscribeRequest(audio: Audio(wav: wav), beamSize: 5)))
                Issue.record("a WAV holding \(bad) was accepted")
            } catch let status as WireStatus {
                #expect(status.code == .invalidArgument && status.message.contains("sample 800"), "\(status)")
            }
        }
        for (field, request) in [("beam_size", TranscribeRequest(beamSize: 1_000_000)), ("best_of", TranscribeRequest(bestOf: .max)),
                                 ("temperature_increment", TranscribeRequest(temperatureIncrement: 1e-30)),
                                 ("temperature_increment", TranscribeRequest(temperatureIncrement: .nan)),
                                 ("temperature", TranscribeRequest(temperature: .nan))] {
            var withAudio = request
            withAudio.audio = Audio(wav: try Self.wav(rate: 16000, seconds: 0.1))
            do {
                _ = try await collect(speech.transcribe(withAudio))
                Issue.record("\(field) out of range was accepted")
            } catch let status as WireStatus {
                #expect(status.code == .invalidArgument && status.message.contains(field), "\(status)")
            }
        }
    }

    private func collect(_ stream: ResponseStream<TranscribeEvent>) async throws -> [TranscribeEvent] {
        var events: [TranscribeEvent] = []
        for try await event in stream { events.append(event) }
        return events
    }

    private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
