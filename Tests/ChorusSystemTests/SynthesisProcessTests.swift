import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import Testing

/// Text-to-speech in the speech process with the real Piper voice (scripts/fetch-models), over the wire.
@Suite(.serialized) struct SynthesisProcessTests {
    func client() async throws -> SpeechClient {
        SpeechClient(try WireClient(address: try await SpeechProcessTests.service.address))
    }

    func chunks(_ speech: SpeechClient, _ request: SynthesizeRequest) async throws -> [AudioChunk] {
        var chunks: [AudioChunk] = []
        for try await chunk in speech.synthesize(request) { chunks.append(chunk) }
        return chunks
    }

    @Test func listsThePiperVoice() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        let voices = try await speech.listVoices(ListVoicesRequest()).voices
        let joe = try #require(voices.first { $0.name == "en_US-joe-medium" }, "voices: \(voices.map(\.name))")
        #expect(joe.sampleRate == 22050 && joe.language == "en_US" && joe.modelKind == "piper" && joe.speakers == 1)
    }

    @Test func streamsOneWAVPerSentence() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        let got = try await chunks(speech, SynthesizeRequest(text: "Good morning. How are you today? Fine, thanks!"))
        #expect(got.map(\.text) == ["Good morning.", "How are you today?", "Fine, thanks!"])
        #expect(got.map(\.sequence) == [0, 1, 2] && got.map(\.last) == [false, false, true])
        for chunk in got {
            #expect(chunk.format == .wav && chunk.sampleRate == 22050 && chunk.channels == 1)
            #expect(chunk.data.prefix(4) == Data("RIFF".utf8) && chunk.data.count > 44 + 2 * 22050 / 4, "a WAV of at least 0.25 s")
        }
    }

    @Test func deterministicWithZeroNoiseAndSeededOtherwise() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        let exact = SynthesizeRequest(text: "Same every time.", noiseScale: 0, noiseW: 0, format: .pcmF32, exactScales: true)
        let a = try await chunks(speech, exact), b = try await chunks(speech, exact)
        #expect(a[0].data == b[0].data && a[0].format == .pcmF32)
        let seeded = SynthesizeRequest(text: "Same every time.", format: .pcmF32, seed: 42)
        let c = try await chunks(speech, seeded), d = try await chunks(speech, seeded)
        var other = seeded
        other.seed = 43
        let e = try await chunks(speech, other)
        #expect(c[0].data == d[0].data && c[0].data != e[0].data)
        // Slower speech is longer; resampling gives the asked rate.
        var slow = exact
        slow.lengthScale = 1.5
        slow.sampleRate = 16000
        let s = try await chunks(speech, slow)
        #expect(s[0].sampleRate == 16000)
        #expect(Double(s[0].data.count) / 16000 > 1.3 * Double(a[0].data.count) / 22050)
    }

    /// Three sentences spoken by the Piper voice and transcribed by Whisper tiny.en: WER ≤ 10% each.
    @Test func piperToWhisperRoundTrip() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        for sentence in ["The library opens early in the morning.",
                         "Please remember to water the plants while I am away.",
                         "Our train was delayed because of the heavy snow."] {
            let audio = try await chunks(speech, SynthesizeRequest(text: sentence, sampleRate: 16000))
            var result = TranscribeResult()
            for try await event in speech.transcribe(TranscribeRequest(audio: Audio(wav: audio[0].data))) {
                if let final = event.result { result = final }
            }
            let error = wordErrorRate(reference: sentence, hypothesis: result.text)
            #expect(error <= 0.10, "WER \(error): '\(result.text)' for '\(sentence)'")
        }
    }

    @Test func badTextGetsClearErrors() async throws {
        let speech = try await client()
        defer { (speech.channel as? WireClient)?.close() }
        let cases: [(SynthesizeRequest, StatusCode, String)] = [
            (SynthesizeRequest(text: "   "), .invalidArgument, "no text"),
            (SynthesizeRequest(text: String(repeating: "word ", count: 1001)), .invalidArgument, "the limit is 5000"),
            (SynthesizeRequest(text: "Hi.", voice: "nobody"), .notFound, "no voice named 'nobody'"),
            (SynthesizeRequest(text: "Hi.", speakerId: 3), .invalidArgument, "one speaker"),
            (SynthesizeRequest(text: "Hi.", lengthScale: -1), .invalidArgument, "length_scale"),
            (SynthesizeRequest(text: "🂡🂢 ∰"), .invalidArgument, "nothing to pronounce"),
            (SynthesizeRequest(text: "..."), .invalidArgument, "nothing to pronounce"),
        ]
        for (request, code, text) in cases {
            do {
                _ = try await chunks(speech, request)
                Issue.record("accepted \(request.text.prefix(20))")
            } catch let status as WireStatus {
                #expect(status.code == code && status.message.contains(text), "\(status)")
            }
        }
        // Text mixing what espeak can say with what it cannot still speaks.
        let mixed = try await chunks(speech, SynthesizeRequest(text: "Cards 🂡 fall. ∰"))
        #expect(mixed.map(\.text) == ["Cards 🂡 fall."])
    }
}
