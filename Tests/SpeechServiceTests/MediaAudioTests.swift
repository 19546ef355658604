import ChorusAPI
import ChorusMedia
import ChorusWire
import Foundation
@testable import SpeechService
import Testing

/// Audio.media: a video's audio track decoded by FFmpeg, through the real tiny.en (scripts/fetch-models). The
/// fixture videos (scripts/fixtures/make_video_cases.py) carry an espeak-ng voice track, AAC in MP4 and Opus in
/// WebM: each transcribes to the same text as that track as a WAV, with the segments at the same times.
@Suite(.serialized) struct MediaAudioTests {
    static let videos: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("ChorusMediaTests/Fixtures/video")
    }()

    static func bytes(_ name: String) -> Data { FileManager.default.contents(atPath: videos.appendingPathComponent(name).path)! }

    static func transcript(_ speech: SpeechClient, _ audio: Audio) async throws -> TranscribeResult {
        var result: TranscribeResult?
        for try await event in speech.transcribe(TranscribeRequest(audio: audio, beamSize: 1)) where event.result != nil { result = event.result }
        return try #require(result)
    }

    @Test func aVideosTrackTranscribesAsItsWAV() async throws {
        let (_, server, speech) = try await SpeechLimitsTests.start()
        defer { (speech.channel as? WireClient)?.close(); Task { await server.close() } }
        let wav = try await Self.transcript(speech, Audio(wav: Self.bytes("voice.wav")))
        #expect(wav.text.contains("square") && wav.text.contains("blue"), "\(wav.text)")
        for name in ["scenes.mp4", "scenes.webm", "voice.m4a"] {
            let media = try await Self.transcript(speech, Audio(media: Self.bytes(name)))
            #expect(media.text == wav.text, "\(name): \(media.text)")
            #expect(media.segments.map(\.start) == wav.segments.map(\.start), "\(name)")
        }
    }

    @Test func mediaWithoutSoundOrOverTheLimitIsRefusedByName() async throws {
        let (_, server, speech) = try await SpeechLimitsTests.start()
        defer { (speech.channel as? WireClient)?.close(); Task { await server.close() } }
        func refusal(_ audio: Audio) async -> String {
            do {
                _ = try await Self.transcript(speech, audio)
                return "accepted"
            } catch let status as WireStatus {
                return "\(status.code): \(status.message)"
            } catch {
                return "\(error)"
            }
        }
        #expect(await refusal(Audio(media: Self.bytes("silent.mp4"))) == "INVALID_ARGUMENT: audio.media: the file has no audio track")
        #expect(await refusal(Audio(media: Data("not a video at all".utf8))).hasPrefix("INVALID_ARGUMENT: audio.media: invalid video: not a video container FFmpeg can read"))
        let input = AudioInput(maxSeconds: 5)
        #expect(throws: WireStatus(.invalidArgument, "audio.media: the file is 6.0 s long, the limit is 5 s (--max-audio-seconds)")) {
            try input.samples(Audio(media: Self.bytes("scenes.mp4")))
        }
    }
}
