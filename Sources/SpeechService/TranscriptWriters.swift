import Foundation
import ChorusWhisper

/// The output formats of a transcript; each is a small function of the transcript alone.
public enum TranscriptWriters {
    public static func text(_ t: Transcription) -> String {
        t.segments.map { $0.text.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n") + (t.segments.isEmpty ? "" : "\n")
    }

    public static func srt(_ t: Transcription) -> String {
        t.segments.enumerated().map { index, segment in
            "\(index + 1)\n\(timestamp(segment.start, separator: ",")) --> \(timestamp(segment.end, separator: ","))\n\(segment.text.trimmingCharacters(in: .whitespaces))\n"
        }.joined(separator: "\n")
    }

    public static func vtt(_ t: Transcription) -> String {
        "WEBVTT\n\n" + t.segments.map { segment in
            "\(timestamp(segment.start, separator: ".")) --> \(timestamp(segment.end, separator: "."))\n\(segment.text.trimmingCharacters(in: .whitespaces))\n"
        }.joined(separator: "\n")
    }

    /// OpenAI's `json` response: just the text.
    public static func json(_ t: Transcription) -> String {
        encode(["text": t.text])
    }

    /// OpenAI's `verbose_json`: the task ("transcribe" or "translate"), language, duration and the segments with their
    /// decoding statistics.
    public static func verboseJSON(_ t: Transcription, task: String = "transcribe") -> String {
        struct Verbose: Encodable {
            let task: String
            let language: String
            let duration: Double
            let text: String
            let segments: [Segment]
        }
        struct Segment: Encodable {
            let id: Int, start: Double, end: Double, text: String, tokens: [Int]
            let avg_logprob: Float, compression_ratio: Float, no_speech_prob: Float, temperature: Float
            let words: [TimedWord]?
        }
        return encode(Verbose(task: task, language: t.language, duration: t.duration, text: t.text, segments: t.segments.map {
            Segment(id: $0.id, start: $0.start, end: $0.end, text: $0.text, tokens: $0.tokens, avg_logprob: $0.averageLogprob,
                    compression_ratio: $0.compressionRatio, no_speech_prob: $0.noSpeechProbability, temperature: $0.temperature,
                    words: $0.words.isEmpty ? nil : $0.words)
        }))
    }

    /// 3725.5 s → "01:02:05,500" (SRT) or "01:02:05.500" (VTT).
    static func timestamp(_ seconds: Double, separator: String) -> String {
        let milliseconds = Int((max(0, seconds) * 1000).rounded())
        let (h, m, s, ms) = (milliseconds / 3_600_000, milliseconds / 60_000 % 60, milliseconds / 1000 % 60, milliseconds % 1000)
        return String(format: "%02d:%02d:%02d%@%03d", h, m, s, separator, ms)
    }

    private static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
