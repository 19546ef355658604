import ChorusMedia
import ChorusTensor
import ChorusTestSupport
import ChorusText
import Foundation
@testable import SpeechService
import Testing
import ChorusWhisper

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

    /// A minute of the two sentences (each followed by a second of silence), as `chorus bench speech` makes
    /// its clips. Beam search must go through each window as greedy decoding does: an early end kept from
    /// below the beam's cut once ended windows after their first segment (6 windows instead of 3, a third
    /// of the words missing).
    @Test func beamSearchDecodesWholeWindowsOfALongClip() throws {
        let engine = try Self.engine.get()
        var pattern: [Float] = []
        for clip in ["espeak_lights", "piper_speech_service"] { pattern += try Self.samples(clip) + [Float](repeating: 0, count: 16000) }
        var minute: [Float] = []
        while minute.count < 60 * 16000 { minute += pattern }
        minute = Array(minute.prefix(60 * 16000))
        var options = TranscribeOptions()
        options.temperatures = [0]
        options.decoding.beamSize = 1
        let greedy = try engine.transcribe(minute, options: options)
        options.decoding.beamSize = 5
        let beam = try engine.transcribe(minute, options: options)
        let count = { (text: String, word: String) in text.components(separatedBy: word).count - 1 }
        #expect(beam.windows == greedy.windows && greedy.windows <= 4, "windows: beam \(beam.windows), greedy \(greedy.windows)")
        #expect(count(beam.text, "lights") == count(greedy.text, "lights") && count(beam.text, "speech service") == count(greedy.text, "speech service"),
                "beam: \(beam.text)\ngreedy: \(greedy.text)")
        #expect(count(greedy.text, "lights") >= 5, "\(greedy.text)")
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
