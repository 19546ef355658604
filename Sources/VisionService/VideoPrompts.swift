import ChorusAPI
import ChorusLLaVA
import Foundation

/// How a video becomes a prompt: its frames as images, each introduced by the time it is shown, or a
/// timeline of frame captions and speech that a language model reads. Times are written MM:SS (H:MM:SS
/// past an hour), as people cite them.
enum VideoPrompts {
    static let captionPrompt = "Describe the image in one sentence."
    static let captionMaxTokens = 48

    static func clock(_ seconds: Double) -> String {
        let total = seconds.isFinite ? Int(max(0, min(seconds, 1e7))) : 0  // checked: finite, 0 ... 1e7
        let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60)
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, rest) : String(format: "%02d:%02d", minutes, rest)
    }

    /// The speech lines, one per segment: "[00:01-00:03] text".
    static func speech(_ transcript: [TimedText]) -> String {
        let lines = transcript.filter { !$0.text.trimmingCharacters(in: .whitespaces).isEmpty }.map {
            "[\(clock($0.start))-\(clock($0.end))] \($0.text.trimmingCharacters(in: .whitespaces))"
        }
        return lines.isEmpty ? "" : "Speech in the video:\n" + lines.joined(separator: "\n") + "\n"
    }

    /// Frames mode: one user turn, each frame after a "Frame at MM:SS:" line, then the speech and the question.
    static func framesConversation(times: [Double], transcript: [TimedText], question: String) -> [ChatMessage] {
        var parts: [ChatMessage.Part] = []
        for time in times { parts += [.text("Frame at \(clock(time)):"), .image] }
        parts.append(.text(speech(transcript) + question))
        return [ChatMessage(role: "user", parts: parts)]
    }

    /// Captions mode: what is seen and what is said, in time order on one timeline, and the question; the
    /// answer is asked to cite the times it relies on.
    static func timeline(duration: Double, captions: [FrameCaption], transcript: [TimedText], question: String) -> String {
        var entries: [(time: Double, order: Int, line: String)] = []
        for caption in captions where !caption.text.trimmingCharacters(in: .whitespaces).isEmpty {
            entries.append((caption.time, 0, "[\(clock(caption.time))] seen: \(caption.text.trimmingCharacters(in: .whitespacesAndNewlines))"))
        }
        for line in transcript where !line.text.trimmingCharacters(in: .whitespaces).isEmpty {
            entries.append((line.start, 1, "[\(clock(line.start))-\(clock(line.end))] said: \(line.text.trimmingCharacters(in: .whitespaces))"))
        }
        entries.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        let length = duration > 0 ? String(format: "a %.0f-second video", duration.rounded(.up)) : "a video"
        return "The timeline of \(length): what is seen (a caption per sampled frame) and what is said.\n"
            + entries.map(\.line).joined(separator: "\n")
            + "\nQuestion: \(question)\nAnswer from the timeline and cite the times (MM:SS) you rely on."
    }
}
