import ChorusMedia
import ChorusTensor
import ChorusTestSupport
import ChorusText
import Foundation
@testable import SpeechService
import Testing

/// Beam search, temperature fallback, prompts and word timestamps on the real tiny.en (scripts/fetch-models).
@Suite(.serialized) struct WhisperDecodingTests {
    static let engine = Result { try WhisperEngine(name: "whisper-tiny.en", folder: RealModels.path("whisper-tiny.en")) }

    static func samples(_ clip: String) throws -> [Float] {
        let path = Bundle.module.path(forResource: clip, ofType: "wav", inDirectory: "Fixtures")!
        return try WAVCodec.decode(Array(FileManager.default.contents(atPath: path)!)).downmixedToMono()
    }

    @Test func beamSearchFindsTheSameSentences() throws {
        let engine = try Self.engine.get()
        var options = TranscribeOptions()
        options.decoding.beamSize = 5
        let lights = try engine.transcribe(Self.samples("espeak_lights"), options: options)
        #expect(lights.text == " Please turn off the lights before you leave.")
        let hello = try engine.transcribe(Self.samples("piper_speech_service"), options: options)
        #expect(hello.text == " Hello world, this is a test of the speech service.")
        #expect(hello.segments.count == 1 && hello.segments[0].temperature == 0)
    }

    @Test func fallbackRaisesTheTemperatureAndSamplingIsSeeded() throws {
        let engine = try Self.engine.get()
        var options = TranscribeOptions()
        options.logprobThreshold = 0  // no window can be that sure: every temperature is tried
        options.noSpeechThreshold = 1
        options.decoding.seed = 42
        options.temperatures = [0, 0.6, 1.0]
        options.decoding.bestOf = 2
        let first = try engine.transcribe(Self.samples("espeak_lights"), options: options)
        #expect(first.segments.first?.temperature == 1.0, "\(first.segments.map(\.temperature))")
        let again = try engine.transcribe(Self.samples("espeak_lights"), options: options)
        #expect(first.segments.map(\.tokens) == again.segments.map(\.tokens), "same seed, same samples")
    }

    @Test func anInitialPromptIsContextNotTranscript() throws {
        let engine = try Self.engine.get()
        var options = TranscribeOptions()
        options.initialPrompt = "Home automation: lights, heating, blinds."
        options.decoding.beamSize = 1
        let result = try engine.transcribe(Self.samples("espeak_lights"), options: options)
        #expect(result.text.lowercased().contains("turn off the lights"))
        #expect(!result.text.contains("automation"))
    }

    @Test func wordTimestampsFollowTheSpeech() throws {
        let engine = try Self.engine.get()
        var options = TranscribeOptions()
        options.wordTimestamps = true
        options.decoding.beamSize = 1
        let result = try engine.transcribe(Self.samples("espeak_lights"), options: options)
        let words = result.segments.flatMap(\.words)
        #expect(words.map { $0.word.trimmingCharacters(in: .whitespaces) } == ["Please", "turn", "off", "the", "lights", "before", "you", "leave."])
        #expect(zip(words, words.dropFirst()).allSatisfy { $0.start <= $1.start && $0.end <= $1.end }, "\(words)")
        #expect(words.allSatisfy { $0.start <= $0.end && $0.end <= 2.4 && $0.probability > 0 })
        #expect((words.first?.start ?? 1) < 0.6 && (words.last?.end ?? 0) > 1.4, "\(words)")
    }
}

@Suite struct WhisperSilenceTests {
    @Test func silenceIsAnEmptyTranscript() throws {
        let engine = try WhisperDecodingTests.engine.get()
        var options = TranscribeOptions()
        options.decoding.beamSize = 1
        let result = try engine.transcribe([Float](repeating: 0, count: 16000 * 5), options: options)
        #expect(result.segments.isEmpty && result.text.isEmpty, "\(result.text)")
        #expect(abs(result.duration - 5) < 1e-9)
    }
}
